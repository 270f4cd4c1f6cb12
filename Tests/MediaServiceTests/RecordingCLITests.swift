import CallTraceDeploymentSupport
import CallTraceTestSupport
import Foundation
import Testing

@Suite("calltrace recordings: media from the command line", .overTLS)
struct RecordingCLITests {
    @Test("upload, list, show, play, share, open-link, links, revoke-link, delete — readable or --json, with meaningful exit codes")
    func commands() async throws {
        let deployment = try await MediaDeployment()
        let (org, admin) = try await deployment.organisation()
        _ = try deployment.pki.credentials(for: TemporaryPKI.identity("gateway", "web"), named: "gateway-web")
        _ = try deployment.pki.credentials(for: CallLedger.telephony, named: "gateway-telephony")
        let work = deployment.pki.directory.appendingPathComponent("cli")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        let audio = work.appendingPathComponent("call.wav").path
        let file = wavFile(samples: 150_000)
        try file.write(to: URL(fileURLWithPath: audio))
        let calltrace = productsDirectory.appendingPathComponent("calltrace").path
        let common = ["--pki", deployment.pki.directory.path, "--target", "127.0.0.1:\(deployment.media.instance.port)"]
        var environment = ProcessInfo.processInfo.environment
        environment["CALLTRACE_AS"] = "gateway-web"  // a gateway's own tooling; a firm's staff go through the web app (CLIThroughWebAppTests)
        environment["CALLTRACE_TOKEN"] = admin
        func recordings(_ arguments: [String], token: Bool = true) async throws -> ProcessResult {
            var environment = environment
            if !token { environment["CALLTRACE_TOKEN"] = nil }
            return try await run(calltrace, ["recordings"] + arguments + common, environment: environment)
        }
        func json(_ result: ProcessResult) throws -> [String: Any] {
            try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "\(result.stdout) \(result.stderr)")
        }

        // The telephony gateway uploads, for a call it started (the web gateway may not: it acts
        // only for users). The format, rate and channels are read from the WAV file; the
        // checksum is computed.
        try await deployment.calls.start("cli-1", in: org)
        let asWeb = try await recordings(["upload", audio, "--org", org, "--call", "cli-1"])
        #expect(asWeb.status == 4, "\(asWeb.stderr)")
        let uploaded = try await recordings(["upload", audio, "--org", org, "--call", "cli-1", "--json", "--as", "gateway-telephony"])
        #expect(uploaded.status == 0, "\(uploaded.stderr)")
        let id = try #require((try json(uploaded)["recording"] as? [String: Any])?["recordingId"] as? String)
        let listed = try await recordings(["list", "--org", org, "--json"])
        #expect(listed.status == 0 && listed.stdout.contains(id))
        let shown = try await recordings(["show", id, "--org", org])
        #expect(shown.stdout.contains("\(id)  call cli-1  wav-pcm16  1ch 8000 Hz  \(file.count) bytes"), "\(shown.stdout)")
        let out = work.appendingPathComponent("played.wav").path
        let played = try await recordings(["play", id, "--org", org, "--out", out, "--reason", "cli check"])
        #expect(played.status == 0, "\(played.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: out)) == file)

        let redacted = try await recordings(["redact", id, "--org", org, "--range", "100-200", "--range", "1000-1010", "--reason", "card"])
        #expect(redacted.status == 0 && redacted.stdout.contains("muted \((100 + 10) * 16) bytes"), "\(redacted.stdout) \(redacted.stderr)")
        #expect(try await recordings(["redact", id, "--org", org, "--range", "200-100"]).status != 0)
        let shared = try await recordings(["share", id, "--org", org, "--ttl", "600", "--note", "matter M-9", "--json"])
        let token = try #require(try json(shared)["token"] as? String)
        let linkID = try #require((try json(shared)["link"] as? [String: Any])?["linkId"] as? String)
        let viaLink = work.appendingPathComponent("link.wav").path
        let opened = try await recordings(["open-link", "--link", token, "--out", viaLink], token: false)
        try #require(opened.status == 0 && FileManager.default.fileExists(atPath: viaLink),
                     "open-link: status \(opened.status), stdout \(opened.stdout), stderr \(opened.stderr)")
        let afterRedaction = try Data(contentsOf: URL(fileURLWithPath: viaLink))
        #expect(afterRedaction.count == file.count && afterRedaction.subdata(in: (44 + 1600)..<(44 + 3200)).allSatisfy { $0 == 0 })
        let links = try await recordings(["links", "--org", org])
        #expect(links.stdout.contains("\(linkID)") && links.stdout.contains("opens 1") && links.stdout.contains("matter M-9"))
        #expect(try await recordings(["revoke-link", linkID, "--org", org]).status == 0)
        let policy = try await recordings(["link-policy", "--org", org, "--max-ttl", "86400"])
        #expect(policy.status == 0 && policy.stdout.contains("at most 86400 s (1 days); set by user:"), "\(policy.stdout) \(policy.stderr)")
        #expect(try await recordings(["link-policy", "--org", org, "--max-ttl", "60"]).status == 1)
        let refusedLink = try await recordings(["open-link", "--link", token, "--out", viaLink], token: false)
        #expect(refusedLink.status == 3 && refusedLink.stderr.contains("NOT_FOUND"))

        #expect(try await recordings(["list", "--org", org], token: false).status == 4)
        #expect(try await recordings(["delete", id, "--org", org]).status == 0)
        #expect(try await recordings(["show", id, "--org", org]).status == 3)
        // A token beginning with '-' (base64url allows it) is a token, not an option: before,
        // "-h…" printed the help and exited 0 having done nothing.
        for odd in ["-hAAAA", "--json"] {
            let refused = try await recordings(["open-link", "--link", odd, "--out", viaLink], token: false)
            #expect(refused.status == 3, "\(odd): \(refused.status) \(refused.stderr)")
        }
        let help = try await run(calltrace, ["recordings", "upload", "--help"])
        #expect(help.stdout.contains("--org") && help.stdout.contains("--json"))
        await deployment.stop()
    }
}
