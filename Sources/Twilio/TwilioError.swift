import CallTraceOutbound
import Foundation

/// A Twilio call that did not do what was asked. Its text names the operation, the HTTP status
/// and Twilio's error code and documentation link; Twilio's own message is included with anything
/// that looks like a phone number replaced, and never a token, key or secret.
public struct TwilioError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// 401 or 403: the API key, its secret or the account SID is wrong, or not allowed this.
        case authentication
        /// 404: no such resource (a released number, a deleted recording).
        case notFound
        /// Another 4xx: Twilio refused the request as asked (a number no longer available, a
        /// missing bundle). Retrying the same request fails the same way.
        case refused
        /// 429: too many requests; retry later.
        case rateLimited
        /// 5xx: Twilio failed; retry later.
        case unavailable
        /// No answer at all (connection, TLS, time-out).
        case transport
        /// An answer that is not what Twilio documents (undecodable JSON, an unexpected status).
        case unexpectedAnswer
        /// Our own configuration: the API key file, a malformed SID.
        case configuration
    }

    public let kind: Kind
    /// What was being done, e.g. "buying a number".
    public let operation: String
    public let status: Int?
    /// Twilio's error code (https://www.twilio.com/docs/errors/<code>).
    public let code: Int?
    /// Twilio's message (or a transfer's) with phone numbers replaced by `[number]`; a
    /// configuration error's own text as it is.
    public let message: String
    public let moreInfo: String?

    public init(_ kind: Kind, operation: String, status: Int? = nil, code: Int? = nil, message: String, moreInfo: String? = nil) {
        self.kind = kind
        self.operation = operation
        self.status = status
        self.code = code
        // Our own configuration messages name paths and what to do, never a caller: a path's
        // digits (a temporary folder's UUID) are not a phone number to hide.
        self.message = kind == .configuration ? message : Self.withoutPhoneNumbers(message)
        self.moreInfo = moreInfo
    }

    /// Worth retrying the same request later (a durable job's backoff): rate limits, Twilio's
    /// own failures and transfers that got no answer.
    public var isRetryable: Bool { kind == .rateLimited || kind == .unavailable || kind == .transport }

    public var description: String {
        var text = kind == .configuration ? "\(operation) failed" : "\(operation) at Twilio failed"
        if let status { text += ": HTTP \(status)" }
        if let code { text += ", code \(code)" }
        if !message.isEmpty { text += ": \(message)" }
        if let moreInfo { text += " (\(moreInfo))" }
        return text
    }

    /// The error for a non-success answer, from Twilio's error JSON when there is one.
    static func answer(status: Int, body: Data, operation: String) -> TwilioError {
        let parsed = try? JSONDecoder().decode(TwilioErrorBody.self, from: body)
        let kind: Kind = switch status {
        case 401, 403: .authentication
        case 404: .notFound
        case 429: .rateLimited
        case 500...599: .unavailable
        case 400...499: .refused
        default: .unexpectedAnswer
        }
        // Only a link to Twilio's own documentation is repeated.
        let moreInfo = parsed?.moreInfo.flatMap { $0.hasPrefix("https://www.twilio.com/") ? $0 : nil }
        return TwilioError(kind, operation: operation, status: status, code: parsed?.code,
                           message: parsed?.message ?? (parsed == nil ? "the answer is not Twilio's error JSON" : ""), moreInfo: moreInfo)
    }

    /// Runs of seven or more digits (with `+`, spaces, dots, dashes or brackets between them) are
    /// what a phone number looks like in Twilio's messages; a SID's hex is not touched because a
    /// run that touches a letter is part of a word.
    static func withoutPhoneNumbers(_ text: String) -> String {
        let characters = Array(text)
        var out = ""
        var index = 0
        while index < characters.count {
            let startsNumber = (characters[index] == "+" || characters[index] == "(" || characters[index].isASCIIDigit)
                && (index == 0 || !(characters[index - 1].isLetter || characters[index - 1].isASCIIDigit))
            if startsNumber {
                var end = index, digits = 0
                while end < characters.count, characters[end].isASCIIDigit || " +-.()".contains(characters[end]) {
                    if characters[end].isASCIIDigit { digits += 1 }
                    end += 1
                }
                let runEnd = end
                // Trailing separators belong to the sentence, not the number.
                while end > index, !characters[end - 1].isASCIIDigit { end -= 1 }
                let touchesWord = end < characters.count && characters[end].isLetter
                if digits >= 7 && !touchesWord {
                    out += "[number]"
                    index = end
                    continue
                }
                // Not a number from here, nor from anywhere later in the run (it has fewer digits
                // and the same end): the run is kept as it is, read once.
                out += String(characters[index..<runEnd])
                index = runEnd
                continue
            }
            out.append(characters[index])
            index += 1
        }
        return out
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
