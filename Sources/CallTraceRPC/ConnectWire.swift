import Foundation

/// The Connect protocol's wire details (https://connectrpc.com/docs/protocol), for the web
/// gateway's `/api/v1/rpc`, which relays the services' methods over HTTP, and for the `calltrace`
/// CLI, which calls it: a unary call is one JSON (or binary protobuf) body each way; a
/// server-streaming call's answer is enveloped messages ended by an end-of-stream message; a
/// failure carries a status code as its snake_case name with a message.
public enum ConnectWire {
    /// Unary bodies.
    public static let jsonType = "application/json"
    public static let protoType = "application/proto"
    /// Streaming bodies (enveloped).
    public static let streamingJSONType = "application/connect+json"
    public static let streamingProtoType = "application/connect+proto"
    /// The header carrying the caller's timeout in milliseconds (at most 10 digits).
    public static let timeoutHeader = "Connect-Timeout-Ms"
    public static let versionHeader = "Connect-Protocol-Version"

    /// An envelope's flags: the end-of-stream message (JSON: the stream's error, if any).
    public static let endStreamFlag: UInt8 = 0x02

    /// A status code's name in Connect (`not_found`), nil for OK.
    public static func name(of code: StatusCode) -> String? {
        switch code {
        case .ok: nil
        case .cancelled: "canceled"
        case .unknown: "unknown"
        case .invalidArgument: "invalid_argument"
        case .deadlineExceeded: "deadline_exceeded"
        case .notFound: "not_found"
        case .alreadyExists: "already_exists"
        case .permissionDenied: "permission_denied"
        case .resourceExhausted: "resource_exhausted"
        case .failedPrecondition: "failed_precondition"
        case .aborted: "aborted"
        case .outOfRange: "out_of_range"
        case .unimplemented: "unimplemented"
        case .internal: "internal"
        case .unavailable: "unavailable"
        case .dataLoss: "data_loss"
        case .unauthenticated: "unauthenticated"
        }
    }

    /// The code a Connect name stands for; unknown names are `unknown`.
    public static func code(named name: String) -> StatusCode {
        StatusCode.allCases.first { self.name(of: $0) == name } ?? .unknown
    }

    /// The HTTP status a unary failure is answered with.
    public static func httpStatus(of code: StatusCode) -> Int {
        switch code {
        case .ok: 200
        case .cancelled: 499
        case .invalidArgument, .failedPrecondition, .outOfRange: 400
        case .deadlineExceeded: 504
        case .notFound: 404
        case .alreadyExists, .aborted: 409
        case .permissionDenied: 403
        case .resourceExhausted: 429
        case .unimplemented: 501
        case .unavailable: 503
        case .unauthenticated: 401
        case .unknown, .internal, .dataLoss: 500
        }
    }

    /// The code an HTTP status means when the body names none (a proxy's answer, say).
    public static func code(forHTTPStatus status: Int) -> StatusCode {
        switch status {
        case 400: .invalidArgument
        case 401: .unauthenticated
        case 403: .permissionDenied
        case 404: .unimplemented
        case 408, 504: .deadlineExceeded
        case 409: .aborted
        case 413, 429: .resourceExhausted
        case 502, 503: .unavailable
        default: .unknown
        }
    }

    /// An error's JSON: `{"code":"not_found","message":"…"}`.
    public static func errorJSON(_ error: RPCError) -> Data {
        let object: [String: String] = ["code": name(of: error.code) ?? "unknown", "message": error.message]
        return (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
    }

    /// The error a failure body describes, or the HTTP status's meaning when it is not one.
    public static func error(fromJSON body: Data, httpStatus: Int) -> RPCError {
        if let object = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any], let name = object["code"] as? String {
            return RPCError(code(named: name), object["message"] as? String ?? "")
        }
        return RPCError(code(forHTTPStatus: httpStatus), "the server answered HTTP \(httpStatus)")
    }

    /// One enveloped message: flags, its length (32-bit big-endian), the message.
    public static func envelope(_ message: Data, flags: UInt8 = 0) -> Data {
        var out = Data(capacity: 5 + message.count)
        out.append(flags)
        withUnsafeBytes(of: UInt32(message.count).bigEndian) { out.append(contentsOf: $0) }
        out.append(message)
        return out
    }

    /// The end-of-stream message: `{}` after success, `{"error":{…}}` after a failure.
    public static func endOfStream(_ error: RPCError?) -> Data {
        let body = error.map { Data(#"{"error":"#.utf8) + errorJSON($0) + Data("}".utf8) } ?? Data("{}".utf8)
        return envelope(body, flags: endStreamFlag)
    }

    /// The error an end-of-stream message carries; nil when it says the stream succeeded.
    public static func error(fromEndOfStream message: Data) -> RPCError? {
        let object = (try? JSONSerialization.jsonObject(with: message)) as? [String: Any]
        guard let error = object?["error"] as? [String: Any] else { return nil }
        return RPCError(code(named: error["code"] as? String ?? ""), error["message"] as? String ?? "")
    }

    /// Takes envelopes off the front of a growing buffer, refusing one larger than `limit`.
    public struct EnvelopeReader: Sendable {
        private var buffer = Data()
        /// Where the next envelope starts in `buffer` (what is before it is read).
        private var start = 0
        let limit: Int

        public init(limit: Int) { self.limit = limit }

        /// True when every byte appended has been read as envelopes.
        public var isEmpty: Bool { start == buffer.count }

        public mutating func append(_ data: Data) {
            if start > 0 && start >= buffer.count / 2 {  // drop what is read, now and then, not on every envelope
                buffer.removeSubrange(buffer.startIndex..<(buffer.startIndex + start))
                start = 0
            }
            buffer.append(data)
        }

        /// The next whole envelope (its flags and message), nil until one has arrived.
        public mutating func next() throws -> (flags: UInt8, message: Data)? {
            guard buffer.count - start >= 5 else { return nil }
            let head = buffer.startIndex + start
            let length = buffer[(head + 1)..<(head + 5)].reduce(0) { $0 << 8 | Int($1) }
            guard length <= limit else { throw RPCError(.resourceExhausted, "a streamed message is larger than \(limit) bytes") }
            guard buffer.count - start >= 5 + length else { return nil }
            let flags = buffer[head]
            let message = Data(buffer[(head + 5)..<(head + 5 + length)])
            start += 5 + length
            return (flags, message)
        }
    }
}
