import CallTraceAPI
import CallTraceDeploymentSupport
import CallTraceProto
import CallTraceRPC
import CallTraceStorage
import CallTraceTestSupport
import Foundation

/// Kills a random service or gateway with SIGKILL at a random moment of a random piece of work — a call
/// ingested (started, its recording uploaded, its transcript submitted, redacted and analysed,
/// completed), a call rung through Twilio's webhooks (the telephony gateway, which may be the one
/// killed, fetching its recording from Twilio into media and deleting it there), a call deleted across services (asked over RPC, or
/// by the firm's admin on the web app's page, when calltrace-web may be the one killed), the
/// firm's retention policy run over calls that have aged past it, a caller's data erased, a
/// firm offboarded (its export built, then everything of it purged everywhere) — starts it again on its
/// stores, waits until every service's durable jobs and audit outbox are idle, and checks what
/// P9, P10, P11, P13 and P15 promise of the whole deployment's state, read from each service's own
/// database and files and through compliance's trail.
///
/// The work goes on as a gateway's would through the kill: a call refused as UNAVAILABLE (or
/// cut off) is asked again with the same ids until it is answered; a webhook the telephony
/// gateway did not answer is sent again with the same idempotency token, as Twilio does.
final class CrashHarness: @unchecked Sendable {
    let deployment: ProcessDeployment
    /// calltrace-telephony beside the four, and the fake Twilio whose calls it takes.
    let telephony: TelephonyGatewayProcess
    /// calltrace-web beside them, and the firm's admin's browser on its pages.
    let web: WebGatewayProcess
    private let browser: WebClient
    /// Every process a trial may kill.
    static let victims = ProcessDeployment.names + ["telephony", "web"]
    /// A firm the harness makes calls for.
    struct Firm {
        let org: String
        let email: String
        var admin: String
        let trackingNumber: String
    }
    /// The firm whose calls are ingested, deleted and erased throughout.
    private var firm: Firm
    var org: String { firm.org }
    private var random: SplitMix64
    /// The callers' numbers, few, so an erasure finds several calls.
    private let callers = ["07700 900101", "07700 900102", "07700 900103", "07700 900104"]

    // What the harness asked for, to check against what the services hold.
    /// The firm's calls ingested and not asked deleted, by id: their caller.
    private var live: [String: String] = [:]
    private(set) var recordingsStored: Set<String> = []
    private(set) var deletionsAsked: Set<String> = []
    private(set) var erasuresAsked: Set<String> = []
    private(set) var offboarded: Set<String> = []
    /// Calls the admin deleted on the web app's page.
    private(set) var deletedOnPage: Set<String> = []
    /// Retention runs asked, and the calls aged past the policy before each.
    private(set) var retentionRuns: Set<String> = []
    private(set) var aged: Set<String> = []
    /// Calls rung through the webhooks, by id: how many recordings Twilio made of each.
    private(set) var rung: [String: Int] = [:]
    private var nextCall = 0
    private var firms = 0
    private(set) var kills: [String: Int] = [:]
    private(set) var work: [String: Int] = [:]
    /// Kills that landed while the work's own calls were under way (the rest hit the jobs they left).
    private(set) var killsDuringCalls = 0
    /// How long each kind of work's calls took when no kill disturbed them.
    private var windows: [Work: Duration] = [:]

    private init(deployment: ProcessDeployment, telephony: TelephonyGatewayProcess, web: WebGatewayProcess, firm: Firm, seed: UInt64) {
        self.deployment = deployment
        self.telephony = telephony
        self.web = web
        browser = WebClient(base: web.base, email: firm.email)
        self.firm = firm
        random = SplitMix64(state: seed)
    }

    /// A deployment of four processes and the two gateways, and one firm ready for calls, its
    /// number's calls sent to the telephony gateway, its retention policy a month for everything.
    static func start(seed: UInt64) async throws -> CrashHarness {
        let deployment = try await ProcessDeployment()
        let telephony = try TelephonyGatewayProcess(beside: deployment, retryFor: patience)
        try await telephony.start()
        let web = try WebGatewayProcess(beside: deployment)
        try await web.start()
        let firm = try await newFirm(in: deployment, number: 0)
        _ = try await Calltrace_Compliance_V1_RetentionServiceClient(try deployment.compliance.client()).setRetentionPolicy(.with {
            $0.orgID = firm.org; $0.policy = .with { $0.recordingsMonths = 1; $0.transcriptsMonths = 1; $0.callRecordsMonths = 1 }
        }, options: try bearer(firm.admin))
        _ = try await Calltrace_Transcript_V1_TrackingNumberServiceClient(try deployment.transcript.client()).setRouting(.with {
            $0.orgID = firm.org; $0.number = firm.trackingNumber
            $0.routing = .with { $0.destinations = ["+441184960999"]; $0.ringSeconds = 20; $0.voicemail = true }
        }, options: try bearer(firm.admin))
        telephony.answer(firm.trackingNumber)
        return CrashHarness(deployment: deployment, telephony: telephony, web: web, firm: firm, seed: seed)
    }

