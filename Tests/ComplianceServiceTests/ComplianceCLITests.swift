import CallTraceTestSupport
import Foundation
import Testing

@Suite("calltrace audit and calltrace compliance: compliance from the command line", .serialized)
struct ComplianceCLITests {
    @Test("audit list, verify and export, readable or --json; due-date offline")
    func commands() async throws {
        let deployment = try await ComplianceDeployment()
        defer { Task { await deployment.stop() } }
        let (org, _, admin) = try await deployment.identity.newOrganisation()
        _ = try await deployment.append(4, org: org, actor: "operator:ops")
        _ = try deployment.pki.credentials(for: TemporaryPKI.identity("gateway", "web"), named: "gateway-web")
        let calltrace = productsDirectory.appendingPathComponent("calltrace").path
        let common = ["--pki", deployment.pki.directory.path, "--target", "127.0.0.1:\(deployment.compliance.instance.port)", "--org", org]
        var environment = ProcessInfo.processInfo.environment
        environment["CALLTRACE_TOKEN"] = admin
        func cli(_ arguments: [String]) async throws -> ProcessResult { try await run(calltrace, arguments + common, environment: environment) }

        let listed = try await cli(["audit", "list", "--operators"])
        #expect(listed.status == 0 && listed.stdout.contains("operator:ops (operator)  recording.played  recording:rec_4"), "\(listed.stdout) \(listed.stderr)")
        let verified = try await cli(["audit", "verify", "--json"])
        #expect(verified.status == 0 && verified.stdout.contains("\"intact\":true"), "\(verified.stdout)")
        let out = deployment.pki.directory.appendingPathComponent("trail.jsonl").path
        let exported = try await cli(["audit", "export", "--out", out])
        #expect(exported.status == 0 && exported.stderr.contains("exported 4 events"), "\(exported.stderr)")
        #expect(try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n").count == 4)
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
        #expect(try await run(calltrace, ["compliance", "due-date", "--received", "2025-02-30", "--nation", "scotland"]).status != 0)
    }
}
