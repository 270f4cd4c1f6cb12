import CallTraceAPI
import CallTraceProto
import CallTraceRPC

/// The four services (and the telephony gateway, when there is one), through their typed clients,
/// presenting the web gateway's certificate.
/// The gateway never acts as itself for a person's data: every call about a firm's data carries
/// the signed-in person's token (`Caller`), so identity authorises it, the service audits it
/// under that person, and the firm's boundaries stay where the services keep them.
struct Backend: Sendable {
    let identity: Calltrace_Identity_V1_IdentityServiceClient
    /// Each person's choice of e-mail alerts (identity sends them).
    let alerts: Calltrace_Identity_V1_AlertServiceClient
    let recordings: Calltrace_Media_V1_RecordingServiceClient
    let shareLinks: Calltrace_Media_V1_ShareLinkServiceClient
    let calls: Calltrace_Transcript_V1_CallServiceClient
    let transcripts: Calltrace_Transcript_V1_TranscriptServiceClient
    let trackingNumbers: Calltrace_Transcript_V1_TrackingNumberServiceClient
    let blockList: Calltrace_Transcript_V1_BlockListServiceClient
    let websites: Calltrace_Transcript_V1_WebsiteServiceClient
    /// The website tag's questions, for anonymous visitors: the gateway asks as itself (the
    /// website's key and the page's origin decide), with the visitor's address.
    let visitors: Calltrace_Transcript_V1_VisitorServiceClient
    let audit: Calltrace_Compliance_V1_AuditServiceClient
    /// Call backs, when the deployment names a telephony gateway (its numbers and call backs); else nil.
    let callbacks: Calltrace_Telephony_V1_CallbackServiceClient?
    /// The connections themselves, by service name, for `/api/v1/rpc` (`RPCRelay`).
    let peers: [String: any RPCChannel]

    init(peers: [String: any RPCChannel]) {
        self.peers = peers
        identity = .init(peers["identity"]!)
        alerts = .init(peers["identity"]!)
        recordings = .init(peers["media"]!)
        shareLinks = .init(peers["media"]!)
        calls = .init(peers["transcript"]!)
        transcripts = .init(peers["transcript"]!)
        trackingNumbers = .init(peers["transcript"]!)
        blockList = .init(peers["transcript"]!)
        websites = .init(peers["transcript"]!)
        visitors = .init(peers["transcript"]!)
        audit = .init(peers["compliance"]!)
        callbacks = peers["telephony"].map { .init($0) }
    }
}

/// Who a call to a service is made for: the person's token, when signed in, and the address of
/// their browser (identity applies the firm's IP allow-list and lockout to it).
struct Caller: Sendable {
    let token: String?
    let clientAddress: String?
    /// How long a page waits for a service.
    static let timeout: Duration = .seconds(10)
    /// How long one stream to the browser may last (a recording's range, a download): a slow
    /// listener's range must not be cut off at a page's ten seconds, nor hold a stream for ever.
    static let streamTimeout: Duration = .seconds(600)

    /// The gateway itself, for nobody at an address: a webhook's polls and deliveries, under the
    /// token identity keeps for this gateway (it works only when the gateway says so).
    static func actingForNobody(token: String) -> Caller { Caller(token: token, clientAddress: ServerContext.actingForNobody) }

    var options: CallOptions { options(timeout: Self.timeout) }
    /// For a stream handed on to the browser.
    var streamOptions: CallOptions { options(timeout: Self.streamTimeout) }

    private func options(timeout: Duration) -> CallOptions {
        var metadata = Metadata()
        if let token { try? metadata.add("authorization", "Bearer \(token)") }
        if let clientAddress { try? metadata.add(ServerContext.clientAddressKey, clientAddress) }
        return CallOptions(timeout: timeout, metadata: metadata)
    }
}
