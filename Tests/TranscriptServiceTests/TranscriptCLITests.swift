import CallTraceTestSupport
import Foundation
import Testing

@Suite("calltrace tracking-numbers, calls, transcripts, report, suppression, block: transcript from the command line", .overTLS, .serialized)
struct TranscriptCLITests {
    @Test("Every transcript capability from the CLI, readable, --json or --csv, with meaningful exit codes")
    func commands() async throws {
        let deployment = try await TranscriptDeployment()
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await deployment.organisation()
        _ = try deployment.pki.credentials(for: TemporaryPKI.identity("gateway", "web"), named: "gateway-web")
        let calltrace = productsDirectory.appendingPathComponent("calltrace").path
        let common = ["--pki", deployment.pki.directory.path, "--target", "127.0.0.1:\(deployment.transcript.instance.port)", "--org", org]
        var environment = ProcessInfo.processInfo.environment
        environment["CALLTRACE_AS"] = "gateway-web"  // a gateway's own tooling; a firm's staff go through the web app (CLIThroughWebAppTests)
        environment["CALLTRACE_TOKEN"] = admin
        func cli(_ arguments: [String], input: String? = nil) async throws -> ProcessResult {
            try await run(calltrace, arguments + common, environment: environment, input: input.map { Data($0.utf8) })
        }

        let assigned = try await cli(["tracking-numbers", "assign", "0118 496 0000", "--source", "Google Ads", "--channel", "google-ads", "--campaign", "PI"])
        #expect(assigned.status == 0 && assigned.stdout.contains("+441184960000  Google Ads  google-ads  campaign PI"), "\(assigned.stdout) \(assigned.stderr)")
        #expect(try await cli(["tracking-numbers", "assign", "0118", "--source", "x", "--channel", "tv"]).status != 0, "an unknown channel")
        #expect(try await cli(["tracking-numbers", "list", "--json"]).stdout.contains("\"number\":\"+441184960000\""))

        let started = deployment.transcript.clock.nowUnixMs
        try await deployment.start("cli-1", tracking: "01184960000", caller: "07700900123", at: started)
        let listed = try await cli(["calls", "list"])
        #expect(listed.status == 0 && listed.stdout.contains("cli-1") && listed.stdout.contains("+447700900123"), "\(listed.stdout)")
        let marked = try await cli(["calls", "mark", "cli-1", "--enquiry", "new", "--matter", "PI-7", "--practice-area", "personal-injury"])
        #expect(marked.status == 0 && marked.stdout.contains("matter opened PI-7"), "\(marked.stdout) \(marked.stderr)")
        let missing = try await cli(["calls", "show", "missing"])
        #expect(missing.status == 3, "\(missing.status) \(missing.stderr)")

        let submitted = try await cli(["transcripts", "submit", "cli-1"], input: "caller: I slipped at work, my card is 4111 1111 1111 1111\n[61.5-63.25] firm: Thank you\n")
        #expect(submitted.status == 0 && submitted.stdout.contains("1 redactions"), "\(submitted.stdout) \(submitted.stderr)")
        let shown = try await cli(["transcripts", "show", "cli-1"])
        #expect(shown.stdout.contains("caller: I slipped at work, my card is [card number]"), "\(shown.stdout)")
        #expect(shown.stdout.contains("[01:01] firm: Thank you"), "a segment's times, in seconds, before its speaker: \(shown.stdout)")
        #expect(try await cli(["transcripts", "settings", "--transcription", "on", "--engine", "manual"]).stdout.contains("transcription on, engine manual"))

        let day = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(started) / 1000 - 86_400))
        let after = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(started) / 1000 + 86_400))
        let report = try await cli(["report", "attribution", "--from", day, "--before", after])
        #expect(report.status == 0 && report.stdout.contains("Google Ads") && report.stdout.contains("100.0%"), "\(report.stdout) \(report.stderr)")
        let csv = try await cli(["report", "attribution", "--from", day, "--before", after, "--csv"])
        #expect(csv.stdout.hasPrefix("source,calls,callers,answered,missed,enquiries,suggested,matters,conversion,first-touch,last-touch\n\"Google Ads\",1,1,0,0,1,0,1,100.0%,1,1"),
                "\(csv.stdout)")
        #expect(try await cli(["report", "attribution", "--from", "yesterday", "--before", after]).status != 0)

        #expect(try await cli(["suppression", "add", "07700 900123", "--reason", "objection"]).stdout.contains("suppressed"))
        #expect(try await cli(["suppression", "list"]).stdout.contains("+44 7700 ••••23"))
        #expect(try await cli(["suppression", "remove", "07700 900123"]).status == 0)

        let routed = try await cli(["tracking-numbers", "routing", "0118 496 0000", "--destination", "07700 900001", "--destination", "07700900002",
                                    "--ring", "30", "--hours", "mon-fri=09:00-17:30", "--hours", "sat=10:00-13:00", "--voicemail", "on",
                                    "--whisper", "PI enquiry"])
        #expect(routed.status == 0 && routed.stdout.contains("rings +447700900001, +447700900002 for 30 s; open mon 09:00-17:30, tue 09:00-17:30")
                && routed.stdout.contains("sat 10:00-13:00 (Europe/London); voicemail on") && routed.stdout.contains("whisper: \"PI enquiry\""),
                "\(routed.stdout) \(routed.stderr)")
        let changed = try await cli(["tracking-numbers", "routing", "01184960000", "--ring", "45", "--always-open"])
        #expect(changed.stdout.contains("rings +447700900001, +447700900002 for 45 s; always open"), "only what is named changes: \(changed.stdout)")
        let shownRouting = try await cli(["tracking-numbers", "routing", "01184960000", "--json"])
        #expect(shownRouting.status == 0 && shownRouting.stdout.contains("+447700900002") && shownRouting.stdout.contains("45"), "\(shownRouting.stdout)")
        #expect(try await cli(["tracking-numbers", "list"]).stdout.contains("\n  rings +447700900001, +447700900002 for 45 s"))
        let badHours = try await cli(["tracking-numbers", "routing", "01184960000", "--hours", "mon-fri=9-5"])
        #expect(badHours.status != 0 && badHours.stderr.contains("mon-fri=09:00-17:30"), "\(badHours.stderr)")
        let badRing = try await cli(["tracking-numbers", "routing", "01184960000", "--ring", "90"])
        #expect(badRing.status != 0 && badRing.stderr.contains("ring_seconds"), "the service's refusal: \(badRing.stderr)")
        let routingHelp = try await run(calltrace, ["tracking-numbers", "routing", "--help"])
        #expect(routingHelp.status == 0 && routingHelp.stdout.contains("--hours") && routingHelp.stdout.contains("Europe/London"))

        #expect(try await cli(["block", "add", "07700 900666", "--reason", "nuisance"]).stdout.contains("blocked"))
        #expect(try await cli(["block", "add", "+447700900666"]).status == 0, "again: nothing changes")
        let blocked = try await cli(["block", "list"])
        #expect(blocked.stdout.contains("+44 7700 ••••66") && blocked.stdout.contains("nuisance") && !blocked.stdout.contains("900666"), "\(blocked.stdout)")
        #expect(try await cli(["block", "list", "--json"]).stdout.contains("••••66"))
        #expect(try await cli(["block", "remove", "07700 900666"]).stdout.contains("unblocked"))
        #expect(try await cli(["block", "list"]).stdout.contains("no blocked callers"))
        let blockHelp = try await run(calltrace, ["block", "--help"])
        #expect(blockHelp.status == 0 && blockHelp.stdout.contains("add") && blockHelp.stdout.contains("remove") && blockHelp.stdout.contains("list"))

        // Websites, their pools and the conversions export (issue 32).
        try await deployment.assign("0118 496 0011", org: org, admin: admin, source: "Website", channel: .organic, campaign: "")
        let created = try await cli(["websites", "create", "--name", "Main site", "--origin", "https://www.smith-law.co.uk", "--replace", "020 7946 0000",
                                     "--source", "Website", "--json"])
        #expect(created.status == 0, "\(created.stdout) \(created.stderr)")
        let website = try #require(try JSONSerialization.jsonObject(with: Data(created.stdout.utf8)) as? [String: Any])["website"] as? [String: Any]
        let websiteID = try #require(website?["websiteId"] as? String)
        let pooled = try await cli(["websites", "pool", websiteID, "0118 496 0011"])
        #expect(pooled.status == 0 && pooled.stdout.contains("pool +441184960011"), "\(pooled.stdout) \(pooled.stderr)")
        #expect(try await cli(["websites", "create", "--name", "x", "--origin", "http://example.com", "--replace", "02079460000", "--source", "x"]).status != 0)
        let status = try await cli(["websites", "status", websiteID])
        #expect(status.status == 0 && status.stdout.contains("0 of 1 numbers held now"), "\(status.stdout) \(status.stderr)")
        #expect(try await cli(["websites", "list"]).stdout.contains("origins https://www.smith-law.co.uk"))
        let conversions = try await cli(["report", "conversions", "--from", day, "--before", after, "--csv"])
        #expect(conversions.status == 0 && conversions.stdout.hasPrefix("Parameters:TimeZone=Europe/London\r\nGoogle Click ID,Conversion Name,"),
                "\(conversions.stdout) \(conversions.stderr)")
        #expect(try await cli(["report", "attribution", "--from", day, "--before", after, "--by", "utm-campaign"]).stdout.contains("(no visit)"))
        #expect(try await cli(["websites", "delete", websiteID]).stdout.contains("deleted"))

        environment["CALLTRACE_TOKEN"] = nil
        #expect(try await cli(["calls", "list"]).status == 4, "no token: not allowed")
        // Local commands need no service.
        let redacted = try await run(calltrace, ["transcripts", "redact"], input: Data("sort code 20-45-67 account 12345678\n".utf8))
        #expect(redacted.stdout == "sort code [sort code] account [account number]\n")
        let analysed = try await run(calltrace, ["transcripts", "analyse", "--engine", "local"], input: Data("caller: my landlord is evicting me\n".utf8))
        #expect(analysed.stdout.contains("\"practice_area\":\"housing_and_landlord_tenant\""))
    }
}
