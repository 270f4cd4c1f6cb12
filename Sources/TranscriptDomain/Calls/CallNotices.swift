import CallTraceAPI
import CallTraceProto
import CallTraceRPC

/// What compliance says as a call starts: whether the organisation may record (it accepted the
/// current processing agreement) and the notice to play.
struct CallNotice: Sendable, Equatable {
    let mayRecord: Bool
    let reason: String
    let text: String
}

/// Where `CallRules` asks it: compliance, which owns agreements and notices.
protocol CallNoticeSource: Sendable {
    /// Throws when compliance cannot answer now: the call is then neither recorded nor stored
    /// (StartCall answers UNAVAILABLE and the gateway asks again), never recorded unconfirmed.
    func callNotice(org: String, kind: Calltrace_Compliance_V1_NoticeKind, transcribed: Bool) async throws -> CallNotice
}

/// Compliance's `NoticeService/GetCallNotice`, as transcript itself.
struct ComplianceCallNotices: CallNoticeSource {
    let client: Calltrace_Compliance_V1_NoticeServiceClient

    func callNotice(org: String, kind: Calltrace_Compliance_V1_NoticeKind, transcribed: Bool) async throws -> CallNotice {
        let answer = try await client.getCallNotice(.with { $0.orgID = org; $0.kind = kind; $0.transcribed = transcribed },
                                                    options: CallOptions(timeout: .seconds(5)))
        return CallNotice(mayRecord: answer.mayRecord, reason: answer.reason, text: answer.text)
    }
}
