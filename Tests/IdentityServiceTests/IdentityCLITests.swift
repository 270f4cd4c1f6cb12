import CallTraceProto
import CallTraceTestSupport
import Foundation
import IdentityDomain
import Testing

@Suite("calltrace orgs, accounts, login, users, grants, security-policy: identity from the command line", .overTLS, .serialized)
struct IdentityCLITests {
    @Test("An operator creates a firm; its admin accepts the e-mailed invitation, signs in, invites and manages a user, grants support and sets a policy; passwords only on standard input")
    func wholePath() async throws {
        let identity = try await InProcessService.start(IdentityService.self)
        defer { Task { await identity.stop() } }
        let pki = identity.setup.pki
        _ = try pki.credentials(for: TemporaryPKI.identity("gateway", "web"), named: "gateway-web")
        _ = try pki.credentials(for: TemporaryPKI.identity("operator", "ops"), named: "operator-ops")
        let calltrace = productsDirectory.appendingPathComponent("calltrace").path
        let target = ["--pki", pki.directory.path, "--target", "127.0.0.1:\(identity.instance.port)"]
        var environment = ProcessInfo.processInfo.environment
        environment["CALLTRACE_AS"] = "gateway-web"  // a gateway's own tooling; a firm's staff go through the web app (CLIThroughWebAppTests)
        func cli(_ arguments: [String], input: String? = nil) async throws -> ProcessResult {
            try await run(calltrace, arguments + target, environment: environment, input: input.map { Data($0.utf8) })
        }
        func json(_ result: ProcessResult) throws -> [String: Any] {
            try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "\(result.stdout) \(result.stderr)")
        }
        let password = "correct horse battery staple"

        let created = try json(try await cli(["orgs", "create", "--as", "operator-ops", "--name", "Smith & Co", "--admin-email", "admin@smith.example", "--json"]))
        let org = try #require(created["orgId"] as? String)
        let invitation = try #require(try identity.setup.deliveredToken(to: "admin@smith.example"))
        let redeemed = try await cli(["accounts", "redeem"], input: "\(invitation)\n\(password)\n")
        #expect(redeemed.status == 0 && redeemed.stdout.contains("is ready"), "\(redeemed.stdout) \(redeemed.stderr)")
        #expect(try await cli(["login", "--org", org, "--email", "admin@smith.example"]).status != 0, "no password on standard input")
        let login = try await cli(["login", "--org", org, "--email", "admin@smith.example"], input: "\(password)\n")
        let token = login.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(login.status == 0 && token.count > 20, "\(login.stderr)")
        environment["CALLTRACE_TOKEN"] = token
        // On a terminal the password is asked for and not echoed: a pseudo-terminal (Python's pty)
        // waits for the prompt, types the password, and reads back everything the terminal shows.
        let typist = """
            import os, pty, signal, sys
            signal.alarm(60)  # a prompt that never comes ends the test, not the suite
            pid, fd = pty.fork()
            if pid == 0:
                os.execv(sys.argv[1], sys.argv[1:])
            seen = b""
            while b"Password: " not in seen:
                chunk = os.read(fd, 1024)
                if not chunk: break
                seen += chunk
            os.write(fd, os.environ["TYPED"].encode() + b"\\n")
            while True:
                try:
                    chunk = os.read(fd, 1024)
                except OSError:
                    break
                if not chunk: break
                seen += chunk
            _, status = os.waitpid(pid, 0)
            sys.stdout.write(seen.decode(errors="replace"))
            sys.exit(os.waitstatus_to_exitcode(status))
            """
        var typing = environment
        typing["TYPED"] = password
        let typed = try await run("/usr/bin/python3", ["-c", typist, calltrace, "login", "--org", org, "--email", "admin@smith.example"] + target,
                                  environment: typing)
        #expect(typed.status == 0 && typed.stdout.contains("Password: "), "\(typed.stdout) \(typed.stderr)")
        #expect(!typed.stdout.contains(password), "the password was echoed: \(typed.stdout)")

