import CallTraceProto
import CallTraceTestSupport
import Foundation
import Testing

@Suite("calltrace audit and calltrace compliance: compliance from the command line", .overTLS, .serialized)
struct ComplianceCLITests {
    @Test("audit list, verify and export, readable or --json; due-date offline")
    func commands() async throws {
        let deployment = try await ComplianceDeployment()
        defer { Task { await deployment.stop() } }
        let (org, email, admin) = try await deployment.identity.newOrganisation()
        _ = try await deployment.append(4, org: org, actor: "operator:ops")
        _ = try deployment.pki.credentials(for: TemporaryPKI.identity("gateway", "web"), named: "gateway-web")
        let calltrace = productsDirectory.appendingPathComponent("calltrace").path
        let common = ["--pki", deployment.pki.directory.path, "--target", "127.0.0.1:\(deployment.compliance.instance.port)", "--org", org]
        var environment = ProcessInfo.processInfo.environment
        environment["CALLTRACE_AS"] = "gateway-web"  // a gateway's own tooling; a firm's staff go through the web app (CLIThroughWebAppTests)
        environment["CALLTRACE_TOKEN"] = admin
        func cli(_ arguments: [String]) async throws -> ProcessResult { try await run(calltrace, arguments + common, environment: environment) }

        let listed = try await cli(["audit", "list", "--operators"])
        #expect(listed.status == 0 && listed.stdout.contains("operator:ops (operator)  recording.played  recording:rec_4"), "\(listed.stdout) \(listed.stderr)")
        // Where the viewer may see the firm's people (an admin), a user's events name them.
        let me = try await deployment.identity.client().unary(Calltrace_Identity_V1_IdentityService.getCurrentUser, .with { $0.orgID = org },
                                                              options: try bearer(admin)).user
        _ = try await deployment.append(1, org: org, prefix: "mine", actor: "user:\(me.userID)", action: "recording.shared")
        let both = deployment.pki.directory.appendingPathComponent("deployment.json")
        try Data(#"{"services":{"identity":"127.0.0.1:\#(deployment.identity.instance.port)","compliance":"127.0.0.1:\#(deployment.compliance.instance.port)"}}"#.utf8)
            .write(to: both)
        let named = try await run(calltrace, ["audit", "list", "--action", "recording.shared", "--pki", deployment.pki.directory.path, "--org", org,
                                              "--deployment", both.path], environment: environment)
        #expect(named.status == 0 && named.stdout.contains("\(email) (user:\(me.userID))  recording.shared"), "\(named.stdout) \(named.stderr)")
        let verified = try await cli(["audit", "verify", "--json"])
        #expect(verified.status == 0 && verified.stdout.contains("\"intact\":true"), "\(verified.stdout)")
        let out = deployment.pki.directory.appendingPathComponent("trail.jsonl").path
        let exported = try await cli(["audit", "export", "--out", out])
        #expect(exported.status == 0 && exported.stderr.contains("exported 5 events"), "\(exported.stderr)")
        #expect(try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n").count == 5)
        #expect((try FileManager.default.attributesOfItem(atPath: out)[.posixPermissions] as? Int) == 0o600)

        try deployment.compliance.instance.database.sync { db in
            _ = try db.execute("DELETE FROM audit_chain WHERE org_id = ? AND chain_index = 2", org)
        }
        let broken = try await cli(["audit", "verify"])
        #expect(broken.status == 1 && broken.stdout.contains("BROKEN at event 2"), "\(broken.stdout)")
        environment["CALLTRACE_TOKEN"] = nil
        #expect(try await cli(["audit", "list"]).status == 4)

        let due = try await run(calltrace, ["compliance", "due-date", "--received", "2025-01-31", "--nation", "scotland"])
        #expect(due.status == 0 && due.stdout == "2025-02-28\n")
        let extended = try await run(calltrace, ["compliance", "due-date", "--received", "2025-09-03", "--nation", "england-and-wales", "--extended",
                                                 "--paused-days", "3"])
        #expect(extended.stdout == "2025-12-08\n", "3 Dec + 3 days = Saturday 6 Dec → Monday 8 Dec")
        let later = try await run(calltrace, ["compliance", "due-date", "--received", "2031-11-25", "--nation", "england-and-wales", "--verbose"])
        #expect(later.status == 0 && later.stdout.hasPrefix("2031-12-29\nbank holidays from the statutory and customary rules"), "\(later.stdout) \(later.stderr)")
        #expect(try await run(calltrace, ["compliance", "due-date", "--received", "2025-02-30", "--nation", "scotland"]).status != 0)
    }

    @Test("retention, deletions and requests: set, run --wait, delete-call --wait, a case from open to erasure to close; --json; exit codes")
    func casesFromTheCommandLine() async throws {
        let deployment = try await CallDataDeployment()
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await deployment.organisation(tracking: "01184960000")
        let t0 = CallDataDeployment.start
        try await deployment.call("call-1", org: org, tracking: "01184960000", caller: "07700 900123", at: t0 + 1000)
        try await deployment.call("call-2", org: org, tracking: "01184960000", caller: "07700 900456", at: t0 + 2000)
        _ = try deployment.pki.credentials(for: TemporaryPKI.identity("gateway", "web"), named: "gateway-web")
        let calltrace = productsDirectory.appendingPathComponent("calltrace").path
        let common = ["--pki", deployment.pki.directory.path, "--target", "127.0.0.1:\(deployment.compliance.instance.port)", "--org", org]
        var environment = ProcessInfo.processInfo.environment
        environment["CALLTRACE_AS"] = "gateway-web"  // a gateway's own tooling; a firm's staff go through the web app (CLIThroughWebAppTests)
        environment["CALLTRACE_TOKEN"] = admin
        func cli(_ arguments: [String]) async throws -> ProcessResult { try await run(calltrace, arguments + common, environment: environment) }

        let set = try await cli(["retention", "set", "--recordings", "12", "--transcripts", "12", "--call-records", "24"])
        #expect(set.status == 0 && set.stdout.contains("call records: 24 months"), "\(set.stdout) \(set.stderr)")
        let refused = try await cli(["retention", "set", "--recordings", "36", "--transcripts", "12", "--call-records", "24"])
        #expect(refused.status == 1 && refused.stderr.contains("cannot outlive"), "\(refused.stderr)")
        let ran = try await cli(["retention", "run", "--wait", "--json"])
        // --json spells enums as the flags do, times in RFC 3339, 64-bit numbers as numbers.
        #expect(ran.status == 0 && ran.stdout.contains(#""state":"finished""#) && ran.stdout.hasSuffix("}\n"), "\(ran.stdout) \(ran.stderr)")
        let answer = try #require(try JSONSerialization.jsonObject(with: Data(ran.stdout.utf8)) as? [String: Any])
        let finished = answer["run"] as? [String: Any] ?? answer
        #expect((finished["startedAt"] as? String).map { ISO8601DateFormatter().date(from: $0.replacingOccurrences(of: #"\.\d+Z$"#, with: "Z", options: .regularExpression)) != nil } == true,
                "\(ran.stdout)")
        #expect(finished.keys.allSatisfy { !$0.hasSuffix("UnixMs") }, "\(ran.stdout)")
        #expect(try await cli(["retention", "runs"]).stdout.contains("recordings purged: 0"))

        let deleted = try await cli(["deletions", "delete-call", "--call", "call-2", "--reason", "asked by the client", "--wait"])
        #expect(deleted.status == 0 && deleted.stdout.contains("done") && deleted.stdout.contains("recordings deleted: 1"), "\(deleted.stdout) \(deleted.stderr)")
        #expect(try await cli(["deletions", "list"]).stdout.contains("call call-2"))
        #expect(try await cli(["deletions", "show", "del_nothing"]).status == 3)

        let opened = try await cli(["requests", "open", "--kind", "erasure", "--number", "07700 900123", "--received", "2026-11-02",
                                    "--nation", "scotland", "--json"])
        #expect(opened.status == 0, "\(opened.stderr)")
        let id = try #require(try JSONSerialization.jsonObject(with: Data(opened.stdout.utf8)) as? [String: Any])["requestId"] as? String ?? ""
        #expect(id.hasPrefix("sar_"))
        let listed = try await cli(["requests", "list"])
        #expect(listed.stdout.contains("\(id)  erasure  open  due 2026-12-02") && listed.stdout.contains("+44 7700 ••••23"), "\(listed.stdout)")
        #expect(!listed.stdout.contains("900123"), "numbers are masked")
        #expect(try await cli(["requests", "locate", id]).stdout.contains("call-1"))
        let early = try await cli(["requests", "erase", id])
        #expect(early.status == 1 && early.stderr.contains("identity check"), "\(early.stderr)")
        #expect(try await cli(["requests", "identity", id, "--result", "passed"]).status == 0)
        #expect(try await cli(["requests", "erase", id]).status == 0)
        #expect(try await eventually { try await cli(["requests", "show", id]).stdout.contains("1 of 1 deletions done, confirmed") })
        let closed = try await cli(["requests", "close", id, "--outcome", "erased; letter sent"])
        #expect(closed.status == 0 && closed.stdout.contains("closed"), "\(closed.stdout)")
        #expect(try await cli(["requests", "list", "--overdue"]).stdout == "no requests\n")
        environment["CALLTRACE_TOKEN"] = nil
        #expect(try await cli(["requests", "list"]).status == 4)
    }

