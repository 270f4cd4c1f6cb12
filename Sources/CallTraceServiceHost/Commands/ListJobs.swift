import ArgumentParser
import CallTraceStorage
import Foundation

struct ListJobs<Service: CallTraceService>: AsyncParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: "jobs",
                             abstract: "List the service's durable jobs (dead ones by default), read-only, while it runs.",
                             discussion: SettingsOptions<Service>.help)
    }
    @OptionGroup var settings: SettingsOptions<Service>
    @Option(help: "ready, running, dead or all.") var state = "dead"
    @Flag(help: "One JSON object per line.") var json = false

    func run() async throws {
        do {
            guard ["ready", "running", "dead", "all"].contains(state) else { throw ValidationError("--state must be ready, running, dead or all") }
            let configuration = try settings.resolve()
            let filter = state == "all" ? "" : "WHERE state = ?"
            let sql = "SELECT id, kind, state, attempts, last_error, run_at_unix_ms FROM jobs \(filter) ORDER BY created_at_unix_ms"
            let bindings: [any SQLiteBindable] = state == "all" ? [] : [state]
            let rows: [Row]
            if configuration.databaseIsPostgres {
                let database = try Database.open(configuration.database, passwordFile: configuration.databasePasswordFile)
                defer { database.close() }
                rows = try database.sync { try $0.query(sql, bindings: bindings) }
            } else {
                rows = try Database.query(readOnly: configuration.database, sql, bindings: bindings)
            }
            for row in rows {
                let fields: [String: Any] = ["id": row.text("id") ?? "", "kind": row.text("kind") ?? "", "state": row.text("state") ?? "",
                                             "attempts": row.int("attempts") ?? 0, "last_error": row.text("last_error") ?? "",
                                             "run_at_unix_ms": row.int("run_at_unix_ms") ?? 0]
                if json {
                    print(String(decoding: try JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys]), as: UTF8.self))
                } else {
                    print("\(fields["id"]!)  \(fields["kind"]!)  \(fields["state"]!)  attempts \(fields["attempts"]!)  \(fields["last_error"]!)")
                }
            }
            if rows.isEmpty && !json { print("no \(state == "all" ? "" : state + " ")jobs") }
        } catch let error as ValidationError {
            throw error
        } catch {
            FileHandle.standardError.write(Data("calltrace-\(Service.name): jobs: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}