    /// A firm ready for calls: the agreement accepted, a tracking number of its own,
    /// transcription on (transcripts given by the gateway, analysed locally).
    private static func newFirm(in deployment: ProcessDeployment, number: Int) async throws -> Firm {
        let made = try await deployment.identity.newOrganisation()
        let firm = Firm(org: made.org, email: made.email, admin: made.admin, trackingNumber: "+44118496\(String(format: "%04d", number))")
        try await deployment.compliance.acceptAgreement(org: made.org, admin: made.admin)
        _ = try await Calltrace_Transcript_V1_TrackingNumberServiceClient(try deployment.transcript.client()).assignTrackingNumber(.with {
            $0.orgID = made.org; $0.number = firm.trackingNumber; $0.source = "Google Ads"; $0.channel = .googleAds
        }, options: try bearer(made.admin))
        _ = try await Calltrace_Transcript_V1_TranscriptServiceClient(try deployment.transcript.client()).setTranscriptionSettings(.with {
            $0.orgID = made.org; $0.settings = .with { $0.enabled = true; $0.engine = "manual"; $0.analysisEngine = "local" }
        }, options: try bearer(made.admin))
        return firm
    }

    func stop() async {
        browser.close()
        await web.stop()
        await telephony.stop()
        await deployment.stop()
    }

    /// The process named `name` (one of `victims`).
    func process(_ name: String) -> ServiceProcess {
        switch name {
        case "telephony": telephony.process
        case "web": web.process
        default: deployment.services[name]!
        }
    }

    /// Starts the process named `name` again after its kill.
    private func restart(_ name: String) async throws {
        switch name {
        case "telephony": try await telephony.start()
        case "web": try await web.start()
        default: try await deployment.services[name]!.start()
        }
    }

    // MARK: One trial

    enum Work: String, CaseIterable { case ingest, ring, delete, deleteOnPage = "delete-on-page", retention, erase, offboard }

    /// One piece of work with one service killed during it and started again; the violations
    /// the invariants then find, and how many were checked.
    func trial() async throws -> (checked: Int, violations: [String]) {
        var kinds: [Work] = [.ingest, .ring]
        if !live.isEmpty { kinds += [.ingest, .delete, .deleteOnPage, .retention, .erase] }
        if Int.random(in: 0..<10, using: &random) == 0 { kinds = [.offboard] }  // one trial in ten
        let kind = kinds.randomElement(using: &random)!
        // When the work goes through a gateway, the gateway is the victim one time in two.
        let gateway = kind == .ring ? "telephony" : kind == .deleteOnPage ? "web" : nil
        let victim = gateway.flatMap { Bool.random(using: &random) ? $0 : nil } ?? ProcessDeployment.names.randomElement(using: &random)!
        // Anywhere in the calls the work makes (as long as they took last time undisturbed) or in
        // the jobs they leave running behind them (a recording linked, a transcript redacted and
        // analysed, a deletion asked of transcript and media, audit events forwarded).
        let calls = Int((windows[kind] ?? .milliseconds(200)) / .milliseconds(1))
        let moment = Duration.milliseconds(Bool.random(using: &random)
            ? Int.random(in: 0...calls, using: &random) : Int.random(in: calls...(calls + 400), using: &random))
        let size = Int.random(in: 8_000...2_000_000, using: &random)
        let caller = callers.randomElement(using: &random)!
        let target = live.keys.sorted().randomElement(using: &random)
        // Retention: one or two of the firm's calls made older than its policy keeps, before the clock starts.
        let aging = kind == .retention ? Array(live.keys.sorted().shuffled(using: &random).prefix(Int.random(in: 1...2, using: &random))) : []
        work[kind.rawValue, default: 0] += 1
        kills[victim, default: 0] += 1

        // A firm to offboard is made, with two calls, before the clock of the kill starts.
        var leaving: Firm?
        if kind == .offboard {
            firms += 1
            let made = try await Self.newFirm(in: deployment, number: firms)
            for _ in 0..<2 { try await ingest(size: size / 4, caller: caller, for: made) }
            leaving = made
        }
        if !aging.isEmpty { try await age(aging) }
        let began = ContinuousClock.now
        let job = Task { () async throws -> Duration in
            try await self.perform(kind, size: size, caller: caller, target: target, leaving: leaving)
            return ContinuousClock.now - began
        }
        try await Task.sleep(for: moment)  // the random moment of the kill, not a wait for anything
        let service = process(victim)
        let status = await service.kill()
        let killedAt = ContinuousClock.now - began
        var violations: [String] = []
        if status != 128 + SIGKILL { violations.append("\(victim) did not end by SIGKILL (status \(status.map(String.init) ?? "none"))") }
        do { try await restart(victim) } catch {
            let log = service.log.split(separator: "\n").suffix(8).joined(separator: "\n")
            throw HarnessError("\(victim) killed during \(kind) did not serve again: \(error)\n\(log)")
        }
        do {
            let took = try await job.value
            if took < killedAt {
                windows[kind] = took  // undisturbed: the next window is as long
            } else {
                killsDuringCalls += 1
            }
        } catch { violations.append("\(kind) with \(victim) killed: \(error)") }
        if let busy = try await settle() { violations.append("not idle after \(patience): \(busy)") }
        let checked = try await check(into: &violations)
        return (checked, violations)
    }