    @Test("requests bundle, bundles show and download (SHA-256 checked, 0600), matters export, offboarding start/confirm, verify-certificate offline")
    func bundlesAndOffboardingFromTheCommandLine() async throws {
        let deployment = try await CallDataDeployment()
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await deployment.organisation(tracking: "01184960000")
        let recording = try await deployment.call("call-1", org: org, tracking: "01184960000", caller: "07700 900123", at: CallDataDeployment.start + 1000)
        _ = try deployment.pki.credentials(for: TemporaryPKI.identity("gateway", "web"), named: "gateway-web")
        let calltrace = productsDirectory.appendingPathComponent("calltrace").path
        let target = ["--pki", deployment.pki.directory.path, "--target", "127.0.0.1:\(deployment.compliance.instance.port)"]
        let common = target + ["--org", org]
        var environment = ProcessInfo.processInfo.environment
        environment["CALLTRACE_AS"] = "gateway-web"  // a gateway's own tooling; a firm's staff go through the web app (CLIThroughWebAppTests)
        environment["CALLTRACE_TOKEN"] = admin
        func cli(_ arguments: [String]) async throws -> ProcessResult { try await run(calltrace, arguments + common, environment: environment) }
        func json(_ result: ProcessResult) throws -> [String: Any] {
            try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "\(result.stdout) \(result.stderr)")
        }
        let folder = deployment.pki.directory.path

