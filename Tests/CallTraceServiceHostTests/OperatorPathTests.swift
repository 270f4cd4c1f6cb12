import CallTraceTestSupport
import Foundation
import Testing

/// The operator's path, as an outsider meets it: each service README's "Run it alone" lines, then
/// its master-key rotation under "Keys", taken from the README itself and run one by one as
/// written, with three differences only: every absolute path the lines and the example files
/// name is moved into a scratch root, and the ports into free ones; `make install` installs the
/// executables this suite built (`install-files BIN=…`) instead of building them again in release
/// mode; and `systemctl stop|start calltrace-<name>` stops the service with SIGTERM and starts the
/// `ExecStart` of the unit `make install` installed, as systemd would (without its user and sandbox).
@Suite("The operator's path: a service README's run-alone and rotation lines, as written")
struct OperatorPathTests {
    /// The shell block under "## Run it alone".
    static func runAloneLines(of service: String) throws -> [String] { try lines(of: service, under: "## Run it alone") }

    /// The shell block under "## Keys": the master-key rotation.
    static func rotationLines(of service: String) throws -> [String] { try lines(of: service, under: "## Keys") }

    /// The first shell block after `heading`.
    static func lines(of service: String, under heading: String) throws -> [String] {
        let readme = try String(contentsOf: repositoryRoot.appendingPathComponent("services/\(service)/README.md"), encoding: .utf8)
        let section = try #require(readme.range(of: "\n\(heading)\n"), "no \(heading) section")
        let open = try #require(readme.range(of: "```sh\n", range: section.upperBound..<readme.endIndex))
        let close = try #require(readme.range(of: "```", range: open.upperBound..<readme.endIndex))
        return readme[open.upperBound..<close.lowerBound].split(separator: "\n").map(String.init).filter { !$0.isEmpty }
    }

    @Test("The README's lines install, configure and start the service, health reports it SERVING; its master-key rotation keeps it serving, and media plays a recording stored before",
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

        /// Starts the service as `command` says, in the background until it says it serves.
        func startService(_ executable: String, _ arguments: [String], line: String) async throws {
            let process = try RunningProcess(path: executable, arguments,
                                             environment: environment.merging(["CALLTRACE_LIFELINE": "stdin"]) { $1 }, input: nil)
            running = process
            let serving = await process.waitForOutput(containing: "serving")
            try #require(serving, "\(line)\n\(process.stderr)")
        }
        func walk(_ lines: [String]) async throws {
            for line in lines {
                var command = moved(line)
                if line.hasPrefix("make install ") {
                    command = command.replacingOccurrences(of: "make install ", with: "make -s install-files BIN=\(productsDirectory.path) ")
                }
                if line.hasPrefix("calltrace-\(service) ") && !line.hasPrefix("calltrace-\(service) rotate-master-key ") {
                    // The service, in the foreground as the README starts it: here, in the background
                    // until it says it serves.
                    let words = command.prefix { $0 != "#" }.split(separator: " ").map(String.init)
                    try await startService("\(root.path)/usr/local/bin/\(words[0])", Array(words.dropFirst()), line: line)
                    continue
                }
                if line.hasPrefix("systemctl stop calltrace-\(service)") {
                    let process = try #require(running, "\(line): the service is not running")
                    process.signal(SIGTERM)
                    let exit = try #require(await process.waitForExit(), "\(line): the service did not stop")
                    #expect(exit.status == 0, "\(line)\n\(exit.stderr)")
                    continue
                }
                if line.hasPrefix("systemctl start calltrace-\(service)") {
                    // What systemd runs: the unit's ExecStart (its paths moved like the lines').
                    let unit = try String(contentsOfFile: "\(root.path)/usr/local/lib/systemd/system/calltrace-\(service).service", encoding: .utf8)
                    let execStart = try #require(unit.split(separator: "\n").first { $0.hasPrefix("ExecStart=") }, "the unit has no ExecStart")
                    let words = execStart.dropFirst("ExecStart=".count).split(separator: " ").map(String.init)
                    try await startService(words[0], words.dropFirst().map(moved), line: line)
                    continue
                }
                try #require(!line.hasPrefix("systemctl "), "the walk does not know what \(line) does")
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
        }
        /// The installed `calltrace` CLI, against the deployment the README set up.
        func calltrace(_ arguments: [String]) async throws -> String {
            let result = try await run("\(root.path)/usr/local/bin/calltrace", arguments, environment: environment)
            try #require(result.status == 0, "calltrace \(arguments.joined(separator: " "))\nexit \(result.status)\n\(result.stderr)")
            return result.stdout
        }
        let pkiFolder = root.appendingPathComponent("etc/calltrace/pki").path
        let deploymentFile = root.appendingPathComponent("etc/calltrace/deployment.json").path

        let lines = try Self.runAloneLines(of: service)
        #expect(lines.contains { $0.hasPrefix("calltrace health ") }, "the README never checks the service")
        try await walk(lines)
        try #require(running != nil, "the README never starts calltrace-\(service)")

        // Media: a recording stored before the rotation (by the web gateway, as a telephony
        // gateway uploads) must play after it (as compliance, which plays as itself).
        let audio = wavFile(seconds: 2)
        var stored: (id: String, org: String)?
        if service == "media" {
            let file = root.appendingPathComponent("call.wav")
            try audio.write(to: file)
            let org = "org_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
            let answer = try await calltrace(["recordings", "upload", file.path, "--org", org, "--call", "call-1",
                                              "--pki", pkiFolder, "--deployment", deploymentFile, "--json"])
            let reply = try #require(try JSONSerialization.jsonObject(with: Data(answer.utf8)) as? [String: Any], "\(answer)")
            let id = try #require((reply["recording"] as? [String: Any])?["recordingId"] as? String, "\(answer)")
            stored = (id, org)
        }

        let rotation = try Self.rotationLines(of: service)
        #expect(rotation.contains { $0.hasPrefix("calltrace-\(service) rotate-master-key ") }, "the README never rotates the master key")
        #expect(rotation.last { $0.hasPrefix("systemctl ") }?.hasPrefix("systemctl start ") == true, "the rotation does not end with the service started")
        try await walk(rotation)
        // The key store stayed where the service looks for it, beside the one master key left:
        // the new key in the old one's place, the old one destroyed.
        let keyFolder = root.appendingPathComponent("etc/calltrace/keys").path
        let keyFiles = try FileManager.default.contentsOfDirectory(atPath: keyFolder).filter { $0.hasSuffix(".sqlite") || $0.contains("master-key") }
        #expect(keyFiles.sorted() == ["\(service).keys.sqlite", "\(service).master-key"], "\(keyFiles)")

        if let stored {
            let out = root.appendingPathComponent("played.wav")
            _ = try await calltrace(["recordings", "play", stored.id, "--org", stored.org, "--out", out.path, "--as", "compliance",
                                     "--pki", pkiFolder, "--deployment", deploymentFile])
            #expect(try Data(contentsOf: out) == audio, "the recording stored before the rotation does not play back as it was")
        }
        let process = try #require(running, "the README never starts calltrace-\(service)")

        // What the path left behind: no CA key beside the certificates, private files 0600.
        #expect(!FileManager.default.fileExists(atPath: "\(pkiFolder)/ca.key"))
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