    private func perform(_ kind: Work, size: Int, caller: String, target: String?, leaving: Firm?) async throws {
        switch kind {
        case .ingest: try await ingest(size: size, caller: caller, for: firm)
        case .ring: try await ring(size: size)
        case .delete: if let target { try await delete(target) }
        case .deleteOnPage: if let target { try await deleteOnPage(target) }
        case .retention: try await runRetention()
        case .erase: if let target, let number = live[target] { try await erase(number) }
        case .offboard: if let leaving { try await offboard(leaving) }
        }
    }

    private func ingest(size: Int, caller: String, for firm: Firm) async throws {
        nextCall += 1
        let call = "call-\(nextCall)", org = firm.org
        let file = wavFile(samples: size / 2)
        let calls = Calltrace_Transcript_V1_CallServiceClient(try deployment.transcript.client(identity: TemporaryPKI.telephony))
        let started = try await persist {
            try await calls.startCall(.with { $0.callID = call; $0.trackingNumber = firm.trackingNumber; $0.callerNumber = caller; $0.direction = .inbound })
        }
        guard started.orgID == org, started.record else { throw HarnessError("call \(call) was not to be recorded: \(started.reason)") }
        if org == self.org { live[call] = caller }
        let media = Media(try deployment.media.client(identity: TemporaryPKI.telephony))
        let recording = try await persist { try await media.upload(file, org: org, call: call, piece: 32_768) }
        if org == self.org { recordingsStored.insert(recording.recordingID) }
        let transcripts = Calltrace_Transcript_V1_TranscriptServiceClient(try deployment.transcript.client(identity: TemporaryPKI.telephony))
        _ = try await persist {
            try await transcripts.submitTranscript(.with {
                $0.orgID = org; $0.callID = call
                $0.segments = [.with { $0.speaker = "caller"; $0.text = "I was hurt at work and my card is 4111 1111 1111 1111." },
                               .with { $0.speaker = "agent"; $0.text = "We can help with a personal injury claim." }]
            })
        }
        _ = try await persist { try await calls.completeCall(.with { $0.orgID = org; $0.callID = call; $0.outcome = .answered }) }
    }

    /// A call to the firm's number through Twilio's webhooks, answered and recorded: the gateway
    /// starts the call, and on the recording's callback fetches it from Twilio into media and
    /// deletes it at Twilio (a durable job). Its caller is none of `callers`, so no erasure
    /// reaches it.
    private func ring(size: Int) async throws {
        let wav = wavFile(samples: size / 4, channels: 2)
        let played = try await telephony.driver.play(.init(from: "+447700900999", to: firm.trackingNumber,
                                                           dialledLeg: .answers(talkSeconds: 30), recordingWAV: wav))
        rung[played.callSid] = played.recordingSIDs.count
    }

    private func delete(_ call: String) async throws {
        let deletions = Calltrace_Compliance_V1_DeletionServiceClient(try deployment.compliance.client())
        let deletion = try await persist {
            try await deletions.deleteCall(.with { $0.orgID = self.org; $0.callID = call; $0.reason = "Entered in error" }, options: try await self.asAdmin())
        }
        live[call] = nil
        deletionsAsked.insert(deletion.deletion.deletionID)
    }