        let opened = try json(try await cli(["requests", "open", "--kind", "access", "--number", "07700 900123", "--received", "2026-11-02",
                                             "--nation", "england-and-wales", "--json"]))
        let id = opened["requestId"] as? String ?? ""
        #expect(try await cli(["requests", "identity", id, "--result", "passed"]).status == 0)
        let bundle = try json(try await cli(["requests", "bundle", id, "--json"]))
        let bundleID = (bundle["bundle"] as? [String: Any])?["bundleId"] as? String ?? ""
        #expect(bundleID.hasPrefix("bun_"))
        #expect(try await eventually { try await cli(["bundles", "show", bundleID]).stdout.contains("ready") })
        let out = folder + "/access.tar"
        let downloaded = try await cli(["bundles", "download", bundleID, "--out", out])
        #expect(downloaded.status == 0 && downloaded.stdout.contains("(checked)"), "\(downloaded.stdout) \(downloaded.stderr)")
        #expect((try FileManager.default.attributesOfItem(atPath: out)[.posixPermissions] as? Int) == 0o600)
        #expect(try untar(try Data(contentsOf: URL(fileURLWithPath: out)))["calls/call-1/\(recording).wav"] == wavFile(seconds: 1))

        let matter = try await cli(["matters", "export", "--call", "call-1", "--matter", "PI/2026/0042"])
        #expect(matter.status == 0 && matter.stdout.contains("matter"), "\(matter.stdout) \(matter.stderr)")

