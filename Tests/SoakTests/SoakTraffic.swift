import CallTraceAPI
import CallTraceDeploymentSupport
import CallTraceProto
import CallTraceRPC
import CallTraceSync
import CallTraceTestSupport
import FakeTwilio
import Foundation

/// What the soak's gateways did and saw: each request's time by name (an RPC, a page, a
/// webhook), the answers no one should have had, and the calls whose data must be whole at the end.
final class SoakLedger: Sendable {
    /// A call ingested as a gateway does, its recording's bytes `wavFile(samples:)`.
    struct Stored: Sendable {
        let org: String, call: String, recording: String, samples: Int
    }
    /// A call played through the telephony gateway: its recording arrives by a durable job.
    struct Rung: Sendable {
        let org: String, call: String
    }
    private struct State {
        var latencies: [String: [Double]] = [:]
        var unexpected: [String] = []
        var refusedAsExpected = 0
        var stored: [Stored] = []
        var rung: [Rung] = []
    }
    private let state = Locked(State())

    /// Runs `body` as request `name`, timed; an error is unexpected unless its code is in `expected`.
    @discardableResult
    func time<T>(_ name: String, expecting expected: Set<StatusCode> = [], _ body: () async throws -> T) async -> T? {
        let started = ContinuousClock.now
        do {
            let value = try await body()
            let took = started.duration(to: .now)
            state.withLock { $0.latencies[name, default: []].append(Self.milliseconds(took)) }
            return value
        } catch let error as RPCError where expected.contains(error.code) {
            let took = started.duration(to: .now)
            state.withLock {
                $0.latencies[name, default: []].append(Self.milliseconds(took))
                $0.refusedAsExpected += 1
            }
            return nil
        } catch where Task.isCancelled {
            return nil  // cut short because its task is being stopped (the monitor, at the end): no answer at all
        } catch {
            unexpected("\(name): \(error)")
            return nil
        }
    }

    func unexpected(_ what: String) { state.withLock { $0.unexpected.append(what) } }
    func stored(_ call: Stored) { state.withLock { $0.stored.append(call) } }
    func rung(_ call: Rung) { state.withLock { $0.rung.append(call) } }

    /// One of `org`'s stored calls, if it has any yet.
    func anyStored(in org: String, using random: inout SplitMix64) -> Stored? {
        let mine = state.withLock { $0.stored.filter { $0.org == org } }
        return mine.isEmpty ? nil : mine[Int.random(in: 0..<mine.count, using: &random)]
    }

    var unexpectedAnswers: [String] { state.withLock { $0.unexpected } }
    var refusedAsExpected: Int { state.withLock { $0.refusedAsExpected } }
    var storedCalls: [Stored] { state.withLock { $0.stored } }
    var rungCalls: [Rung] { state.withLock { $0.rung } }
    var requests: Int { state.withLock { $0.latencies.values.reduce(0) { $0 + $1.count } } }

    /// Name, count, p50, p99 (ms) of every request kind, by name.
    var figures: [(name: String, count: Int, p50: Double, p99: Double)] {
        state.withLock { $0.latencies }.sorted { $0.key < $1.key }.map { name, times in
            let sorted = times.sorted()
            func at(_ q: Double) -> Double { sorted[min(sorted.count - 1, Int(Double(sorted.count) * q))] }
            return (name, sorted.count, at(0.5), at(0.99))
        }
    }

    static func milliseconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
    }
}

/// One gateway's day: its own connections to every service (as the web and telephony gateways
/// hold theirs), a browser signed in to the pages, and a loop of a firm's requests picked at
/// random by weight until the soak ends (after one of each kind a run must see).
final class SoakGateway: Sendable {
    let number: Int
    let firm: SoakDeployment.Firm
    let deployment: SoakDeployment
    let ledger: SoakLedger
    // Connections of its own, as another gateway's would be.
    private let asTelephony: (transcript: RPCClient, media: RPCClient)
    private let identity: RPCClient
    private let calls: Calltrace_Transcript_V1_CallServiceClient
    private let media: Media
    private let links: Calltrace_Media_V1_ShareLinkServiceClient
    private let requests: Calltrace_Compliance_V1_SubjectRequestServiceClient
    // Its signed-in admin's browser, and a stranger's who opens the share links.
    private let browser: WebClient, stranger: WebClient

    enum Request: CaseIterable {
        case upload, playback, callList, report, login, wrongPassword, shareLink, page, webhook, subjectRequest

        var weight: Int {
            switch self {
            case .playback, .callList: 3
            case .page: 4
            case .upload, .login: 2
            case .report, .wrongPassword, .shareLink, .webhook, .subjectRequest: 1
            }
        }
    }

