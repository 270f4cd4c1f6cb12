import CallTraceTestSupport
import Foundation
import Testing

/// The operator's path, as an outsider meets it: each service README's "Run it alone" lines,
/// taken from the README itself and run one by one as written, with two differences only: every
/// absolute path the lines and the example files name is moved into a scratch root, and the
/// ports into free ones; and `make install` installs the executables this suite built
/// (`install-files BIN=…`) instead of building them again in release mode.
@Suite("The operator's path: a service README's run-alone lines, as written")
struct OperatorPathTests {
    /// The shell block under "## Run it alone".
    static func runAloneLines(of service: String) throws -> [String] {
        let readme = try String(contentsOf: repositoryRoot.appendingPathComponent("services/\(service)/README.md"), encoding: .utf8)
        let section = try #require(readme.range(of: "## Run it alone"), "no Run it alone section")
        let open = try #require(readme.range(of: "```sh\n", range: section.upperBound..<readme.endIndex))
        let close = try #require(readme.range(of: "```", range: open.upperBound..<readme.endIndex))
        return readme[open.upperBound..<close.lowerBound].split(separator: "\n").map(String.init).filter { !$0.isEmpty }
    }

    @Test("The README's lines install, configure and start the service, and health reports it SERVING",
          arguments: ["identity", "media", "transcript", "compliance"])
    func walk(service: String) async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("operator-path-\(service)-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        var moves: [(String, String)] = [("/etc/calltrace", "\(root.path)/etc/calltrace"), ("/var/lib/calltrace", "\(root.path)/var/lib/calltrace"),
                                         ("/usr/local", "\(root.path)/usr/local"), ("/root/calltrace-ca", "\(root.path)/root/calltrace-ca")]
        for port in 7101...7104 { moves.append(("127.0.0.1:\(port)", "127.0.0.1:\(try freePort())")) }
        func moved(_ text: String) -> String { moves.reduce(text) { $0.replacingOccurrences(of: $1.0, with: $1.1) } }

        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("CALLTRACE_") }
        environment["PATH"] = "\(root.path)/usr/local/bin:" + (environment["PATH"] ?? "/usr/bin:/bin")
        environment["SMTP_USER"] = "calltrace"
        environment["SMTP_PASSWORD"] = "not-a-real-password"
        var running: RunningProcess?
        defer { running?.signal(SIGKILL) }

        let lines = try Self.runAloneLines(of: service)
        #expect(lines.contains { $0.hasPrefix("calltrace health ") }, "the README never checks the service")
        for line in lines {
            var command = moved(line)
            if line.hasPrefix("make install ") {
                command = command.replacingOccurrences(of: "make install ", with: "make -s install-files BIN=\(productsDirectory.path) ")
            }
            if line.hasPrefix("calltrace-\(service) ") {
                // The service, in the foreground as the README starts it: here, in the background
                // until it says it serves.
                let words = command.prefix { $0 != "#" }.split(separator: " ").map(String.init)
                let process = try RunningProcess(path: "\(root.path)/usr/local/bin/\(words[0])", Array(words.dropFirst()),
                                                 environment: environment.merging(["CALLTRACE_LIFELINE": "stdin"]) { $1 }, input: nil)
                running = process
                let serving = await process.waitForOutput(containing: "serving")
                try #require(serving, "\(line)\n\(process.stderr)")
                continue
            }
            let result = try await run("/bin/bash", ["-euo", "pipefail", "-c", "cd \(repositoryRoot.path) && \(command)"], environment: environment)
            try #require(result.status == 0, "\(line)\nexit \(result.status)\n\(result.stdout)\n\(result.stderr)")
            if line.hasPrefix("make install ") {
                // The example files name the real paths and ports: moved like the lines.
                let shared = root.appendingPathComponent("usr/local/share/calltrace")
                for case let file as URL in FileManager.default.enumerator(at: shared, includingPropertiesForKeys: nil)!
                where file.pathExtension == "json" {
                    try moved(try String(contentsOf: file, encoding: .utf8)).write(to: file, atomically: false, encoding: .utf8)
                }
            }
            if line.hasPrefix("calltrace health ") {
                #expect(result.stdout.contains("\(service) ") && result.stdout.contains("  SERVING  "), "\(result.stdout)")
            }
        }
        let process = try #require(running, "the README never starts calltrace-\(service)")

        // What the path left behind: no CA key beside the certificates, private files 0600.
        let pki = root.appendingPathComponent("etc/calltrace/pki").path
        #expect(!FileManager.default.fileExists(atPath: "\(pki)/ca.key"))
        #expect(FileManager.default.fileExists(atPath: root.appendingPathComponent("root/calltrace-ca/ca.key").path))
        for file in ["etc/calltrace/keys/\(service).master-key", "var/lib/calltrace/\(service)/\(service).sqlite", "etc/calltrace/pki/\(service).key"] {
            let mode = try FileManager.default.attributesOfItem(atPath: root.appendingPathComponent(file).path)[.posixPermissions] as? Int
            #expect(mode == 0o600, "\(file): \(String(mode ?? 0, radix: 8))")
        }
        process.signal(SIGTERM)
        let exit = try #require(await process.waitForExit())
        #expect(exit.status == 0, "\(exit.stderr)")
        #expect(process.stdout.isEmpty, "logs go to stderr; stdout stays empty")
    }
}