        let started = try json(try await cli(["offboarding", "start", "--json"]))
        let offboarding = started["offboarding"] as? [String: Any] ?? [:]
        let offID = offboarding["offboardingId"] as? String ?? "", exportID = offboarding["exportBundleId"] as? String ?? ""
        #expect(try await eventually { try await cli(["bundles", "show", exportID]).stdout.contains("ready") })
        let certificate = folder + "/certificate.txt"
        let confirmed = try await cli(["offboarding", "confirm", "--id", offID, "--confirm-org", org, "--certificate-out", certificate])
        #expect(confirmed.status == 0 && confirmed.stdout.contains("completed"), "\(confirmed.stdout) \(confirmed.stderr)")
        // Nothing pinned yet: no verdict but INVALID, whatever key the certificate names.
        var pinning = ProcessInfo.processInfo.environment
        pinning["CALLTRACE_SIGNING_KEY"] = folder + "/pinned/signing-key.pub"
        let unpinned = try await run(calltrace, ["verify-certificate", certificate], environment: pinning)
        #expect(unpinned.status == 1 && unpinned.stdout.contains("no pinned signing key"), "\(unpinned.stdout) \(unpinned.stderr)")
        let key = try await run(calltrace, ["offboarding", "signing-key"] + target, environment: environment.merging(pinning) { $1 })
        #expect(key.stdout.contains("pinned in \(folder)/pinned/signing-key.pub (first use)"), "\(key.stdout) \(key.stderr)")
        let pinnedValid = try await run(calltrace, ["verify-certificate", certificate], environment: pinning)
        #expect(pinnedValid.status == 0 && pinnedValid.stdout.contains("VALID"), "\(pinnedValid.stdout) \(pinnedValid.stderr)")
        let keyFile = folder + "/signing.pub"
        try Data(key.stdout.utf8).write(to: URL(fileURLWithPath: keyFile))
        let valid = try await run(calltrace, ["verify-certificate", certificate, "--public-key", keyFile])
        #expect(valid.status == 0 && valid.stdout.contains("VALID: deletion certificate of organisation \(org)"), "\(valid.stdout) \(valid.stderr)")
        let other = try await run(calltrace, ["verify-certificate", certificate, "--public-key", Data(repeating: 9, count: 32).base64EncodedString()])
        #expect(other.status == 1 && other.stdout.contains("not by the pinned key"), "\(other.stdout)")
        var altered = try Data(contentsOf: URL(fileURLWithPath: certificate))
        altered[altered.count / 2] ^= 0x01
        try altered.write(to: URL(fileURLWithPath: certificate))
        let invalid = try await run(calltrace, ["verify-certificate", certificate, "--public-key", keyFile])
        #expect(invalid.status == 1 && invalid.stdout.hasPrefix("INVALID"), "\(invalid.stdout)")
    }

    @Test("notices set and show, register sub-processors, record-of-processing --json, agreement and accept")
    func noticesAndRegisterFromTheCommandLine() async throws {
        let deployment = try await CallDataDeployment()
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await deployment.organisation(tracking: "01184960000", acceptingAgreement: false)
        _ = try deployment.pki.credentials(for: TemporaryPKI.identity("gateway", "web"), named: "gateway-web")
        let calltrace = productsDirectory.appendingPathComponent("calltrace").path
        let target = ["--pki", deployment.pki.directory.path, "--target", "127.0.0.1:\(deployment.compliance.instance.port)"]
        var environment = ProcessInfo.processInfo.environment
        environment["CALLTRACE_AS"] = "gateway-web"  // a gateway's own tooling; a firm's staff go through the web app (CLIThroughWebAppTests)
        environment["CALLTRACE_TOKEN"] = admin
        func cli(_ arguments: [String], org withOrg: Bool = true) async throws -> ProcessResult {
            try await run(calltrace, arguments + target + (withOrg ? ["--org", org] : []), environment: environment)
        }

        let set = try await cli(["notices", "set", "--firm-name", "Smith & Co Solicitors", "--firm-phone", "0118 230 4651", "--inbound-greeting",
                                 "--own", "client-care=Calls with {firm} are recorded."])
        #expect(set.status == 0 && set.stdout.contains("inbound greeting: on"), "\(set.stdout) \(set.stderr)")
        #expect(try await cli(["notices", "show", "--kind", "callback-greeting"]).stdout == "This is Smith & Co Solicitors returning your call. This call is recorded.\n")
        #expect(try await cli(["notices", "show", "--kind", "client-care"]).stdout == "Calls with Smith & Co Solicitors are recorded.\n")
        #expect(try await cli(["notices", "show", "--kind", "nonsense"]).status != 0)

        let subs = try await cli(["register", "sub-processors"], org: false)
        #expect(subs.status == 0 && subs.stdout.contains("Deepgram: Speech-to-text") && subs.stdout.contains("UK IDTA"), "\(subs.stdout) \(subs.stderr)")
        let record = try await cli(["register", "record-of-processing", "--json"])
        #expect((try JSONSerialization.jsonObject(with: Data(record.stdout.utf8)) as? [String: Any])?["processor"] != nil, "\(record.stdout)")
        let shown = try await cli(["register", "agreement", "--json"])
        let agreement = try #require((try JSONSerialization.jsonObject(with: Data(shown.stdout.utf8)) as? [String: Any])?["agreement"] as? [String: Any])
        let template = agreement["templateVersion"] as? String ?? "", version = agreement["registerVersion"] as? String ?? ""
        #expect(try await cli(["register", "agreement"]).stdout.contains("NOT ACCEPTED"))
        let accepted = try await cli(["register", "accept", "--template", template, "--register-version", version])
        #expect(accepted.status == 0 && accepted.stdout.contains("accepted by user:"), "\(accepted.stdout) \(accepted.stderr)")
        #expect(try await cli(["register", "agreement"]).stdout.contains("accepted by user:"))
    }
}