    /// The admin deletes the call on the web app's page (the page's form, with its token), asking
    /// again, as a person would, while the page does not answer or answers that a service is
    /// down, and signing in again when the session is gone.
    private func deleteOnPage(_ call: String) async throws {
        let deadline = ContinuousClock.now + patience
        var last = "nothing"
        while ContinuousClock.now < deadline {
            do {
                var calls = try await browser.get("/calls")
                if (300..<400).contains(calls.status) {  // to the sign-in page: the session is gone
                    let form = try await browser.get("/sign-in")
                    let signedIn = try await browser.post("/sign-in", form: [("csrf", form.csrf ?? ""), ("firm", firm.org), ("email", firm.email),
                                                                             ("password", "correct horse battery staple"), ("code", ""), ("next", "")])
                    last = "signing in: \(signedIn.status)"
                    if signedIn.status == 303 { calls = try await browser.get("/calls") }
                }
                if calls.status == 200, let csrf = calls.csrf {
                    let answer = try await browser.post("/calls/\(call)/delete", form: [("csrf", csrf), ("confirm", "yes"), ("reason", "Entered in error")])
                    last = "the deletion: \(answer.status)"
                    if answer.status == 200 && answer.text.contains("Call deleted") {
                        live[call] = nil
                        deletedOnPage.insert(call)
                        return
                    }
                    // Asked again only when the session is gone (to the sign-in page) or a service
                    // did not answer (503): any other answer is a defect the kill showed.
                    guard (300..<400).contains(answer.status) || answer.status == 503 else {
                        throw HarnessError("the page's deletion of \(call) answered \(answer.status): \(answer.text.prefix(300))")
                    }
                } else {
                    last = "the calls page: \(calls.status)"
                }
            } catch let error as URLError {
                last = "\(error.code)"  // the gateway is down, or went down under the request
            }
            try await Task.sleep(for: .milliseconds(20))  // a person's pause before trying again
        }
        throw HarnessError("the page never deleted \(call); last: \(last)")
    }

    /// Makes `calls` older than the firm's policy keeps, as if two months had passed since they
    /// were taken: transcript and media are stopped (SIGTERM, as an operator would), their start
    /// and recording times moved back in their databases, and started again. From then on the
    /// calls are the policy's to remove, not the other work's.
    private func age(_ calls: [String]) async throws {
        for call in calls { live[call] = nil }
        aged.formUnion(calls)
        let past = Int64(Date().timeIntervalSince1970 * 1000) - 62 * 86_400_000
        for (service, sql) in [("transcript", "UPDATE calls SET started_at_unix_ms = ? WHERE org_id = ? AND id = ?"),
                               ("media", "UPDATE recordings SET created_at_unix_ms = ? WHERE org_id = ? AND call_id = ?")] {
            let process = deployment.services[service]!
            guard await process.stop() == 0 else { throw HarnessError("\(service) did not stop cleanly:\n\(process.log.suffix(2_000))") }
            let changed = Result {
                let database = try Database(path: process.setup.database)
                defer { database.close() }
                return try calls.map { call in try database.sync { try $0.execute(sql, past, org, call) } }
            }
            try await process.start()
            // Each call has its one record in transcript and its one recording in media.
            guard try changed.get() == calls.map({ _ in 1 }) else { throw HarnessError("\(service) did not have each of \(calls) once to age") }
        }
    }

    /// The firm's policy run now, and its receipt awaited: the aged calls go everywhere.
    private func runRetention() async throws {
        let retention = Calltrace_Compliance_V1_RetentionServiceClient(try deployment.compliance.client())
        let run = try await persist { try await retention.runRetention(.with { $0.orgID = self.org }, options: try await self.asAdmin()).run }
        retentionRuns.insert(run.runID)
        let deadline = ContinuousClock.now + patience
        while ContinuousClock.now < deadline {
            let runs = try await persist { try await retention.listRetentionRuns(.with { $0.orgID = self.org }, options: try await self.asAdmin()).runs }
            if runs.contains(where: { $0.runID == run.runID && $0.state == .finished }) { return }
            try await Task.sleep(for: .milliseconds(20))  // the run is a durable job; the admin's page looks again
        }
        throw HarnessError("retention run \(run.runID) did not finish")
    }