        let invited = try json(try await cli(["users", "invite", "--org", org, "--email", "member@smith.example", "--role", "member", "--name", "Mo Member", "--json"]))
        let user = try #require(invited["userId"] as? String)
        let listed = try await cli(["users", "list", "--org", org])
        #expect(listed.stdout.contains("<admin@smith.example>  admin  active") && listed.stdout.contains("\(user)  Mo Member <member@smith.example>  member  invited"),
                "\(listed.stdout) \(listed.stderr)")
        #expect(try await cli(["users", "show", "MEMBER@smith.example", "--org", org]).stdout.hasPrefix("\(user)  Mo Member"))
        #expect(try await cli(["users", "show", "nobody@smith.example", "--org", org]).status == 3)
        let me = try await cli(["whoami", "--org", org])
        #expect(me.stdout.contains("<admin@smith.example>  admin  active") && me.stdout.contains("may: ") && me.stdout.contains("users-manage"),
                "\(me.stdout) \(me.stderr)")
        #expect(try await cli(["users", "role", user, "--org", org, "--role", "analyst"]).stdout.contains("is now analyst"))
        #expect(try await cli(["users", "invite", "--org", org, "--email", "x@smith.example", "--role", "boss"]).status != 0)
        #expect(try await cli(["users", "revoke-sessions", user, "--org", org]).stdout.contains("sessions ended"))
        #expect(try await cli(["users", "suspend", user, "--org", org]).status == 0)
        #expect(try await cli(["users", "remove", user, "--org", org]).status == 0)
        #expect(try await cli(["users", "remove", user, "--org", org]).status == 3, "gone")

        let grant = try await cli(["grants", "create", "--org", org, "--permission", "recordings-play", "--permission", "transcripts-read",
                                   "--minutes", "30", "--reason", "ticket 42"])
        #expect(grant.status == 0 && grant.stdout.hasPrefix("grant "), "\(grant.stdout) \(grant.stderr)")
        let grantID = String(grant.stdout.split(separator: " ")[1])
        #expect(try await cli(["grants", "revoke", grantID, "--org", org]).status == 0)
        let grants = try await cli(["grants", "list", "--org", org])
        #expect(grants.stdout.hasPrefix("\(grantID)  recordings-play,transcripts-read  revoked ") && grants.stdout.contains("reason: ticket 42")
                && grants.stdout.contains("by admin@smith.example (user:"),
                "\(grants.stdout) \(grants.stderr)")
        let orgs = try await cli(["orgs", "list", "--as", "operator-ops"])
        #expect(orgs.stdout.contains("\(org)  Smith & Co  active"), "\(orgs.stdout) \(orgs.stderr)")
        let notOperator = try await cli(["orgs", "list"])
        #expect(notOperator.status == 4 && notOperator.stderr.contains("an operator adds --as operator-<name>"),
                "a firm's token through the web gateway is no operator, and the CLI says what to add: \(notOperator.stderr)")
        // --pki, --org and the deployment from one small file: typed on no command.
        let deploymentFile = pki.directory.appendingPathComponent("cli-deployment.json"), config = pki.directory.appendingPathComponent("cli-config.json")
        try Data(#"{"services":{"identity":"127.0.0.1:\#(identity.instance.port)"}}"#.utf8).write(to: deploymentFile)
        try Data(#"{"pki":"\#(pki.directory.path)","org":"\#(org)","deployment":"\#(deploymentFile.path)"}"#.utf8).write(to: config)
        var configured = environment
        configured["CALLTRACE_CONFIG"] = config.path
        let fromConfig = try await run(calltrace, ["users", "list"], environment: configured)
        #expect(fromConfig.status == 0 && fromConfig.stdout.contains("admin@smith.example"), "\(fromConfig.stdout) \(fromConfig.stderr)")
        // Nothing configured: the CLI says where each is set.
        configured["CALLTRACE_CONFIG"] = pki.directory.appendingPathComponent("no-such-config.json").path
        let noOrg = try await run(calltrace, ["users", "list"] + target, environment: configured)
        #expect(noOrg.status == 1 && noOrg.stderr.contains("--org ORG_ID, or set CALLTRACE_ORG"), "\(noOrg.stderr)")
        let noPKI = try await run(calltrace, ["users", "list", "--org", org, "--target", "127.0.0.1:\(identity.instance.port)"], environment: configured)
        #expect(noPKI.status != 0 && noPKI.stderr.contains("give --pki, or set CALLTRACE_PKI"), "\(noPKI.stderr)")
        try Data(#"{"pki":"x","colour":"blue"}"#.utf8).write(to: config)
        configured["CALLTRACE_CONFIG"] = config.path
        let badConfig = try await run(calltrace, ["users", "list"], environment: configured)
        #expect(badConfig.status != 0 && badConfig.stderr.contains("unknown key \"colour\""), "\(badConfig.stderr)")
        // The policy: shown; flags change only what they name; no flag changes nothing and says so.
        let shown = try await cli(["security-policy", "show", "--org", org])
        #expect(shown.status == 0 && shown.stdout.contains("two-factor:        not required") && shown.stdout.contains("idle timeout:      1800 s"),
                "\(shown.stdout) \(shown.stderr)")
        let bare = try await cli(["security-policy", "--org", org])
        #expect(bare.status != 0 && bare.stderr.contains("security-policy show"), "\(bare.stdout) \(bare.stderr)")
        #expect(try await cli(["security-policy", "--org", org, "--max-seconds", "3600"]).status == 0)
        let idle = try await cli(["security-policy", "--org", org, "--idle-seconds", "900"])
        #expect(idle.status == 0 && idle.stdout.contains("idle timeout:      900 s") && idle.stdout.contains("session lifetime:  3600 s"),
                "the lifetime set before stays: \(idle.stdout) \(idle.stderr)")
        let json = try json(try await cli(["security-policy", "show", "--org", org, "--json"]))
        #expect((json["policy"] as? [String: Any])?["sessionIdleSeconds"] as? Int == 900)

        // E-mail alerts: shown, chosen (exactly those named), refused for a name that is none.
        let alerts = try await cli(["alerts", "show", "--org", org])
        #expect(alerts.status == 0 && alerts.stdout.contains("missed-call") && alerts.stdout.contains("off"), "\(alerts.stdout) \(alerts.stderr)")
        let chosen = try await cli(["alerts", "set", "--org", org, "--alert", "missed-call", "--alert", "weekly-summary"])
        #expect(chosen.status == 0 && chosen.stdout.split(separator: "\n").filter { $0.contains(" on ") }.count == 2, "\(chosen.stdout) \(chosen.stderr)")
        let shownJSON = try await cli(["alerts", "show", "--org", org, "--json"])
        let chosenJSON = try JSONSerialization.jsonObject(with: Data(shownJSON.stdout.utf8)) as? [String: Any]
        #expect((chosenJSON?["preferences"] as? [[String: Any]])?.filter { $0["enabled"] as? Bool == true }.count == 2)
        let wrong = try await cli(["alerts", "set", "--org", org, "--alert", "everything"])
        #expect(wrong.status != 0 && wrong.stderr.contains("missed-call, new-enquiry"), "\(wrong.stderr)")

        #expect(try await cli(["logout"]).status == 0)
        #expect(try await cli(["users", "invite", "--org", org, "--email", "late@smith.example", "--role", "member"]).status == 4, "the session ended")
        environment["CALLTRACE_TOKEN"] = nil
        #expect(try await cli(["orgs", "suspend", "--as", "operator-ops", "--org", org, "--reason", "unpaid"]).status == 0)
        #expect(try await cli(["login", "--org", org, "--email", "admin@smith.example"], input: "\(password)\n").status != 0, "a suspended firm cannot sign in")
        #expect(!identity.log.text.contains(password) && !identity.log.text.contains(token))
        // The audit events say what changed from what to what.
        let details = try await identity.instance.database.read { db in
            try db.query("SELECT event FROM audit_outbox WHERE org_id = ? ORDER BY id", org).compactMap { row in
                try row.blob("event").map { try Calltrace_Compliance_V1_AuditEvent(serializedBytes: $0) }
            }.filter { $0.action == "security_policy.changed" }.map(\.detail)
        }
        #expect(details == ["session_max_seconds: 43200 -> 3600", "session_idle_seconds: 1800 -> 900"], "\(details)")
    }
}
