import ArgumentParser
import CallTraceAPI
import CallTraceDeploymentSupport
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceTestSupport
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import WebGateway

/// The web app's pages over real HTTP with one firm of 10,000 calls (issue 30: under 200 ms at
/// the 95th percentile), each beside the same page's RPCs called straight over ctrpc/1 under the
/// same person's token, measured in the same run: the gap is what the gateway adds (sessions,
/// rendering, HTTP).
struct WebBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "web", abstract: "Page latency (p50/p95/p99) of /calls, a call, /reports and /audit with 10,000 calls, vs the pages' RPCs alone.")

    @Option(help: "Calls in the firm.") var calls = 10_000
    @Option(help: "Calls with a recording.") var recordings = 5
    @Option(help: "Requests measured per page (after a tenth as many to warm up).") var requests = 300

    /// Over ports and real mutual TLS, as deployed (the suite's default is the in-process transport).
    func run() async throws {
        try await TestTransport.$current.withValue(.tls) { try await measure() }
    }

    private func measure() async throws {
        print("calltrace-bench web: the four services and calltrace-web in this process, one firm of \(calls) calls")
        let services = try await MediaDeployment()
        let web = try await InProcessService.start(WebService.self, peers: [
            "identity": services.identity.instance.port, "media": services.media.instance.port,
            "transcript": services.calls.transcript.instance.port, "compliance": services.calls.compliance.instance.port,
        ], pki: services.pki, logLevel: .info) { try? $0.set("http_listen", "127.0.0.1:0") }
        let companions = web.instance.companions
        let listener = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for companion in companions { group.addTask { try await companion.run() } }
                try await group.waitForAll()
            }
        }
        defer { listener.cancel() }
        guard let port = await (web.instance.service as! WebService).httpPort() else { throw ValidationError("the web gateway has no HTTP port") }
        let base = "http://127.0.0.1:\(port)"

        // The firm, its admin (signed in to the pages), and its calls as the telephony gateway reports them.
        let (org, firstAdmin) = try await services.organisation("Bench LLP")
        let email = "bench-admin@bench.example", password = "correct horse battery staple"
        let identity = Calltrace_Identity_V1_IdentityServiceClient(try services.identity.client())
        _ = try await identity.inviteUser(.with { $0.orgID = org; $0.email = email; $0.displayName = "Bench Admin"; $0.role = .admin },
                                          options: try bearer(firstAdmin))
        _ = try await identity.redeemInvitation(.with {
            $0.invitationToken = try! services.identity.setup.deliveredToken(to: email)!; $0.password = password
        }, options: .endUser)
        let token = try await services.identity.login(email: email, org: org)
        let loaded = ContinuousClock.now
        let first = try await load(services, org: org, admin: firstAdmin)
        print("  \(calls) calls, \(recordings) recorded, loaded in \(String(format: "%.1f", loaded.duration(to: .now).seconds)) s")

        let browser = BenchBrowser(base: base)
        let signIn = try await browser.get("/sign-in")
        let csrf = signIn.text.firstMatch(of: /name="csrf" value="([^"]*)"/).map { String($0.1) } ?? ""
        let signedIn = try await browser.post("/sign-in", form: ["csrf": csrf, "firm": org, "email": email, "password": password, "code": "", "next": ""])
        guard signedIn.status == 303 else { throw ValidationError("the bench admin could not sign in (\(signedIn.status))") }

        let options = try bearer(token)
        let calls = Calltrace_Transcript_V1_CallServiceClient(try services.calls.transcript.client())
        let transcripts = Calltrace_Transcript_V1_TranscriptServiceClient(try services.calls.transcript.client())
        let media = Calltrace_Media_V1_RecordingServiceClient(try services.media.client())
        let links = Calltrace_Media_V1_ShareLinkServiceClient(try services.media.client())
        let audit = Calltrace_Compliance_V1_AuditServiceClient(try services.calls.compliance.client())
        // The period of the calls, as UK days, and the span the gateway asks transcript for.
        var london = Calendar(identifier: .gregorian)
        london.timeZone = TimeZone(identifier: "Europe/London")!
        let day = DateFormatter()
        day.calendar = london
        day.timeZone = london.timeZone
        day.dateFormat = "yyyy-MM-dd"
        let firstDay = london.startOfDay(for: Date(timeIntervalSince1970: Double(first.start) / 1000))
        let lastDay = london.startOfDay(for: Date(timeIntervalSince1970: Double(first.end) / 1000))
        let from = day.string(from: firstDay), to = day.string(from: lastDay)
        let span = (Int64(firstDay.timeIntervalSince1970 * 1000), Int64(london.date(byAdding: .day, value: 1, to: lastDay)!.timeIntervalSince1970 * 1000))
        let page = first.recorded
        // Each page, and the RPCs the gateway makes for it, in the order it makes them.
        let pages: [(String, @Sendable () async throws -> Void)] = [
            ("/calls", {
                _ = try await identity.getCurrentUser(.with { $0.orgID = org }, options: options)
                _ = try await calls.listCalls(.with { $0.orgID = org; $0.pageSize = 50 }, options: options)
            }),
            ("/calls/\(page.call)", {
                _ = try await identity.getCurrentUser(.with { $0.orgID = org }, options: options)
                _ = try await calls.getCall(.with { $0.orgID = org; $0.callID = page.call }, options: options)
                _ = try await transcripts.getTranscript(.with { $0.orgID = org; $0.callID = page.call }, options: options)
                _ = try await media.getRecording(.with { $0.orgID = org; $0.recordingID = page.recording }, options: options)
                _ = try await links.listShareLinks(.with { $0.orgID = org; $0.recordingID = page.recording }, options: options)
            }),
            ("/reports?from=\(from)&to=\(to)&by=source", {
                _ = try await identity.getCurrentUser(.with { $0.orgID = org }, options: options)
                _ = try await calls.attributionReport(.with {
                    $0.orgID = org; $0.fromUnixMs = span.0; $0.beforeUnixMs = span.1
                }, options: options)
            }),
            ("/audit", {
                _ = try await identity.getCurrentUser(.with { $0.orgID = org }, options: options)
                _ = try await audit.listAuditEvents(.with { $0.orgID = org; $0.pageSize = 50 }, options: options)
                _ = try await identity.listUsers(.with { $0.orgID = org }, options: options)
            }),
        ]
        print("")
        print("page".padding(toLength: 34, withPad: " ", startingAt: 0) + "web p50 / p95 / p99 (ms)".leftPad(28)
              + "RPCs alone p50 / p95 / p99".leftPad(30) + "  target p95")
        for (path, rpcs) in pages {
            let check = try await browser.get(path)
            guard check.status == 200 else { throw ValidationError("\(path) answered \(check.status)") }
            var ours: [Double] = [], floor: [Double] = []
            for round in 0..<(requests + requests / 10) {
                // Alternating, so both see the machine in the same state.
                let started = ContinuousClock.now
                _ = try await browser.get(path)
                let middle = ContinuousClock.now
                try await rpcs()
                if round >= requests / 10 {
                    ours.append(started.duration(to: middle).seconds * 1000)
                    floor.append(middle.duration(to: .now).seconds * 1000)
                }
            }
            func figures(_ values: [Double]) -> String {
                let sorted = values.sorted()
                return [0.5, 0.95, 0.99].map { String(format: "%.1f", sorted[min(sorted.count - 1, Int(Double(sorted.count) * $0))]) }.joined(separator: " / ")
            }
            let shown = path.count > 32 ? String(path.prefix(31)) + "…" : path
            print(shown.padding(toLength: 34, withPad: " ", startingAt: 0) + figures(ours).leftPad(28) + figures(floor).leftPad(30) + "  < 200")
        }
        browser.close()
        listener.cancel()
        _ = await listener.result
        await web.stop()
        await services.stop()
    }

    /// A few recorded calls, then the rest started and completed as the telephony gateway does,
    /// a minute apart over the numbers of five sources; the audit trail forwarded to compliance.
    private func load(_ services: MediaDeployment, org: String, admin: String) async throws -> (start: Int64, end: Int64, recorded: (call: String, recording: String)) {
        let transcript = services.calls.transcript
        let numbers = Calltrace_Transcript_V1_TrackingNumberServiceClient(try transcript.client())
        let sources = [("0118 496 0501", "Google Ads – personal injury", Calltrace_Transcript_V1_Channel.googleAds),
                       ("0118 496 0502", "Facebook – family", .paidSocial), ("0118 496 0503", "Website", .organic),
                       ("0118 496 0504", "Law Society directory", .directory), ("0118 496 0505", "Referral – GP surgery", .referral)]
        for (number, source, channel) in sources {
            _ = try await numbers.assignTrackingNumber(.with { $0.orgID = org; $0.number = number; $0.source = source; $0.channel = channel },
                                                       options: try bearer(admin))
        }
        let telephony = Calltrace_Transcript_V1_CallServiceClient(try transcript.client(identity: TemporaryPKI.telephony))
        var recorded: (call: String, recording: String)?
        for index in 0..<recordings {
            let call = "bench-recorded-\(index)"
            let recording = try await services.upload(wavFile(samples: 80_000), org: org, call: call)
            _ = try await telephony.completeCall(.with { $0.orgID = org; $0.callID = call; $0.outcome = .answered; $0.durationMs = 10_000 })
            recorded = (call, recording.recordingID)
        }
        _ = await services.media.instance.jobs.runDue()  // media tells transcript which recording is each call's
        let start = transcript.clock.nowUnixMs + 1000
        let count = calls - recordings
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    for index in stride(from: worker, to: count, by: 8) {
                        let (number, _, _) = sources[index % sources.count]
                        let started = start + Int64(index) * 60_000
                        let id = "bench-\(index)"
                        _ = try await telephony.startCall(.with {
                            $0.callID = id; $0.trackingNumber = number; $0.direction = .inbound; $0.startedAtUnixMs = started
                            $0.callerNumber = "07700 900\(String(format: "%03d", index % 1000))"
                        })
                        let answered = index % 10 < 7
                        _ = try await telephony.completeCall(.with {
                            $0.orgID = org; $0.callID = id; $0.outcome = answered ? .answered : .missed
                            $0.answeredAtUnixMs = answered ? started + 5000 : 0; $0.endedAtUnixMs = started + 185_000; $0.durationMs = answered ? 180_000 : 0
                        })
                    }
                }
            }
            try await group.waitForAll()
        }
        // The audit trail as compliance holds it once the outboxes are forwarded.
        while await transcript.instance.jobs.runDue() > 0 {}
        _ = await services.identity.instance.jobs.runDue()
        _ = await services.media.instance.jobs.runDue()
        guard let recorded else { throw ValidationError("--recordings must be at least 1") }
        return (start, start + Int64(count) * 60_000, recorded)
    }
}

