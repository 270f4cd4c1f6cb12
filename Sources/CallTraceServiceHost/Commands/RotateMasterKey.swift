import ArgumentParser
import CallTraceKeys
import CallTraceStorage
import Foundation

struct RotateMasterKey<Service: CallTraceService>: AsyncParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: "rotate-master-key",
                             abstract: "Re-wrap every organisation key under a new master key (service stopped).",
                             discussion: SettingsOptions<Service>.help)
    }
    @OptionGroup var settings: SettingsOptions<Service>
    @Option(name: .customLong("new-key"), help: "The new 32-byte key file (mode 0600).") var newKey: String

    func run() async throws {
        do {
            let configuration = try settings.resolve()
            guard let masterKeyPath = configuration.masterKey else {
                throw ConfigurationError("master_key is not configured (config key master_key, or CALLTRACE_MASTER_KEY)")
            }
            let path = configuration.keyStorePath
            let masterKey = try MasterKey.load(path: masterKeyPath)
            let replacement = try MasterKey.load(path: newKey)
            // Re-wrapping a store that was created just now would re-wrap nothing and report success.
            guard configuration.keyStoreIsPostgres || FileManager.default.fileExists(atPath: path) else {
                throw ConfigurationError("there is no key store at \(path)"
                                         + (configuration.keyStore == nil ? " (key_store is not set: it is looked for beside master_key, named after the database)" : "")
                                         + "; run rotate-master-key with the config the service runs with")
            }
            // The checks of start-up: the master key opens the store, and it is the database's own
            // (the database's lock also shows a service still running).
            let keyStore: Database
            let keys: KeyRing
            if configuration.databaseIsPostgres || FileManager.default.fileExists(atPath: configuration.database) {
                let database = try Database.open(configuration.database, passwordFile: configuration.databasePasswordFile)
                defer { database.close() }
                (keyStore, keys) = try KeyStoreBinding.openKeyStore(configuration: configuration, masterKey: masterKey, for: database, clock: SystemClock())
            } else {
                keyStore = try Database.open(path, passwordFile: configuration.keyStorePasswordFile)
                keys = KeyRing(keyStore: keyStore, masterKey: masterKey)
                do {
                    try keyStore.migrate(KeyRing.migrations)
                    // A store found empty (a mistyped URL, a new database) has nothing to re-wrap.
                    if try keys.isUnused() {
                        throw ConfigurationError("key store \(path) is empty: there is nothing to re-wrap; run rotate-master-key with the config the service runs with")
                    }
                    _ = try keys.verifyMasterKey()
                } catch {
                    keyStore.close()
                    throw error
                }
            }
            defer { keyStore.close() }
            let count = try keys.rotateMasterKey(to: replacement)
            // Where the key store is looked for must not move with the key: by default it sits
            // beside master_key, so the new key takes the old one's place rather than master_key
            // pointing at another folder.
            let folder = { (file: String) in URL(fileURLWithPath: (file as NSString).deletingLastPathComponent).standardizedFileURL.path }
            let moves = configuration.keyStore == nil && folder(newKey) != folder(masterKeyPath)
            print("re-wrapped \(count) organisation key(s) in key store \(path) under \(newKey); only that key opens it now. "
                  + "Next: put \(newKey) in place of \(masterKeyPath) (mv), start the service, then destroy the old key"
                  + (moves ? " (pointing master_key at \(newKey) instead would look for the key store in its folder: then set key_store to \(path))" : ""))
        } catch {
            FileHandle.standardError.write(Data("calltrace-\(Service.name): rotation failed: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
