import ArgumentParser
import CallTraceStorage
import Foundation

struct Backup<Service: CallTraceService>: AsyncParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: "backup",
                             abstract: "Copy the database (a SQLite file) or the key store to FILE with SQLite's online backup, while the service runs.",
                             discussion: SettingsOptions<Service>.help)
    }
    @OptionGroup var settings: SettingsOptions<Service>
    @Option(help: "The backup file to write.") var to: String
    @Flag(name: .customLong("keys"), help: "Back up the key store instead of the database (keep such backups apart and short-lived).")
    var keys = false

    func run() async throws {
        do {
            let configuration = try settings.resolve()
            let source = keys ? configuration.keyStorePath : configuration.database
            guard keys || !configuration.databaseIsPostgres else {
                throw ConfigurationError("the database is in PostgreSQL: back it up with pg_dump (the key store, with --keys)")
            }
            guard !keys || !configuration.keyStoreIsPostgres else {
                throw ConfigurationError("the key store is in PostgreSQL: back it up with pg_dump, apart from the data and on a short retention")
            }
            try Database.onlineBackup(of: source, to: to)
            print("backed up \(source) to \(to)")
        } catch {
            FileHandle.standardError.write(Data("calltrace-\(Service.name): backup failed: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}