/// The browser of the benchmark: keeps the gateway's cookies, never follows a redirect.
final class BenchBrowser: NSObject, URLSessionTaskDelegate, @unchecked Sendable {
    let base: String
    private var cookies: [String: String] = [:]
    private lazy var session = URLSession(configuration: {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.httpShouldSetCookies = false
        configuration.urlCache = nil
        return configuration
    }(), delegate: self, delegateQueue: nil)

    init(base: String) { self.base = base }

    struct Page {
        let status: Int
        let text: String
    }

    func get(_ path: String) async throws -> Page { try await send("GET", path, body: nil) }

    func post(_ path: String, form: [String: String]) async throws -> Page {
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))
        let body = form.map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")" }.joined(separator: "&")
        return try await send("POST", path, body: Data(body.utf8))
    }

    private func send(_ method: String, _ path: String, body: Data?) async throws -> Page {
        var request = URLRequest(url: URL(string: base + path)!)
        request.httpMethod = method
        request.httpShouldHandleCookies = false
        if !cookies.isEmpty { request.setValue(cookies.map { "\($0.key)=\($0.value)" }.joined(separator: "; "), forHTTPHeaderField: "Cookie") }
        if let body {
            request.httpBody = body
            request.setValue("application/x-www-form-urlencoded", forHTTPHeaderField: "Content-Type")
        }
        let (data, response) = try await session.data(for: request)
        let http = response as! HTTPURLResponse
        // Foundation joins several Set-Cookie headers with ", "; the gateway's never hold a comma.
        for line in (http.value(forHTTPHeaderField: "Set-Cookie") ?? "").components(separatedBy: ", ") {
            let pair = line.split(separator: ";", maxSplits: 1).first.map(String.init) ?? ""
            guard let equals = pair.firstIndex(of: "=") else { continue }
            cookies[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
        }
        return Page(status: http.statusCode, text: String(decoding: data, as: UTF8.self))
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
                    newRequest request: URLRequest, completionHandler: @escaping @Sendable (URLRequest?) -> Void) {
        completionHandler(nil)
    }

    func close() { session.invalidateAndCancel() }
}
