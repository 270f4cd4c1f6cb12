import CallTraceAPI
import CallTraceKeys
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceStorage
import CallTraceSync
import CallTraceTestSupport
import Foundation
import ComplianceDomain
import IdentityDomain
import MediaDomain
import Testing
import TranscriptDomain

typealias Calls = Calltrace_Transcript_V1_CallServiceClient
typealias Transcripts = Calltrace_Transcript_V1_TranscriptServiceClient
typealias TrackingNumbers = Calltrace_Transcript_V1_TrackingNumberServiceClient
typealias Suppressions = Calltrace_Transcript_V1_SuppressionServiceClient
typealias BlockList = Calltrace_Transcript_V1_BlockListServiceClient
typealias Recordings = Calltrace_Media_V1_RecordingServiceClient

/// Identity, media, transcript and compliance in this test process, one deployment PKI, real
/// mutual TLS; they call each other. Local fake Deepgram and Anthropic HTTPS servers (with
/// certificates of the same PKI, which transcript trusts through `outbound_ca`) answer as the
/// providers document.
final class TranscriptDeployment: @unchecked Sendable {
    let pki = try! TemporaryPKI()
    let identity: InProcessService
    let media: InProcessService
    let transcript: InProcessService
    /// Compliance: the processing agreement each organisation accepts before its calls are recorded.
    let compliance: InProcessService
    let deepgram: FakeHTTPSServer
    let anthropic: FakeHTTPSServer
    let keyFolder: String
    /// Each organisation's first admin's e-mail, to log in again (`login(adminOf:)`).
    private let admins = Locked<[String: String]>([:])

