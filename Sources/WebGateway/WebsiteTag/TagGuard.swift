import CallTraceRPC
import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// What a website tag request can fail with before transcript answers.
struct TagFailure: Error, Sendable {
    let status: HTTPResponse.Status
    /// Stable, for the tag and a developer's console: `invalid_request`, `not_found`, …
    let code: String
    let message: String
    /// 429: the seconds until the window ends.
    var retryAfter: Int?
    /// The page's origin, when transcript accepted it: the answer may be read there.
    var allowedOrigin: String?

    static func invalid(_ message: String) -> TagFailure { TagFailure(status: .badRequest, code: "invalid_request", message: message) }

    /// An unknown key and a foreign origin alike: the page cannot read it, and it says neither.
    static let notFound = TagFailure(status: .notFound, code: "not_found", message: "No website with this key runs on this origin.")

    static func tooMany(retryAfter seconds: Int) -> TagFailure {
        TagFailure(status: .tooManyRequests, code: "too_many_requests", message: "Too many requests: try again in \(seconds) seconds.",
                   retryAfter: seconds)
    }
}

/// Around the website tag's requests (`/dni.js`, `/dni/v1/…`), which other sites' pages make: the
/// client address as for the pages, no session and no form token (there is nothing of a person
/// here), failures as JSON, and headers for being embedded elsewhere instead of the app's own.
struct TagGuard: RouterMiddleware {
    typealias Context = WebContext
    static let script = "/dni.js"
    static let prefix = "/dni/"
    let trustedProxies: Set<String>
    let logger: Logger

    static func handles(_ path: String) -> Bool { path == script || path.hasPrefix(prefix) }

    func handle(_ request: Request, context: WebContext, next: (Request, WebContext) async throws -> Response) async throws -> Response {
        guard Self.handles(request.uri.path) else { return try await next(request, context) }
        var context = context
        context.clientAddress = ClientAddress.resolve(peer: context.peerAddress, forwardedFor: request.headers[values: .xForwardedFor],
                                                      trustedProxies: trustedProxies)
        var response: Response
        do {
            response = try await next(request, context)
        } catch {
            response = failure(error, request: request, context: context).response
        }
        SecurityHeaders.applyEmbedded(to: &response.headers, cacheable: request.uri.path == Self.script)
        return response
    }

    /// The failure's JSON answer; transcript's refusals by their codes, anything unexpected a 500
    /// with a reference that the log carries beside the error (never a body, a visit id or a number).
    private func failure(_ error: any Error, request: Request, context: WebContext) -> TagFailure {
        switch error {
        case let failure as TagFailure:
            return failure
        case let rpc as RPCError:
            switch rpc.code {
            case .notFound: return .notFound
            // Transcript's words name its fields as the proto does (landing_path for landingPath).
            case .invalidArgument, .failedPrecondition, .outOfRange: return .invalid(rpc.message.hasSuffix(".") ? rpc.message : rpc.message + ".")
            case .resourceExhausted: return .tooMany(retryAfter: 60)
            case .unavailable, .deadlineExceeded: return referenced(error, request, context, .serviceUnavailable, "unavailable")
            default: return referenced(error, request, context, .internalServerError, "internal")
            }
        case let http as HTTPError where http.status == .notFound:
            return TagFailure(status: .notFound, code: "not_found", message: "There is nothing here.")
        case let http as HTTPError where http.status.code < 500:
            return TagFailure(status: http.status, code: "invalid_request", message: "That request could not be handled.")
        default:
            return referenced(error, request, context, .internalServerError, "internal")
        }
    }

    private func referenced(_ error: any Error, _ request: Request, _ context: WebContext, _ status: HTTPResponse.Status, _ code: String) -> TagFailure {
        let reference = ErrorReference.make()
        let described = (error as? RPCError).map { "\($0.code)" } ?? String(describing: type(of: error))
        logger.error("website tag request failed", metadata: ["reference": "\(reference)", "route": "\(context.endpointPath ?? "unmatched")",
                                                               "method": "\(request.method)", "error": "\(described)"])
        return TagFailure(status: status, code: code, message: "CallTrace could not answer just now (reference \(reference)).")
    }
}

extension TagFailure {
    var response: Response {
        var response = TagAnswer.json(TagAnswer.Failure(error: code, message: message), status: status, origin: allowedOrigin)
        if let retryAfter { response.headers[.retryAfter] = "\(retryAfter)" }
        return response
    }
}

/// The JSON answers of `/dni/v1/…`.
enum TagAnswer {
    struct Failure: Encodable {
        let error: String
        let message: String
    }

    /// `origin`: the page's origin when transcript accepted it (then, and only then, the page may
    /// read the answer: CORS for exactly that origin, without credentials).
    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok, origin: String?) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let body = (try? encoder.encode(value)) ?? Data("{}".utf8)
        var headers: HTTPFields = [.contentType: "application/json", .cacheControl: "no-store", .vary: "Origin"]
        if let origin { headers[.accessControlAllowOrigin] = origin }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(data: body)))
    }
}
