public import CallTraceKeys
public import CallTraceServiceHost
public import CallTraceStorage
public import Foundation

/// A service's database and key store in a temporary folder, with a fresh master key: what a
/// test of a domain's rules needs, without sockets or processes. Removed when released.
public final class TemporaryStores: @unchecked Sendable {
    public let directory = FileManager.default.temporaryDirectory.appendingPathComponent("calltrace-stores-\(UUID().uuidString)")
    public let database: Database
    public let keyStore: Database
    public let keys: KeyRing

    /// The stores of `Service`, its database migrated as the host migrates it (the host's shared
    /// tables, then the service's own).
    public convenience init<Service: CallTraceService>(_ service: Service.Type) throws {
        try self.init(service: Service.name, migrations: Service.migrations, tracks: [SharedSchema.track])
    }

    public init(service: String, migrations: [Migration], tracks: [SchemaTrack] = []) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        if let server = TestDatabases.postgres {
            database = try Database.open(try server.newDatabase(named: "\(service)_\(UUID().uuidString.prefix(8).lowercased())"),
                                         passwordFile: server.passwordFile)
        } else {
            database = try Database(path: directory.appendingPathComponent("\(service).sqlite").path)
        }
        try database.migrate(migrations, tracks: tracks)
        keyStore = try Database(path: directory.appendingPathComponent("\(service).keys.sqlite").path, migrations: KeyRing.migrations)
        let masterKey = directory.appendingPathComponent("\(service).master-key").path
        try MasterKey.generate(path: masterKey)
        keys = KeyRing(keyStore: keyStore, masterKey: try MasterKey.load(path: masterKey))
    }

    deinit {
        database.close()
        keyStore.close()
        try? FileManager.default.removeItem(at: directory)
    }
}