    /// Its connections, each opened and answering Health before the soak's clock starts (so
    /// gateways opened together do not crowd a listener's handshakes), and its browser signed in.
    init(number: Int, firm: SoakDeployment.Firm, deployment: SoakDeployment, ledger: SoakLedger) async throws {
        (self.number, self.firm, self.deployment, self.ledger) = (number, firm, deployment, ledger)
        let services = deployment.services, web = TemporaryPKI.identity("gateway", "web")
        let clients = [try services.transcript.setup.client(identity: TemporaryPKI.telephony), try services.media.setup.client(identity: TemporaryPKI.telephony),
                       try services.identity.setup.client(identity: web), try services.transcript.setup.client(identity: web),
                       try services.media.setup.client(identity: web), try services.compliance.setup.client(identity: web)]
        for client in clients { _ = try await client.unary(Calltrace_Ops_V1_HealthService.check, .init()) }
        asTelephony = (clients[0], clients[1])
        identity = clients[2]
        calls = Calltrace_Transcript_V1_CallServiceClient(clients[3])
        media = Media(clients[4])
        links = Calltrace_Media_V1_ShareLinkServiceClient(clients[4])
        requests = Calltrace_Compliance_V1_SubjectRequestServiceClient(clients[5])
        browser = WebClient(base: deployment.webBase)
        stranger = WebClient(base: deployment.webBase)
        let form = try await browser.get("/sign-in")
        let signedIn = try await browser.post("/sign-in", form: [("csrf", form.csrf ?? ""), ("firm", firm.org), ("email", firm.email),
                                                                 ("password", SoakDeployment.password), ("code", ""), ("next", "")])
        guard signedIn.status == 303 else { throw SoakError("gateway \(number) could not sign in to the pages (\(signedIn.status))") }
    }

    deinit {
        browser.close()
        stranger.close()
    }

    func run(until end: ContinuousClock.Instant, seed: UInt64) async throws {
        var random = SplitMix64(state: seed)
        let admin = try bearer(firm.admin)
        // A call ingested, a wrong password and a call through the webhooks first: every run has
        // each, however few requests a loaded machine lets it make.
        var first: [Request] = [.upload, .wrongPassword, .webhook]
        let weighted = Request.allCases.flatMap { Array(repeating: $0, count: $0.weight) }
        var made = 0
        while ContinuousClock.now < end {
            var request = first.isEmpty ? weighted[Int.random(in: 0..<weighted.count, using: &random)] : first.removeFirst()
            let known = ledger.anyStored(in: firm.org, using: &random)
            if known == nil && [.playback, .shareLink].contains(request) { request = .upload }
            switch request {
            case .upload:
                made += 1
                let call = "soak-\(number)-\(made)", samples = Int.random(in: 8_000...64_000, using: &random)
                try await ingest(call, samples: samples, calls: Calltrace_Transcript_V1_CallServiceClient(asTelephony.transcript),
                                 transcripts: Calltrace_Transcript_V1_TranscriptServiceClient(asTelephony.transcript),
                                 media: Media(asTelephony.media), caller: "07700 900\(100 + Int.random(in: 0..<50, using: &random))")
            case .playback:
                // A seek: a range somewhere in the file, checked byte for byte.
                let stored = known!, file = wavFile(samples: stored.samples)
                let offset = Int.random(in: 0..<file.count, using: &random), length = Int.random(in: 1...(file.count - offset), using: &random)
                if let bytes = await ledger.time("PlayRecording (a seek)", { try await media.play(stored.recording, org: firm.org, offset: UInt64(offset),
                                                                                              length: UInt64(length), reason: "soak", options: admin) }),
                   bytes != file.subdata(in: offset..<(offset + length)) {
                    ledger.unexpected("PlayRecording of \(stored.recording) at \(offset)+\(length) answered other bytes")
                }
            case .callList:
                await ledger.time("ListCalls") { try await calls.listCalls(.with { $0.orgID = firm.org; $0.pageSize = 50 }, options: admin) }
            case .report:
                let now = Int64(Date().timeIntervalSince1970 * 1000)
                await ledger.time("AttributionReport") {
                    try await calls.attributionReport(.with { $0.orgID = firm.org; $0.fromUnixMs = now - 86_400_000; $0.beforeUnixMs = now + 60_000 }, options: admin)
                }
            case .login:
                if let token = await ledger.time("Login", { try await login(identity, email: firm.email, password: SoakDeployment.password, from: "198.51.100") }) {
                    await ledger.time("Logout") { try await identity.unary(Calltrace_Identity_V1_IdentityService.logout, .init(), options: try bearer(token)) }
                }
            case .wrongPassword:
                // Refused, and soon locked out: either answer is right, a session is not.
                if await ledger.time("Login (a wrong password)", expecting: [.unauthenticated, .resourceExhausted, .permissionDenied], {
                    try await login(identity, email: firm.decoy, password: "not the password \(made)", from: "203.0.113")
                }) != nil {
                    ledger.unexpected("a wrong password signed in")
                }
            case .shareLink:
                let stored = known!
                if let link = await ledger.time("CreateShareLink", { try await links.createShareLink(.with {
                    $0.orgID = firm.org; $0.recordingID = stored.recording; $0.ttlSeconds = 3600; $0.note = "matter \(made)"
                }, options: admin) }) {
                    await page("GET /s/{token}", "/s/\(link.token)", browser: stranger)
                }
            case .page:
                let pages = ["/calls", "/reports", "/audit"] + (known.map { ["/calls/\($0.call)"] } ?? [])
                let path = pages[Int.random(in: 0..<pages.count, using: &random)]
                await page(path.hasPrefix("/calls/") ? "GET /calls/{id}" : "GET \(path)", path, browser: browser)
            case .webhook:
                let caller = "+447700900\(String(format: "%03d", Int.random(in: 0..<1000, using: &random)))"
                let wav = wavFile(samples: 16_000, channels: 2)
                if let played = await ledger.time("webhooks of a call (voice, recording, dial, status)", {
                    try await deployment.driver.play(.init(from: caller, to: firm.number, dialledLeg: .answers(talkSeconds: 30), recordingWAV: wav))
                }) {
                    if played.finalStatus == "completed" && played.recordingSIDs.count == 1 {
                        ledger.rung(.init(org: firm.org, call: played.callSid))
                    } else {
                        ledger.unexpected("a call through the webhooks ended \(played.finalStatus) with \(played.recordingSIDs.count) recordings")
                    }
                }
            case .subjectRequest:
                let number = "07700 900\(100 + Int.random(in: 0..<50, using: &random))"
                guard let opened = await ledger.time("OpenSubjectRequest", { try await requests.openSubjectRequest(.with {
                    $0.orgID = firm.org; $0.kind = .access; $0.phoneNumbers = [number]; $0.receivedOn = Self.today(); $0.nation = "england-and-wales"
                }, options: admin) }) else { continue }
                let id = opened.request.requestID
                await ledger.time("RecordIdentityCheck") {
                    try await requests.recordIdentityCheck(.with { $0.orgID = firm.org; $0.requestID = id; $0.result = .passed }, options: admin)
                }
                await ledger.time("LocateSubjectData") { try await requests.locateSubjectData(.with { $0.orgID = firm.org; $0.requestID = id }, options: admin) }
            }
        }
    }

