import CallTraceKeys
import CallTraceProto
import CallTraceRPC
import CallTraceTLS
import CallTraceTestSupport
import Foundation
import Testing

/// The operator's path, as an outsider meets it: each service README's "Run it alone" lines, then
/// its master-key rotation under "Keys", taken from the README itself and run one by one as
/// written, with these differences only: every absolute path the lines and the example files
/// name is moved into a scratch root, and the ports into free ones; `make install` installs the
/// executables this suite built (`install-files BIN=…`) instead of building them again in release
/// mode; `useradd` is checked (a system user, the one the unit names) but not run, and the
/// service's user stands in as another that exists — `nobody` when the suite runs as root, so
/// the service really runs without root's rights and finds only what the README's `chown`s and
/// `install -o`s gave it, else the suite's own user; `runuser -u <that user> --` becomes
/// `setpriv` (which execs, so the service is the process signalled); and
/// `systemctl stop|start calltrace-<name>` stops the service with SIGTERM and starts the
/// `ExecStart` of the unit `make install` installed, as the unit's user, as systemd would
/// (without its sandbox: what the sandbox lets the service write is checked against what its
/// config writes instead, and `systemd-analyze verify` checks the unit).
@Suite("The operator's path: a service README's run-alone and rotation lines, as written")
struct OperatorPathTests {
    static let services = ["identity", "media", "transcript", "compliance"]

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

    // MARK: - Units against configs

    /// A systemd unit's `Key=value` lines (comments and sections skipped), values in order.
    static func unitValues(_ unit: String, _ key: String) -> [String] {
        unit.split(separator: "\n").compactMap { line -> String? in
            let line = line.trimmingCharacters(in: .whitespaces)
            guard line.hasPrefix("\(key)=") else { return nil }
            return String(line.dropFirst(key.count + 1))
        }
    }

    /// The folders a unit lets its service write: `ReadWritePaths` (systemd's `-` and `+`
    /// prefixes dropped) and the state directory under /var/lib.
    static func writablePaths(of unit: String, stateRoot: String = "/var/lib") -> (readWrite: [String], state: [String]) {
        var readWrite: [String] = [], state: [String] = []
        for value in unitValues(unit, "ReadWritePaths") {
            for word in value.split(separator: " ") {
                let path: Substring = word.drop { $0 == "-" || $0 == "+" }
                readWrite.append(standardized(String(path)))
            }
        }
        for value in unitValues(unit, "StateDirectory") {
            for word in value.split(separator: " ") { state.append(standardized("\(stateRoot)/\(word)")) }
        }
        return (readWrite, state)
    }

    static func standardized(_ path: String) -> String { URL(fileURLWithPath: path).standardizedFileURL.path }
    static func folder(_ path: String) -> String { standardized((path as NSString).deletingLastPathComponent) }
    /// `path` is `folder` or inside it.
    static func isWithin(_ path: String, _ folder: String) -> Bool { path == folder || path.hasPrefix(folder + "/") }

    /// The folders a service configured by `config` writes: its database's (the WAL beside it,
    /// media's recordings by default), its key store's (by default the master key's), and
    /// `blob_store` and `mail_outbox` when set.
    static func writtenFolders(config: [String: Any]) throws -> [String] {
        let database = try #require(config["database"] as? String, "the config names no database")
        let masterKey = try #require(config["master_key"] as? String, "the config names no master_key")
        var folders = [folder(database), (config["key_store"] as? String).map(folder) ?? folder(masterKey)]
        for key in ["blob_store", "mail_outbox"] { if let path = config[key] as? String { folders.append(standardized(path)) } }
        return Array(Set(folders)).sorted()
    }

