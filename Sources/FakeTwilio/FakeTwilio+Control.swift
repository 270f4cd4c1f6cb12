import CallTraceOutbound
import Foundation
import Twilio

/// `POST /_fake/InboundCalls`: not Twilio's, the fake's own door for `calltrace-fake-twilio
/// call` (`make demo`), so a call is played inside the process that will serve its recording.
/// Basic auth as for the REST API; the form names:
///
///     Gateway      where the gateway listens (http:// to loopback, or https://)
///     PublicUrl    the gateway's public base URL, which is signed
///     From, To     the caller, and the account's number called
///     AnswerPlaced instead of From and To: a call placed through `POST Calls.json` (its SID, or
///                  `latest`) is answered by its `To` and followed (a call back)
///     WavFile      a path on this machine: the recording's bytes
///     DialledLeg   answers (default) | no-answer | busy | failed
///     CAFile       the CA for an https:// Gateway (optional)
///
/// It answers when the call has ended, with JSON: `call_sid`, `final_status`,
/// `recording_sids`, and each webhook's `url` and `status`.
extension FakeTwilio {
    struct PlayedCallSummary: Encodable {
        struct Sent: Encodable {
            let url: String
            let status: Int
        }

        let callSid: String
        let finalStatus: String
        let recordingSids: [String]
        let webhooks: [Sent]

        enum CodingKeys: String, CodingKey {
            case callSid = "call_sid", finalStatus = "final_status", recordingSids = "recording_sids", webhooks
        }
    }

    func driveInboundCall(_ request: HTTPRequest) -> HTTPResponse {
        guard let form = try? FormParameters(parsing: request.body), let gateway = form["Gateway"], let publicURL = form["PublicUrl"],
              let path = form["WavFile"], form["AnswerPlaced"] != nil || (form["From"] != nil && form["To"] != nil) else {
            return Self.error(400, code: 21200, "Gateway, PublicUrl, WavFile, and From and To (or AnswerPlaced) are required")
        }
        var placed: String?
        if let answering = form["AnswerPlaced"] {
            guard let sid = answering == "latest" ? placedCalls.last?.call.sid : answering else {
                return Self.error(404, code: 20404, "no call was placed")
            }
            placed = sid
        }
        guard let wav = FileManager.default.contents(atPath: path) else { return Self.error(400, code: 21200, "WavFile cannot be read") }
        let leg: CallDriver.DialledLeg = switch form["DialledLeg"] ?? "answers" {
        case "no-answer": .noAnswer
        case "busy": .busy
        case "failed": .failed
        default: .answers()
        }
        let driver = CallDriver(fake: self, gatewayURL: gateway, publicURL: publicURL,
                                transport: CurlHTTPS(caFile: form["CAFile"], allowsLoopbackHTTP: true))
        let call = CallDriver.InboundCall(from: form["From"] ?? "", to: form["To"] ?? "", dialledLeg: leg, recordingWAV: wav)
        // This runs on the connection's own thread (never a cooperative one), which may wait.
        let outcome = Outcome()
        Task {
            do {
                if let placed {
                    outcome.set(.success(try await driver.answerPlacedCall(sid: placed, dialledLeg: leg, recordingWAV: wav)))
                } else {
                    outcome.set(.success(try await driver.play(call)))
                }
            } catch {
                outcome.set(.failure(error))
            }
        }
        switch outcome.wait() {
        case .success(let played):
            return .json(PlayedCallSummary(callSid: played.callSid, finalStatus: played.finalStatus, recordingSids: played.recordingSIDs,
                                           webhooks: played.webhooks.map { .init(url: $0.url, status: $0.status) }))
        case .failure(let error):
            return Self.error(502, code: 11200, "the call could not be played: \(error)")
        }
    }
}

/// The played call's result, handed from its task to the waiting connection thread.
private final class Outcome: @unchecked Sendable {
    private let condition = NSCondition()
    private var result: Result<CallDriver.PlayedCall, any Error>?

    func set(_ result: Result<CallDriver.PlayedCall, any Error>) {
        condition.withLock {
            self.result = result
            condition.signal()
        }
    }

    func wait() -> Result<CallDriver.PlayedCall, any Error> {
        condition.withLock {
            while result == nil { condition.wait() }
            return result!
        }
    }
}
