import CallTraceAPI
import CallTraceDeploymentSupport
import CallTraceProto
import CallTraceRPC
import CallTraceTestSupport
import Foundation
import Testing
@testable import WebGateway

/// A firm's staff member at a terminal: `calltrace` with the firm's web address and an API token
/// made in the web app, no certificate and no key anywhere on the machine. Their commands reach
/// every service through the web gateway's `/api/v1/rpc`, as them, from the address the gateway
/// sees; what their role does not allow is refused as in the pages.
@Suite(.serialized) struct CLIThroughWebAppTests {
    @Test func aFirmsStaffUseTheCLIWithAnAPITokenAndNoCertificate() async throws {
        let d = try await WebDeployment()
        let (org, admin) = try await d.firm()
        let file = wavFile(samples: 16_000)
        let recording = try await d.recordedCall("call-cli", org: org, admin: admin, file: file)
        let member = try await d.services.user(.member, in: org, admin: admin)
        let memberToken = try await d.apiToken(member, org: org, WebAPITests.memberScopes).secret
        let adminToken = try await d.apiToken(admin, org: org, [.usersManage, .settingsManage, .auditRead, .requestsManage, .reportsRead]).secret
        let analyst = try await d.services.user(.analyst, in: org, admin: admin)
        let analystToken = try await d.apiToken(analyst, org: org, [.reportsRead]).secret

        // A home of its own (no config file), and nothing of the deployment's PKI in reach.
        let home = FileManager.default.temporaryDirectory.appendingPathComponent("cli-home-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: home) }
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("CALLTRACE_") }
        environment["HOME"] = home.path
        environment["CALLTRACE_URL"] = d.base
        environment["CALLTRACE_ORG"] = org
        let calltrace = productsDirectory.appendingPathComponent("calltrace").path
        func cli(_ arguments: [String], token: String?) async throws -> ProcessResult {
            var environment = environment
            environment["CALLTRACE_TOKEN"] = token
            return try await run(calltrace, arguments, environment: environment)
        }

        // A member: calls, a call, its outcome, the recording (a stream) — the same commands as an operator's.
        let me = try await cli(["whoami"], token: memberToken)
        #expect(me.status == 0 && me.stdout.contains("member"), "\(me.stdout) \(me.stderr)")
        let calls = try await cli(["calls", "list"], token: memberToken)
        #expect(calls.status == 0 && calls.stdout.contains("call-cli"), "\(calls.stdout) \(calls.stderr)")
        let json = try await cli(["calls", "show", "call-cli", "--json"], token: memberToken)
        #expect(json.status == 0 && json.stdout.contains("\"callId\":\"call-cli\""), "\(json.stdout) \(json.stderr)")
        let marked = try await cli(["calls", "mark", "call-cli", "--enquiry", "new", "--matter", "PI-9", "--practice-area", "personal-injury"], token: memberToken)
        #expect(marked.status == 0 && marked.stdout.contains("PI-9"), "\(marked.stdout) \(marked.stderr)")
        let out = home.appendingPathComponent("call.wav").path
        let played = try await cli(["recordings", "play", recording.recordingID, "--out", out, "--reason", "file review"], token: memberToken)
        #expect(played.status == 0, "\(played.stdout) \(played.stderr)")
        #expect(FileManager.default.contents(atPath: out) == file, "the recording, byte for byte, through the web app")
        #expect(try await cli(["calls", "show", "missing"], token: memberToken).status == 3, "not found: exit 3")

        // The member's role: no users, no security policy.
        let users = try await cli(["users", "list"], token: memberToken)
        #expect(users.status == 4 && users.stderr.contains("PERMISSION_DENIED"), "\(users.stdout) \(users.stderr)")

        // The admin's token: users, the security policy, the audit chain, a subject request.
        let listed = try await cli(["users", "list"], token: adminToken)
        #expect(listed.status == 0 && listed.stdout.contains("member"), "\(listed.stdout) \(listed.stderr)")
        let policy = try await cli(["security-policy", "show"], token: adminToken)
        #expect(policy.status == 0, "\(policy.stdout) \(policy.stderr)")
        let verified = try await cli(["audit", "verify"], token: adminToken)
        #expect(verified.status == 0 && verified.stdout.contains("intact"), "\(verified.stdout) \(verified.stderr)")
        let opened = try await cli(["requests", "open", "--kind", "access", "--number", "07700 900123", "--received", "2026-12-01",
                                    "--nation", "england-and-wales"], token: adminToken)
        #expect(opened.status == 0, "\(opened.stdout) \(opened.stderr)")
        #expect(try await cli(["requests", "list"], token: adminToken).stdout.contains("access"))

        // The analyst: the report, never the recording.
        let now = Double(d.services.calls.transcript.clock.nowUnixMs) / 1000
        let day = { (offset: Double) in ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: now + offset * 86_400)) }
        let report = try await cli(["report", "attribution", "--from", day(-30), "--before", day(1)], token: analystToken)
        #expect(report.status == 0 && report.stdout.contains("Google Ads"), "\(report.stdout) \(report.stderr)")
        let refused = try await cli(["recordings", "play", recording.recordingID, "--out", home.appendingPathComponent("no.wav").path], token: analystToken)
        #expect(refused.status == 4, "\(refused.stdout) \(refused.stderr)")

        // No token; a made-up one: refused, with what to do.
        let none = try await cli(["calls", "list"], token: nil)
        #expect(none.status == 4 && none.stderr.contains("API token"), "\(none.stderr)")
        // Not for a person: claiming an address, signing in, operators' commands.
        let claimed = try await cli(["calls", "list", "--client-address", "203.0.113.9"], token: memberToken)
        #expect(claimed.status == 64 && claimed.stderr.contains("--client-address"), "\(claimed.stderr)")
        let login = try await cli(["login", "--email", "member@firm.example"], token: nil)
        #expect(login.status == 64 && login.stderr.contains("web app"), "\(login.stderr)")
        let orgs = try await cli(["orgs", "list"], token: adminToken)
        #expect(orgs.status != 0 && orgs.stderr.contains("operator"), "\(orgs.stderr)")
        // Neither --url nor --as: says both ways in.
        var bare = environment
        bare["CALLTRACE_URL"] = nil
        let lost = try await run(calltrace, ["calls", "list"], environment: bare)
        #expect(lost.status == 64 && lost.stderr.contains("--url") && lost.stderr.contains("--as"), "\(lost.stderr)")
        await d.stop()
    }
}