    static func config(at path: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any], "\(path)")
    }

    /// The unit may write every folder its config writes and nothing else: each `ReadWritePaths`
    /// entry is one of those folders or inside one.
    static func checkWrites(unit: String, config: [String: Any], service: String, stateRoot: String = "/var/lib") throws {
        let written = try writtenFolders(config: config)
        let (readWrite, state) = writablePaths(of: unit, stateRoot: stateRoot)
        for folder in written {
            #expect(readWrite.contains { isWithin(folder, $0) },
                    "\(service): its config writes \(folder), which the unit's ReadWritePaths (\(readWrite)) do not name")
        }
        for path in readWrite + state {
            #expect(written.contains { isWithin(path, $0) },
                    "\(service): the unit lets it write \(path), which is none of the folders its config writes (\(written))")
        }
    }

    @Test("Each unit runs its service as its own user and lets it write the folders its example config writes, and nothing of another service's")
    func unitsWriteOnlyTheirOwnFolders() throws {
        var users: [String] = []
        var writable: [String: [String]] = [:], written: [String: [String]] = [:]
        for service in Self.services {
            let unit = try String(contentsOf: repositoryRoot.appendingPathComponent("services/\(service)/calltrace-\(service).service"), encoding: .utf8)
            let config = try Self.config(at: repositoryRoot.appendingPathComponent("services/\(service)/config.example.json").path)
            #expect(Self.unitValues(unit, "User") == ["calltrace-\(service)"], "\(service): \(Self.unitValues(unit, "User"))")
            #expect(Self.unitValues(unit, "Group") == ["calltrace-\(service)"], "\(service): \(Self.unitValues(unit, "Group"))")
            users += Self.unitValues(unit, "User")
            try Self.checkWrites(unit: unit, config: config, service: service)
            let paths = Self.writablePaths(of: unit)
            writable[service] = paths.readWrite + paths.state
            written[service] = try Self.writtenFolders(config: config)
            // Its secrets sit in its own key folder (the key store's, which only it may write).
            let keyFolder = Self.folder(try #require(config["master_key"] as? String))
            #expect(keyFolder == "/etc/calltrace/keys/\(service)", "\(service): master_key in \(keyFolder)")
            for key in ["smtp_credentials", "deepgram_key_file", "anthropic_key_file", "twilio_api_key_file", "twilio_auth_token_file"] {
                if let path = config[key] as? String { #expect(Self.folder(path) == keyFolder, "\(service): \(key) \(path) is outside \(keyFolder)") }
            }
        }
        #expect(Set(users).count == Self.services.count, "the services share a user: \(users)")
        for service in Self.services {
            for other in Self.services where other != service {
                for path in writable[service]! {
                    for theirs in written[other]! where Self.isWithin(theirs, path) || Self.isWithin(path, theirs) {
                        Issue.record("calltrace-\(service).service lets it write \(path), where \(other) keeps \(theirs)")
                    }
                }
            }
        }
    }

    @Test("systemd-analyze verify accepts each unit (its ExecStart pointed at the built executable), without a warning",
          arguments: services)
    func systemdAcceptsTheUnit(service: String) async throws {
        let analyze = "/usr/bin/systemd-analyze"
        try #require(FileManager.default.isExecutableFile(atPath: analyze), "\(analyze) is missing: `make deps` installs it (Debian package systemd)")
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("unit-\(service)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let unit = try String(contentsOf: repositoryRoot.appendingPathComponent("services/\(service)/calltrace-\(service).service"), encoding: .utf8)
        let installed = "/usr/local/bin/calltrace-\(service)"
        #expect(Self.unitValues(unit, "ExecStart").first?.hasPrefix("\(installed) ") == true, "ExecStart is not \(installed): make install's sed would miss it")
        // systemd checks that ExecStart's executable exists: the one this suite built stands in.
        let file = folder.appendingPathComponent("calltrace-\(service).service")
        try unit.replacingOccurrences(of: installed, with: productsDirectory.appendingPathComponent("calltrace-\(service)").path)
            .write(to: file, atomically: false, encoding: .utf8)
        var environment = ProcessInfo.processInfo.environment
        environment["SYSTEMD_LOG_COLOR"] = "0"
        let result = try await run(analyze, ["verify", "--man=no", file.path], environment: environment)
        #expect(result.status == 0 && result.stderr.isEmpty && result.stdout.isEmpty,
                "systemd-analyze verify calltrace-\(service).service: exit \(result.status)\n\(result.stdout)\(result.stderr)")
    }

    // MARK: - The walk

    /// Identity, transcript and compliance as processes on the deployment's (moved) ports, with
    /// the operator's PKI; an organisation made as an operator makes one, its admin signed in,
    /// the processing agreement accepted and a tracking number assigned; then `call` started by
    /// the telephony gateway. The organisation's id.
    static func firmWithACall(_ call: String, pki: String, moved: (String) -> String, root: URL, environment: [String: String],
                              started: inout [RunningProcess]) async throws -> String {
        let mail = root.appendingPathComponent("mail").path, keys = root.appendingPathComponent("keys"), data = root.appendingPathComponent("data")
        for folder in [mail, keys.path, data.path] {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        let ports = ["identity": 7101, "transcript": 7103, "compliance": 7104].mapValues { Int(moved("127.0.0.1:\($0)").split(separator: ":")[1])! }
        let peers = ports.merging(["media": Int(moved("127.0.0.1:7102").split(separator: ":")[1])!]) { $1 }
        for (name, port) in ports.sorted(by: { $0.key < $1.key }) {
            let masterKey = keys.appendingPathComponent("\(name).master-key").path
            try MasterKey.generate(path: masterKey)
            var peerEnvironment = environment
            for (peer, address) in peers where peer != name { peerEnvironment["CALLTRACE_PEER_\(peer.uppercased())"] = "127.0.0.1:\(address)" }
            let process = try RunningProcess("calltrace-\(name)", [
                "serve", "--certificate", "\(pki)/\(name).crt", "--private-key", "\(pki)/\(name).key", "--ca", "\(pki)/ca.crt",
                "--master-key", masterKey, "--database", data.appendingPathComponent("\(name).sqlite").path, "--listen", "127.0.0.1:\(port)",
            ] + (name == "identity" ? ["--mail-outbox", mail] : []), environment: peerEnvironment)
            started.append(process)
            try #require(await process.waitForOutput(containing: "serving"), "\(name): \(process.stderr)")
        }
        func client(_ service: String, as caller: String) throws -> RPCClient {
            try RPCClient(target: .init(host: "127.0.0.1", port: ports[service]!, identity: "spiffe://calltrace.example/service/\(service)"),
                          configuration: .init(credentials: TLSCredentials(certificateChainPath: "\(pki)/\(caller).crt", privateKeyPath: "\(pki)/\(caller).key",
                                                                           trustRootsPath: "\(pki)/ca.crt")))
        }
        let email = "admin@firm.example", password = "correct horse battery staple"
        let org = try await client("identity", as: "operator-admin").unary(Calltrace_Identity_V1_IdentityService.createOrganization, .with {
            $0.name = "Smith & Co Solicitors"; $0.firstAdminEmail = email
        }).orgID
        let letter = try #require(try FileManager.default.contentsOfDirectory(atPath: mail).first, "no invitation in \(mail)")
        let message = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(mail)/\(letter)"))) as? [String: Any]
        let invitation = try #require(message?["token"] as? String)
        let web = try client("identity", as: "gateway-web")
        _ = try await web.unary(Calltrace_Identity_V1_IdentityService.redeemInvitation, .with { $0.invitationToken = invitation; $0.password = password },
                                options: .endUser)
        let admin = try bearer(try await web.unary(Calltrace_Identity_V1_IdentityService.login, .with {
            $0.orgID = org; $0.email = email; $0.password = password
        }, options: .endUser).token)
        let compliance = try client("compliance", as: "gateway-web")
        let agreement = try await compliance.unary(Calltrace_Compliance_V1_RegisterService.getProcessingAgreement, .with { $0.orgID = org }, options: admin).agreement
        _ = try await compliance.unary(Calltrace_Compliance_V1_RegisterService.acceptProcessingAgreement, .with {
            $0.orgID = org; $0.templateVersion = agreement.templateVersion; $0.registerVersion = agreement.registerVersion
        }, options: admin)
        _ = try await client("transcript", as: "gateway-web").unary(Calltrace_Transcript_V1_TrackingNumberService.assignTrackingNumber, .with {
            $0.orgID = org; $0.number = "01184960000"; $0.source = "Google Ads"; $0.channel = .googleAds
        }, options: admin)
        let answer = try await client("transcript", as: "gateway-telephony").unary(Calltrace_Transcript_V1_CallService.startCall, .with {
            $0.callID = call; $0.trackingNumber = "01184960000"; $0.callerNumber = "07700900123"; $0.direction = .inbound
        })
        try #require(answer.record && answer.orgID == org, "\(answer)")
        return org
    }

    /// Who stands in for the service's user: `nobody` when the suite runs as root, so the service
    /// runs without root's rights; else the suite's own user.
    static func standInUser() throws -> (name: String, group: String, uid: uid_t, gid: gid_t) {
        // The reentrant lookups: getpwnam and getgrgid answer in static storage that any other
        // thread's lookup (another case of this test, Foundation finding a home folder) may
        // overwrite between the call and the read, and a name of one user with another's uid
        // made a key file the stand-in could not read.
        let size = 16_384
        let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: size), groupBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: size)
        defer { buffer.deallocate(); groupBuffer.deallocate() }
        var entry = passwd(), found: UnsafeMutablePointer<passwd>?
        if getuid() == 0 { getpwnam_r("nobody", &entry, buffer, size, &found) }
        if found == nil { getpwuid_r(getuid(), &entry, buffer, size, &found) }
        let user = try #require(found, "no passwd entry").pointee
        var groupEntry = group(), groupFound: UnsafeMutablePointer<group>?
        getgrgid_r(user.pw_gid, &groupEntry, groupBuffer, size, &groupFound)
        let group = try #require(groupFound, "no group \(user.pw_gid)").pointee
        return (String(cString: user.pw_name), String(cString: group.gr_name), user.pw_uid, user.pw_gid)
    }

    @Test("The README's lines create the service's user, install, configure and start the service as that user, health reports it SERVING; its master-key rotation keeps it serving, and media plays a recording stored before",
          arguments: services)
    func walk(service: String) async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("operator-path-\(service)-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        // The system's own folders, as on a host: /etc, /var/lib, /usr/local readable by all, /root root's.
        for (path, mode) in [("", 0o755), ("etc", 0o755), ("var", 0o755), ("var/lib", 0o755), ("usr", 0o755), ("usr/local", 0o755), ("root", 0o700)] {
            try FileManager.default.createDirectory(at: root.appendingPathComponent(path), withIntermediateDirectories: true)
            try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: root.appendingPathComponent(path).path)
        }
        var moves: [(String, String)] = [("/etc/calltrace", "\(root.path)/etc/calltrace"), ("/var/lib/calltrace", "\(root.path)/var/lib/calltrace"),
                                         ("/usr/local", "\(root.path)/usr/local"), ("/root/calltrace-ca", "\(root.path)/root/calltrace-ca"),
                                         ("/root/calltrace-pki", "\(root.path)/root/calltrace-pki")]
        for port in 7101...7104 { moves.append(("127.0.0.1:\(port)", "127.0.0.1:\(try freePort())")) }
        func moved(_ text: String) -> String { moves.reduce(text) { $0.replacingOccurrences(of: $1.0, with: $1.1) } }

        // The service's user, as its unit names it, and who stands in for it here.
        let unitText = try String(contentsOf: repositoryRoot.appendingPathComponent("services/\(service)/calltrace-\(service).service"), encoding: .utf8)
        let serviceUser = try #require(Self.unitValues(unitText, "User").first, "the unit names no User")
        let standIn = try Self.standInUser()
        let switchUser = standIn.uid != getuid() ? ["/usr/bin/setpriv", "--reuid=\(standIn.uid)", "--regid=\(standIn.gid)", "--clear-groups", "--"] : []
        let runAsService = "runuser -u \(serviceUser) -- "
        func asStandIn(_ command: String) -> String {
            command.replacingOccurrences(of: "-o \(serviceUser) -g \(serviceUser) ", with: "-o \(standIn.name) -g \(standIn.group) ")
                .replacingOccurrences(of: "chown \(serviceUser):\(serviceUser) ", with: "chown \(standIn.name):\(standIn.group) ")
        }

        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("CALLTRACE_") }
        environment["PATH"] = "\(root.path)/usr/local/bin:" + (environment["PATH"] ?? "/usr/bin:/bin")
        environment["SMTP_USER"] = "calltrace"
        environment["SMTP_PASSWORD"] = "not-a-real-password"
        var running: RunningProcess?
        defer { running?.signal(SIGKILL) }
        var createdUser = false

        /// Starts the service as `command` says, as its user, in the background until it says it serves.
        func startService(_ executable: String, _ arguments: [String], line: String) async throws {
            let command = switchUser + [executable] + arguments
            let process = try RunningProcess(path: command[0], Array(command.dropFirst()),
                                             environment: environment.merging(["CALLTRACE_LIFELINE": "stdin"]) { $1 }, input: nil)
            running = process
            let serving = await process.waitForOutput(containing: "serving")
            try #require(serving, "\(line)\n\(process.stderr)")
        }
        func walk(_ lines: [String]) async throws {
            for line in lines {
                // `runuser -u <service user> --`: the rest as the service's user.
                let asService = line.hasPrefix(runAsService)
                let bare = asService ? String(line.dropFirst(runAsService.count)) : line
                var command = asStandIn(moved(bare))
                if bare.hasPrefix("useradd ") {
                    let words = bare.prefix { $0 != "#" }.split(separator: " ").map(String.init)
                    #expect(words.contains("--system") && words.last == serviceUser, "\(line): not the system user \(serviceUser) the unit names")
                    createdUser = true
                    continue
                }
                if bare.hasPrefix("make install ") {
                    command = command.replacingOccurrences(of: "make install ", with: "make -s install-files BIN=\(productsDirectory.path) ")
                }
                if bare.hasPrefix("calltrace-\(service) ") && !bare.hasPrefix("calltrace-\(service) rotate-master-key ") {
                    // The service, in the foreground as the README starts it: here, in the background
                    // until it says it serves.
                    #expect(asService, "\(line): started as root, not as \(serviceUser)")
                    let words = command.prefix { $0 != "#" }.split(separator: " ").map(String.init)
                    try await startService("\(root.path)/usr/local/bin/\(words[0])", Array(words.dropFirst()), line: line)
                    continue
                }
                if bare.hasPrefix("systemctl stop calltrace-\(service)") {
                    let process = try #require(running, "\(line): the service is not running")
                    process.signal(SIGTERM)
                    let exit = try #require(await process.waitForExit(), "\(line): the service did not stop")
                    #expect(exit.status == 0, "\(line)\n\(exit.stderr)")
                    continue
                }
                if bare.hasPrefix("systemctl start calltrace-\(service)") {
                    // What systemd runs: the unit's ExecStart (its paths moved like the lines'), as its User.
                    let unit = try String(contentsOfFile: "\(root.path)/usr/local/lib/systemd/system/calltrace-\(service).service", encoding: .utf8)
                    #expect(Self.unitValues(unit, "User") == [serviceUser], "the installed unit runs it as \(Self.unitValues(unit, "User"))")
                    let execStart = try #require(Self.unitValues(unit, "ExecStart").first, "the unit has no ExecStart")
                    let words = execStart.split(separator: " ").map(String.init)
                    try await startService(words[0], words.dropFirst().map(moved), line: line)
                    continue
                }
                try #require(!bare.hasPrefix("systemctl ") && !bare.hasPrefix("runuser "), "the walk does not know what \(line) does")
                if asService { command = (switchUser + [command]).joined(separator: " ") }
                let result = try await run("/bin/bash", ["-euo", "pipefail", "-c", "umask 022 && cd \(repositoryRoot.path) && \(command)"], environment: environment)
                try #require(result.status == 0, "\(line)\nexit \(result.status)\n\(result.stdout)\n\(result.stderr)")
                if bare.hasPrefix("make install ") {
                    // The example files name the real paths and ports: moved like the lines.
                    let shared = root.appendingPathComponent("usr/local/share/calltrace")
                    for case let file as URL in FileManager.default.enumerator(at: shared, includingPropertiesForKeys: nil)!
                    where file.pathExtension == "json" {
                        try moved(try String(contentsOf: file, encoding: .utf8)).write(to: file, atomically: false, encoding: .utf8)
                    }
                }
                if bare.hasPrefix("calltrace health ") {
                    #expect(result.stdout.contains("\(service) ") && result.stdout.contains("  SERVING  "), "\(result.stdout)")
                }
            }
        }
        /// The installed `calltrace` CLI, as the operator, against the deployment the README set up.
        func calltrace(_ arguments: [String]) async throws -> String {
            let result = try await run("\(root.path)/usr/local/bin/calltrace", arguments, environment: environment)
            try #require(result.status == 0, "calltrace \(arguments.joined(separator: " "))\nexit \(result.status)\n\(result.stderr)")
            return result.stdout
        }
        let hostPKI = root.appendingPathComponent("etc/calltrace/pki").path
        let operatorPKI = root.appendingPathComponent("root/calltrace-pki").path
        let deploymentFile = root.appendingPathComponent("etc/calltrace/deployment.json").path

        let lines = try Self.runAloneLines(of: service)
        #expect(lines.contains { $0.hasPrefix("calltrace health ") }, "the README never checks the service")
        try await walk(lines)
        try #require(running != nil, "the README never starts calltrace-\(service)")
        #expect(createdUser, "the README never creates \(serviceUser), the user the unit runs it as")

        // The unit make install installed lets the service write what the config the README
        // installed writes (both moved into the scratch root), and nothing else.
        let installedUnit = try String(contentsOfFile: "\(root.path)/usr/local/lib/systemd/system/calltrace-\(service).service", encoding: .utf8)
        let installedConfig = try Self.config(at: root.appendingPathComponent("etc/calltrace/\(service).json").path)
        try Self.checkWrites(unit: moved(installedUnit), config: installedConfig, service: service, stateRoot: "\(root.path)/var/lib")

        // Media: a recording stored before the rotation (by the telephony gateway, for a call
        // it started) must play after it (as compliance, which plays as itself). Media takes a
        // recording only for a call transcript confirms: the other three services run beside it
        // here, where the deployment file says, and a firm is set up as it would be.
        let audio = wavFile(seconds: 2)
        var stored: (id: String, org: String)?
        var others: [RunningProcess] = []
        defer { for process in others { process.signal(SIGKILL) } }
        if service == "media" {
            let file = root.appendingPathComponent("call.wav")
            try audio.write(to: file)
            let org = try await Self.firmWithACall("call-1", pki: operatorPKI, moved: moved, root: root.appendingPathComponent("others"),
                                                    environment: environment, started: &others)
            let answer = try await calltrace(["recordings", "upload", file.path, "--org", org, "--call", "call-1", "--as", "gateway-telephony",
                                              "--pki", operatorPKI, "--deployment", deploymentFile, "--json"])
            let reply = try #require(try JSONSerialization.jsonObject(with: Data(answer.utf8)) as? [String: Any], "\(answer)")
            let id = try #require((reply["recording"] as? [String: Any])?["recordingId"] as? String, "\(answer)")
            stored = (id, org)
        }

        let rotation = try Self.rotationLines(of: service)
        #expect(rotation.contains { $0.hasPrefix("\(runAsService)calltrace-\(service) rotate-master-key ") }, "the README never rotates the master key as \(serviceUser)")
        #expect(rotation.last { $0.hasPrefix("systemctl ") }?.hasPrefix("systemctl start ") == true, "the rotation does not end with the service started")
        try await walk(rotation)
        // The key store stayed where the service looks for it, beside the one master key left:
        // the new key in the old one's place, the old one destroyed.
        let keyFolder = root.appendingPathComponent("etc/calltrace/keys/\(service)").path
        let keyFiles = try FileManager.default.contentsOfDirectory(atPath: keyFolder).filter { $0.hasSuffix(".sqlite") || $0.contains("master-key") }
        #expect(keyFiles.sorted() == ["\(service).keys.sqlite", "\(service).master-key"], "\(keyFiles)")
        // Nothing but the service's own folder under keys/.
        let keyFolders = try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("etc/calltrace/keys").path)
        #expect(keyFolders == [service], "\(keyFolders)")

        if let stored {
            let out = root.appendingPathComponent("played.wav")
            _ = try await calltrace(["recordings", "play", stored.id, "--org", stored.org, "--out", out.path, "--as", "compliance",
                                     "--pki", operatorPKI, "--deployment", deploymentFile])
            #expect(try Data(contentsOf: out) == audio, "the recording stored before the rotation does not play back as it was")
        }
        let process = try #require(running, "the README never starts calltrace-\(service)")

        // What the path left behind: the host holds of the PKI only ca.crt and its own
        // certificate and key; no CA key beside the certificates.
        let hostFiles = try FileManager.default.contentsOfDirectory(atPath: hostPKI).sorted()
        #expect(hostFiles == ["ca.crt", "\(service).crt", "\(service).key"], "the host's PKI folder holds \(hostFiles)")
        #expect(!FileManager.default.fileExists(atPath: "\(hostPKI)/ca.key"))
        #expect(FileManager.default.fileExists(atPath: root.appendingPathComponent("root/calltrace-ca/ca.key").path))
        // Its folders and secrets: its user's, private to it.
        var owned = [("etc/calltrace/keys/\(service)", 0o700), ("var/lib/calltrace/\(service)", 0o700),
                     ("etc/calltrace/keys/\(service)/\(service).master-key", 0o600), ("etc/calltrace/keys/\(service)/\(service).keys.sqlite", 0o600),
                     ("var/lib/calltrace/\(service)/\(service).sqlite", 0o600), ("etc/calltrace/pki/\(service).key", 0o600)]
        if service == "identity" { owned.append(("etc/calltrace/keys/identity/identity.smtp-login", 0o600)) }
        for (file, expected) in owned {
            let attributes = try FileManager.default.attributesOfItem(atPath: root.appendingPathComponent(file).path)
            let mode = attributes[.posixPermissions] as? Int
            #expect(mode == expected, "\(file): \(String(mode ?? 0, radix: 8)), not \(String(expected, radix: 8))")
            let owner = (attributes[.ownerAccountID] as? NSNumber)?.uint32Value
            #expect(owner == standIn.uid, "\(file) belongs to uid \(owner.map(String.init) ?? "?"), not the service's user (\(standIn.name) here)")
        }
        process.signal(SIGTERM)
        let exit = try #require(await process.waitForExit())
        #expect(exit.status == 0, "\(exit.stderr)")
        #expect(process.stdout.isEmpty, "logs go to stderr; stdout stays empty")
    }
}