    /// A call as the telephony gateway reports one: started, its recording uploaded in pieces,
    /// its transcript (with a card number for redaction) submitted, completed.
    private func ingest(_ call: String, samples: Int, calls: Calltrace_Transcript_V1_CallServiceClient,
                        transcripts: Calltrace_Transcript_V1_TranscriptServiceClient, media: Media, caller: String) async throws {
        let org = firm.org, number = firm.number
        guard let started = await ledger.time("StartCall", { try await calls.startCall(.with {
            $0.callID = call; $0.trackingNumber = number; $0.callerNumber = caller; $0.direction = .inbound
        }) }) else { return }
        guard started.record else { return ledger.unexpected("StartCall said not to record: \(started.reason)") }
        guard let recording = await ledger.time("UploadRecording", { try await media.upload(wavFile(samples: samples), org: org, call: call, piece: 32_768) }) else { return }
        await ledger.time("SubmitTranscript") { try await transcripts.submitTranscript(.with {
            $0.orgID = org; $0.callID = call
            $0.segments = [.with { $0.speaker = "caller"; $0.text = "I was hurt at work and my card is 4111 1111 1111 1111." },
                           .with { $0.speaker = "agent"; $0.text = "We can help with a personal injury claim." }]
        }) }
        await ledger.time("CompleteCall") { try await calls.completeCall(.with { $0.orgID = org; $0.callID = call; $0.outcome = .answered }) }
        ledger.stored(.init(org: org, call: call, recording: recording.recordingID, samples: samples))
    }

    /// A sign-in as the web gateway makes it, from an address of `network` (so the lockout of
    /// the wrong guesses' address never meets the right ones').
    private func login(_ identity: RPCClient, email: String, password: String, from network: String) async throws -> String {
        var metadata = Metadata()
        try metadata.add(ServerContext.clientAddressKey, "\(network).\(number + 1)")
        return try await identity.unary(Calltrace_Identity_V1_IdentityService.login, .with {
            $0.orgID = firm.org; $0.email = email; $0.password = password
        }, options: CallOptions(metadata: metadata)).token
    }

    private func page(_ name: String, _ path: String, browser: WebClient) async {
        if let shown = await ledger.time(name, { try await browser.get(path) }), shown.status != 200 {
            ledger.unexpected("\(name) answered \(shown.status)")
        }
    }

    static func today() -> String {
        let format = DateFormatter()
        format.dateFormat = "yyyy-MM-dd"
        format.timeZone = TimeZone(identifier: "Europe/London")
        format.locale = Locale(identifier: "en_GB_POSIX")
        return format.string(from: Date())
    }
}