    private func erase(_ number: String) async throws {
        let requests = Calltrace_Compliance_V1_SubjectRequestServiceClient(try deployment.compliance.client())
        let opened = try await persist {
            try await requests.openSubjectRequest(.with {
                $0.orgID = self.org; $0.kind = .erasure; $0.phoneNumbers = [number]; $0.receivedOn = Self.today(); $0.nation = "england-and-wales"
            }, options: try await self.asAdmin())
        }
        let id = opened.request.requestID
        _ = try await persist {
            try await requests.recordIdentityCheck(.with { $0.orgID = self.org; $0.requestID = id; $0.result = .passed }, options: try await self.asAdmin())
        }
        _ = try await persist { try await requests.eraseSubjectData(.with { $0.orgID = self.org; $0.requestID = id }, options: try await self.asAdmin()) }
        erasuresAsked.insert(id)
        for (call, caller) in live where caller == number { live[call] = nil }
    }

    /// The firm's export built, then confirmed: everything of it purged from every service.
    /// Confirming purges at once; a purge a kill interrupted resumes where it stood when the
    /// admin confirms again (as the page offers), or when the durable job takes over (five
    /// minutes on, longer than a trial waits).
    private func offboard(_ leaving: Firm) async throws {
        let offboarding = Calltrace_Compliance_V1_OffboardingServiceClient(try deployment.compliance.client())
        let admin = try bearer(leaving.admin)
        var record = try await persist { try await offboarding.startOffboarding(.with { $0.orgID = leaving.org }, options: admin).offboarding }
        let deadline = ContinuousClock.now + patience
        while record.state == .exporting && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))  // the export is a durable job; the admin's page looks again
            record = try await persist { try await offboarding.getOffboarding(.with { $0.orgID = leaving.org }, options: admin).offboarding }
        }
        guard record.state == .awaitingConfirmation else { throw HarnessError("offboarding \(record.offboardingID) is \(record.state), not awaiting confirmation") }
        while try !Self.offboardingCompleted(leaving.org, in: deployment) {
            guard ContinuousClock.now < deadline else { throw HarnessError("offboarding \(record.offboardingID) did not complete") }
            do {
                _ = try await offboarding.confirmOffboarding(.with {
                    $0.orgID = leaving.org; $0.offboardingID = record.offboardingID; $0.confirmOrgID = leaving.org
                }, options: admin)
            } catch let error as RPCError where Self.retried.contains(error.code) {
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        offboarded.insert(leaving.org)
    }

    static func offboardingCompleted(_ org: String, in deployment: ProcessDeployment) throws -> Bool {
        try Database.query(readOnly: deployment.compliance.setup.database, "SELECT completed_at_unix_ms FROM offboardings WHERE org_id = ?",
                           bindings: [org]).first?.int("completed_at_unix_ms") ?? 0 > 0
    }

    /// The admin's session; signed in again if identity no longer knows it.
    func asAdmin() async throws -> CallOptions { try bearer(firm.admin) }

    /// Asks again, with the same ids, what a kill cut off — as a gateway does — until answered.
    private func persist<T>(_ body: () async throws -> T) async throws -> T {
        let deadline = ContinuousClock.now + patience
        while true {
            do { return try await body() } catch let error as RPCError where Self.retried.contains(error.code) && ContinuousClock.now < deadline {
                if error.code == .unauthenticated {
                    firm.admin = try await deployment.identity.login(email: firm.email, org: firm.org)
                }
                try await Task.sleep(for: .milliseconds(20))  // a gateway's pause before asking again
            }
        }
    }

    /// What a kill makes a call answer: the service is down or went down under the call (a
    /// stream cut off mid-way ends as CANCELLED or UNKNOWN), or identity was not there to check
    /// the session.
    private static let retried: Set<StatusCode> = [.unavailable, .deadlineExceeded, .cancelled, .unknown, .aborted, .unauthenticated]

    private static func today() -> String {
        let format = DateFormatter()
        format.dateFormat = "yyyy-MM-dd"
        format.timeZone = TimeZone(identifier: "Europe/London")
        format.locale = Locale(identifier: "en_GB_POSIX")
        return format.string(from: Date())
    }

    // MARK: Idle

    /// Waits until no service has a job running, due or retrying, or an audit event unsent; nil
    /// then, or what is still busy after `patience`.
    private func settle() async throws -> String? {
        var busy: String?
        let idle = try await eventually {
            busy = try deployment.busy(also: ["telephony": telephony.process.setup.database, "web": web.process.setup.database])
            return busy == nil
        }
        return idle ? nil : busy
    }

    // MARK: Invariants

    struct HarnessError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }
}
