import CallTraceKeys
import CallTraceRPC
import CallTraceServiceHost
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Twilio

/// Twilio's webhooks, as HTTP (behind nginx): each is checked before anything else reads it —
/// its `X-Twilio-Signature` over the public URL Twilio requested and its parameters (403
/// otherwise), then its account — and a retry (the same `I-Twilio-Idempotency-Token`, or the
/// same request) gets the answer the first one got, without doing anything again.
struct TwilioWebhooks: Sendable {
    let calls: InboundCalls
    let callbacks: Callbacks
    let signature: TwilioSignature
    let accountSID: String
    /// What Twilio requests, before the path: the gateway's `public_url`.
    let publicBase: String
    let repository: any TelephonyRepository
    let keys: KeyRing
    let clock: any WallClock
    let counters: TelephonyCounters
    let logger: Logger

    /// Twilio's webhooks are a few kB of form parameters.
    static let maxBody = 64 << 10
    /// A retry comes within minutes; answers are kept a day.
    static let receiptsKeptMs: Int64 = 86_400_000
    static let signatureHeader = HTTPField.Name(TwilioSignature.header)!
    static let idempotencyHeader = HTTPField.Name("I-Twilio-Idempotency-Token")!
    static let errorsPath = "/twilio/errors"

    func router() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.post(.init(WebhookURLs.voicePath)) { request, _ in try await handle(request) { try await calls.arrived($0) } }
        router.post(.init(WebhookURLs.dialPath)) { request, _ in try await handle(request) { try await calls.dialEnded($0) } }
        router.post(.init(WebhookURLs.whisperPath)) { request, _ in
            let call = request.uri.queryParameters["call"].map(String.init) ?? ""
            return try await handle(request) { try await calls.whisper($0, call: call) }
        }
        router.post(.init(WebhookURLs.voicemailPath)) { request, _ in try await handle(request) { try await calls.voicemailLeft($0) } }
        router.post(.init(WebhookURLs.statusPath)) { request, _ in try await handle(request) { try await calls.statusChanged($0) } }
        router.post(.init(WebhookURLs.recordingPath)) { request, _ in try await handle(request) { try await calls.recordingReady($0) } }
        router.post(.init(WebhookURLs.callbackPath)) { request, _ in
            let token = request.uri.queryParameters["cb"].map(String.init) ?? ""
            return try await handle(request) { try await callbacks.answered($0, token: token) }
        }
        router.post(.init(Self.errorsPath)) { request, _ in try await handle(request) { try twilioReported($0) } }
        return router
    }

    /// One webhook: checked, answered once, its answer kept for retries.
    private func handle(_ request: Request, _ step: @Sendable (FormParameters) async throws -> WebhookAnswer) async throws -> Response {
        let path = request.uri.path
        let body: Data
        do {
            body = Data(buffer: try await request.body.collect(upTo: Self.maxBody))
        } catch {
            return refuse(.contentTooLarge, path: path, "the body is larger than \(Self.maxBody >> 10) kB")
        }
        // The URL exactly as Twilio requested it: the public base, then the path and query as they came.
        let url = publicBase + (request.head.path ?? path)
        let parameters: FormParameters
        do {
            parameters = try signature.verify(signature: request.headers[Self.signatureHeader], url: url, body: body,
                                              contentType: request.headers[.contentType])
        } catch {
            return refuse(.forbidden, path: path, "\(error)")
        }
        guard parameters["AccountSid"] == accountSID else {
            return refuse(.forbidden, path: path, "the webhook is for another Twilio account")
        }
        // Twilio's idempotency token is not signed: it keys a retry only together with the
        // signed request itself, so a captured request sent again under another token cannot
        // fetch, or plant, another request's answer.
        let token = request.headers[Self.idempotencyHeader] ?? ""
        let key = "request:" + TwilioSignature.bodySHA256(Data(token.utf8) + [0] + Data((request.head.path ?? path).utf8) + [0] + body)
        if let receipt = try await repository.read({ tx in try tx.receipt(key) }) {
            counters.add(.webhookRepeated)
            return try replay(receipt)
        }
        let answer: WebhookAnswer
        do {
            answer = try await step(parameters)
        } catch let error as UnexpectedWebhook {
            counters.add(.webhookUnexpected)
            logger.warning("webhook not understood", metadata: ["path": "\(path)", "reason": "\(error)"])
            return Response(status: .badRequest)
        } catch let error as RPCError where [.unavailable, .deadlineExceeded].contains(error.code) {
            // Nothing was done: Twilio tries the number's fallback URL (a voice call), or the next retry.
            logger.error("webhook not answered: a service is not answering", metadata: ["path": "\(path)", "code": "\(error.code)"])
            return Response(status: .serviceUnavailable)
        } catch {
            // Anything else (a service refusing the gateway, a full disk): said, counted, and 500,
            // so Twilio falls back; the error's type and code only (a service's text may quote a number).
            counters.add(.webhookFailed)
            logger.error("webhook failed", metadata: ["path": "\(path)", "error_type": "\(type(of: error))",
                                                      "code": "\((error as? RPCError)?.code.description ?? "-")"])
            return Response(status: .internalServerError)
        }
        let text = Data((answer.twiml?.rendered ?? "").utf8)
        let sealed = !answer.org.isEmpty && !text.isEmpty
        let kept = sealed ? try seal(text, org: answer.org, key: key) : text
        let receipt = WebhookReceipt(key: key, org: answer.org, status: text.isEmpty ? 204 : 200, contentType: TwiML.contentType,
                                     body: kept, sealed: sealed, receivedAt: clock.nowUnixMs)
        _ = try await repository.write { tx in try tx.insert(receipt) }
        return Self.response(status: receipt.status, body: text)
    }

    private func replay(_ receipt: WebhookReceipt) throws -> Response {
        let text = receipt.sealed
            ? try keys.open(receipt.body, org: receipt.org, table: "webhook_receipts", column: "body", row: receipt.key)
            : receipt.body
        return Self.response(status: receipt.status, body: text)
    }

    private func seal(_ text: Data, org: String, key: String) throws -> Data {
        try keys.createKeys(for: org)
        return try keys.seal(text, org: org, table: "webhook_receipts", column: "body", row: key)
    }

    private static func response(status: Int, body: Data) -> Response {
        guard !body.isEmpty else { return Response(status: .noContent) }
        return Response(status: .init(code: status), headers: [.contentType: TwiML.contentType],
                        body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    private func refuse(_ status: HTTPResponse.Status, path: String, _ reason: String) -> Response {
        counters.add(.webhookRefused)
        logger.warning("webhook refused", metadata: ["path": "\(path)", "status": "\(status.code)", "reason": "\(reason)"])
        return Response(status: status)
    }

    /// Twilio's debugger reporting an error or warning of the account: logged by its code and
    /// level (never its payload, which may quote numbers) and counted.
    private func twilioReported(_ parameters: FormParameters) throws -> WebhookAnswer {
        counters.add(.twilioError)
        var code = "unknown"
        if let payload = parameters["Payload"].flatMap({ try? JSONSerialization.jsonObject(with: Data($0.utf8)) }) as? [String: Any],
           let number = payload["error_code"] {
            // Twilio's error codes are five digits; anything longer (a number in the wrong field) is not logged.
            let digits = "\(number)".filter { $0.isASCII && $0.isNumber }
            if (1...6).contains(digits.count) { code = digits }
        }
        let level = (parameters["Level"] ?? "").filter(\.isLetter).prefix(16)
        logger.error("Twilio reported a problem with the account", metadata: ["twilio_error": "\(code)", "level": "\(level)"])
        return .nothing
    }
}
