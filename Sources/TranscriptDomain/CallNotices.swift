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
    /// Never throws: when the answer cannot be had, the call is not recorded, with the reason.
    func callNotice(org: String, kind: Calltrace_Compliance_V1_NoticeKind, transcribed: Bool) async -> CallNotice
}

/// Compliance's `NoticeService/GetCallNotice`, as transcript itself.
struct ComplianceCallNotices: CallNoticeSource {
    let client: Calltrace_Compliance_V1_NoticeServiceClient

    func callNotice(org: String, kind: Calltrace_Compliance_V1_NoticeKind, transcribed: Bool) async -> CallNotice {
        do {
            let answer = try await client.getCallNotice(.with { $0.orgID = org; $0.kind = kind; $0.transcribed = transcribed },
                                                        options: CallOptions(timeout: .seconds(5)))
            return CallNotice(mayRecord: answer.mayRecord, reason: answer.reason, text: answer.text)
        } catch let error as RPCError {
            // Recording without knowing the agreement was accepted would break P5: not recorded.
            return CallNotice(mayRecord: false, reason: "compliance could not confirm the processing agreement (\(error.code)): not recorded", text: "")
        } catch {
            return CallNotice(mayRecord: false, reason: "compliance could not confirm the processing agreement: not recorded", text: "")
        }
    }
}