    /// `deepgram` and `anthropic` answer every request unless a test says otherwise.
    init(deepgram answer: @escaping @Sendable (FakeHTTPSServer.Request) -> FakeHTTPSServer.Response = TranscriptDeployment.deepgramAnswer,
         anthropic analysis: @escaping @Sendable (FakeHTTPSServer.Request) -> FakeHTTPSServer.Response = TranscriptDeployment.anthropicAnswer)
        async throws {
        deepgram = try FakeHTTPSServer(credentials: try pki.credentials(for: TemporaryPKI.identity("service", "deepgram")), respond: answer)
        anthropic = try FakeHTTPSServer(credentials: try pki.credentials(for: TemporaryPKI.identity("service", "anthropic")), respond: analysis)
        keyFolder = pki.directory.appendingPathComponent("provider-keys").path
        try FileManager.default.createDirectory(atPath: keyFolder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        for (name, key) in [("deepgram", "dg-secret-key"), ("anthropic", "sk-ant-secret-key")] {
            try #require(FileManager.default.createFile(atPath: "\(keyFolder)/\(name).key", contents: Data(key.utf8), attributes: [.posixPermissions: 0o600]))
        }
        identity = try await InProcessService.start(IdentityService.self, pki: pki)
        // Media, transcript and compliance name each other: transcript starts first, told the
        // ports the others will take (below the ephemeral range, so no connection of a parallel
        // test takes them meanwhile).
        var started: (InProcessService, InProcessService, InProcessService)?
        var lastError: (any Error)?
        for _ in 0..<3 where started == nil {
            let (mediaPort, compliancePort, identityPort) = (try freePort(), try freePort(), identity.instance.port)
            let (deepgramURL, anthropicURL, keys, pki) = (deepgram.url, anthropic.url, keyFolder, pki)
            let transcript = try await InProcessService.start(TranscriptService.self, peers: [
                "identity": identityPort, "media": mediaPort, "compliance": compliancePort,
            ], pki: pki) { configuration in
                configuration[TranscriptSettings.self].deepgramURL = deepgramURL
                configuration[TranscriptSettings.self].deepgramKeyFile = "\(keys)/deepgram.key"
                configuration[TranscriptSettings.self].anthropicURL = anthropicURL
                configuration[TranscriptSettings.self].anthropicKeyFile = "\(keys)/anthropic.key"
                configuration[TranscriptSettings.self].outboundCA = configuration.ca  // the fake providers' certificates come from the deployment's CA
            }
            do {
                let media = try await InProcessService.start(MediaService.self, peers: ["identity": identityPort, "transcript": transcript.instance.port],
                                                             pki: pki) { $0.listen = "127.0.0.1:\(mediaPort)" }
                do {
                    let compliance = try await InProcessService.start(ComplianceService.self, peers: [
                        "identity": identityPort, "media": mediaPort, "transcript": transcript.instance.port,
                    ], pki: pki) { $0.listen = "127.0.0.1:\(compliancePort)" }
                    started = (transcript, media, compliance)
                } catch {
                    await media.stop()
                    throw error
                }
            } catch {
                lastError = error  // a port was taken meanwhile: again, with others
                await transcript.stop()
            }
        }
        guard let started else { throw lastError ?? ConfigurationError("media did not start") }
        (transcript, media, compliance) = started
    }

    func stop() async {
        await compliance.stop()
        await media.stop()
        await transcript.stop()
        await identity.stop()
        deepgram.stop()
        anthropic.stop()
        try? FileManager.default.removeItem(atPath: keyFolder)
    }

    // MARK: Clients

    func calls(as who: String = TemporaryPKI.identity("gateway", "web")) throws -> Calls { Calls(try transcript.client(identity: who)) }
    func transcripts(as who: String = TemporaryPKI.identity("gateway", "web")) throws -> Transcripts { Transcripts(try transcript.client(identity: who)) }
    func numbers(as who: String = TemporaryPKI.identity("gateway", "web")) throws -> TrackingNumbers { TrackingNumbers(try transcript.client(identity: who)) }
    func suppressions(as who: String = TemporaryPKI.identity("gateway", "web")) throws -> Suppressions { Suppressions(try transcript.client(identity: who)) }
    func blockList(as who: String = TemporaryPKI.identity("gateway", "web")) throws -> BlockList { BlockList(try transcript.client(identity: who)) }
    func recordings(as who: String = TemporaryPKI.identity("gateway", "web")) throws -> Recordings { Recordings(try media.client(identity: who)) }

    // MARK: Organisations and users

    func organisation(_ name: String = "Smith & Co Solicitors") async throws -> (org: String, admin: String) {
        let made = try await identity.newOrganisation(name)
        try await compliance.acceptAgreement(org: made.org, admin: made.admin)
        admins.withLock { $0[made.org] = made.email }
        return (made.org, made.admin)
    }

    /// A new session of `org`'s first admin.
    func login(adminOf org: String) async throws -> String {
        try await identity.login(email: try #require(admins.withLock { $0[org] }), org: org)
    }

    func user(_ role: Calltrace_Identity_V1_Role, in org: String, admin: String) async throws -> String {
        try await identity.newUser(role, in: org, admin: admin)
    }

    /// Assigns `number` to a source in `org` (as its admin).
    @discardableResult
    func assign(_ number: String, org: String, admin: String, source: String = "Google Ads – personal injury",
                channel: Calltrace_Transcript_V1_Channel = .googleAds, campaign: String = "PI spring") async throws -> Calltrace_Transcript_V1_TrackingNumber {
        try await numbers().assignTrackingNumber(.with {
            $0.orgID = org; $0.number = number; $0.source = source; $0.channel = channel; $0.campaign = campaign
        }, options: try bearer(admin)).trackingNumber
    }

    /// A call from `caller` to `tracking`, started by the gateway.
    @discardableResult
    func start(_ callID: String, tracking: String, caller: String, at time: Int64 = 0,
               direction: Calltrace_Transcript_V1_Direction = .inbound) async throws -> Calltrace_Transcript_V1_StartCallResponse {
        try await calls(as: TemporaryPKI.telephony).startCall(.with {
            $0.callID = callID; $0.trackingNumber = tracking; $0.callerNumber = caller; $0.direction = direction; $0.startedAtUnixMs = time
        })
    }

    /// Sets `number`'s routing in `org` (as its admin).
    @discardableResult
    func route(_ number: String, org: String, admin: String, _ routing: Calltrace_Transcript_V1_Routing) async throws -> Calltrace_Transcript_V1_TrackingNumber {
        try await numbers().setRouting(.with { $0.orgID = org; $0.number = number; $0.routing = routing }, options: try bearer(admin)).trackingNumber
    }

    /// The organisation's audit events as compliance holds them once `condition` holds (transcript forwards them in order).
    func auditEvents(org: String, admin: String, until condition: @escaping ([Calltrace_Compliance_V1_AuditEvent]) -> Bool) async throws
        -> [Calltrace_Compliance_V1_AuditEvent] {
        let audit = Calltrace_Compliance_V1_AuditServiceClient(try compliance.client())
        var events: [Calltrace_Compliance_V1_AuditEvent] = []
        let arrived = try await eventually {
            events = try await audit.listAuditEvents(.with { $0.orgID = org; $0.pageSize = 500 }, options: try bearer(admin)).events.map(\.event)
            return condition(events)
        }
        #expect(arrived, "the audit events expected: \(events.map(\.action))")
        return events
    }

    /// How many rows of `table` transcript holds for `org`.
    func rows(_ table: String, org: String) async throws -> Int {
        let count: Int64 = try await transcript.instance.database.read { db in
            try db.query("SELECT COUNT(*) AS n FROM \(table) WHERE org_id = ?", org).first?.int("n") ?? 0
        }
        return Int(count)
    }

    /// Everything transcript has written to its database and logs, as text: for "never in clear" checks.
    func everythingTranscriptWrote() throws -> String {
        String(decoding: try transcript.storedBytes(), as: UTF8.self) + transcript.log.text
    }

    // MARK: The providers' documented answers

    /// Deepgram's `/v1/listen` answer: utterances, per channel for two-channel audio.
    static let deepgramAnswer: @Sendable (FakeHTTPSServer.Request) -> FakeHTTPSServer.Response = { request in
        guard request.query["mip_opt_out"] == "true" else {
            return .json(#"{"err_code":"TEST_FAILURE","err_msg":"the adapter did not opt out of model improvement"}"#, status: 400)
        }
        let multichannel = request.query["multichannel"] == "true"
        return .json(deepgramJSON(utterances: [
            (0.0, 4.2, 0, "Hello, I need some advice, I was injured in a car crash last week."),
            (4.5, 7.0, multichannel ? 1 : 0, "I'm sorry to hear that. Can I take a card payment for the initial consultation?"),
            (7.5, 12.0, 0, "Yes, it's 4111 1111 1111 1111, expiry 09/27, and the security code is 123."),
            (12.5, 15.0, 0, "Please call me back on 07700 900123 this afternoon, it's urgent."),
        ], multichannel: multichannel))
    }

    /// Deepgram's answer for `utterances` (start, end, channel, text); each utterance's words share its time evenly.
    static func deepgramJSON(utterances: [(Double, Double, Int, String)], multichannel: Bool) -> String {
        let items = utterances.enumerated().map { index, u in
            let said = u.3.split(separator: " ")
            let step = (u.1 - u.0) / Double(said.count)
            let words = said.enumerated().map { i, word in
                let bare = word.lowercased().trimmingCharacters(in: .punctuationCharacters)
                return #"{"word":"\#(bare)","start":\#(u.0 + Double(i) * step),"end":\#(u.0 + Double(i + 1) * step),"confidence":0.97,"punctuated_word":"\#(word)"}"#
            }
            return #"{"start":\#(u.0),"end":\#(u.1),"confidence":0.98,"channel":\#(u.2),"transcript":"\#(u.3)","words":[\#(words.joined(separator: ","))],"speaker":\#(multichannel ? 0 : index % 2),"id":"u\#(index)"}"#
        }
        let channels = (multichannel ? [0, 1] : [0]).map { channel in
            #"{"alternatives":[{"transcript":"\#(utterances.filter { $0.2 == channel }.map(\.3).joined(separator: " "))","confidence":0.98,"words":[]}]}"#
        }
        return #"{"metadata":{"request_id":"req-1","duration":15.0,"channels":\#(channels.count)},"results":{"channels":[\#(channels.joined(separator: ","))],"utterances":[\#(items.joined(separator: ","))]}}"#
    }

    /// Anthropic's `/v1/messages` answer: one text content block holding the JSON asked for.
    static let anthropicAnswer: @Sendable (FakeHTTPSServer.Request) -> FakeHTTPSServer.Response = { request in
        guard request.headers["x-api-key"] == "sk-ant-secret-key", request.headers["anthropic-version"] == "2023-06-01" else {
            return .json(#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#, status: 401)
        }
        let analysis = #"{\"practice_area\":\"personal_injury\",\"new_enquiry\":true,\"urgency\":\"high\",\"callback_requested\":true,\"summary\":\"The caller was injured in a car crash last week and wants advice. They asked for a call back this afternoon.\"}"#
        return .json(#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"\#(analysis)"}],"stop_reason":"end_turn","usage":{"input_tokens":100,"output_tokens":60}}"#)
    }
}

extension Recordings {
    func upload(_ file: Data, org: String, call: String, channels: UInt32 = 1) async throws -> Calltrace_Media_V1_Recording {
        try await uploadRecording { writer in
            try await writer.send(.with {
                $0.header = .with {
                    $0.orgID = org; $0.callID = call; $0.format = .wavPcm16; $0.sampleRateHz = 8000; $0.channels = channels; $0.sha256 = sha256(file)
                }
            })
            try await writer.send(.with { $0.chunk = file })
        }.recording
    }
}
