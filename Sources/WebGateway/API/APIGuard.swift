import CallTraceRPC
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import OpenAPIRuntime

/// Who an `/api/v1` request is made for: the person's API token (`Authorization: Bearer ctk_…`),
/// their firm (`CallTrace-Firm`), and their address as `ClientAddress` resolves it. Set by
/// `APIGuard` for the request's task; the handlers pass it on to the services (`caller`).
struct APICaller: Sendable {
    let token: String
    let org: String
    let clientAddress: String?

    @TaskLocal static var current: APICaller?

    /// The request's caller: always there inside a handler (`APIGuard` answers 401 before).
    static func required() throws -> APICaller {
        guard let current else { throw APIProblem.unauthenticated("Send your API token: Authorization: Bearer ctk_….") }
        return current
    }

    var caller: Caller { Caller(token: token, clientAddress: clientAddress) }
    var options: CallOptions { caller.options }
}

/// Around every `/api/v1` request: the bearer token and the firm read (never a cookie, so a page
/// another site opens in a signed-in browser cannot act here), every failure an RFC 9457
/// problem, and the security headers with `Cache-Control: no-store` on every answer.
struct APIGuard: RouterMiddleware {
    typealias Context = WebContext
    static let prefix = "/api/"
    let trustedProxies: Set<String>
    let logger: Logger

    func handle(_ request: Request, context: WebContext, next: (Request, WebContext) async throws -> Response) async throws -> Response {
        guard request.uri.path.hasPrefix(Self.prefix) else { return try await next(request, context) }
        // The relayed methods name the firm in their messages, and answer failures as Connect does.
        let relayed = request.uri.path.hasPrefix(RPCRelay.prefix)
        var response: Response
        do {
            let caller = try Self.caller(request, clientAddress: ClientAddress.resolve(
                peer: context.peerAddress, forwardedFor: request.headers[values: .xForwardedFor], trustedProxies: trustedProxies),
                                         firmHeader: !relayed)
            response = try await APICaller.$current.withValue(caller) { try await next(request, context) }
        } catch {
            if relayed {
                // The method's name, from the path (never a body or a header).
                let route = String(request.uri.path.dropFirst(RPCRelay.prefix.count).prefix(120))
                response = RPCRelay.failure(error, route: route, logger: logger)
            } else {
                response = problem(for: error, request: request, context: context).response
            }
        }
        SecurityHeaders.apply(to: &response.headers, cacheable: false)
        return response
    }

    /// - Parameter firmHeader: whether `CallTrace-Firm` is required (the relayed methods name the
    ///   firm in their messages instead; `org` is then what the header says, or "").
    static func caller(_ request: Request, clientAddress: String?, firmHeader: Bool = true) throws -> APICaller {
        guard let authorization = request.headers[.authorization] else {
            throw APIProblem.unauthenticated("Send your API token: Authorization: Bearer ctk_….")
        }
        let parts = authorization.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer", parts[1].hasPrefix("ctk_"), parts[1].count <= 100 else {
            throw APIProblem.unauthenticated("Only an API token (ctk_…) opens the API, as Authorization: Bearer ctk_….")
        }
        let org = request.headers[.callTraceFirm]
        guard let org, (1...100).contains(org.count) else {
            if !firmHeader && org == nil { return APICaller(token: String(parts[1]), org: "", clientAddress: clientAddress) }
            throw APIProblem.unauthenticated("Send your firm ID in the CallTrace-Firm header.")
        }
        return APICaller(token: String(parts[1]), org: org, clientAddress: clientAddress)
    }

    /// The problem a failure is: the services' refusals by their codes, the generated server's
    /// refusals of a malformed request by their status, anything else a 500 with a reference id
    /// that the log carries beside the error (never a token, a path or a phone number).
    func problem(for error: any Error, request: Request, context: WebContext) -> APIProblem {
        var cause = error
        var status: HTTPResponse.Status?
        if let server = error as? ServerError {
            cause = server.underlyingError
            status = server.httpStatus
        }
        switch cause {
        case let problem as APIProblem:
            return problem
        case let rpc as RPCError:
            switch rpc.code {
            case .unauthenticated:
                return .unauthenticated("The API token is unknown, expired or revoked.", invalidToken: true)
            case .permissionDenied:
                // The services' own sentence names the rule (a role, a scope, the address list).
                return APIProblem(.forbidden, "forbidden", "Not allowed", Failures.sentence(rpc.message))
            case .notFound:
                return .notFound
            case .invalidArgument, .failedPrecondition, .outOfRange:
                return .invalid(Failures.sentence(rpc.message))
            case .alreadyExists:
                return APIProblem(.conflict, "conflict", "Already exists", Failures.sentence(rpc.message))
            case .resourceExhausted:
                return APIProblem(.tooManyRequests, "too-many-requests", "Too many requests", "Wait a few minutes, then try again.")
            case .unavailable, .deadlineExceeded:
                return referenced(error, request, context, .serviceUnavailable, "unavailable", "Part of CallTrace is not answering just now. Try again in a minute.")
            default:
                return referenced(error, request, context, .internalServerError, "internal", "Something went wrong on our side.")
            }
        case is DecodingError:
            return .invalid("The body is not the JSON this operation takes (see openapi.yaml).")
        case let http as HTTPError where http.status == .notFound:
            return .notFound
        case let http as HTTPError where http.status.code < 500:
            return APIProblem(http.status, "invalid-request", http.status.reasonPhrase, "That request could not be handled.")
        default:
            if let status, status == .notFound { return .notFound }
            if let status, (400..<500).contains(status.code) {
                return APIProblem(status, "invalid-request", status.reasonPhrase, "The request is not one this operation takes (see openapi.yaml).")
            }
            return referenced(error, request, context, .internalServerError, "internal", "Something went wrong on our side.")
        }
    }

    private func referenced(_ error: any Error, _ request: Request, _ context: WebContext, _ status: HTTPResponse.Status,
                            _ name: String, _ text: String) -> APIProblem {
        let reference = ErrorReference.make()
        let cause = (error as? ServerError)?.underlyingError ?? error
        let described = (cause as? RPCError).map(\.description) ?? String(describing: type(of: cause))
        logger.error("api request failed", metadata: ["reference": "\(reference)", "route": "\(context.endpointPath ?? "unmatched")",
                                                       "method": "\(request.method)", "error": "\(described)"])
        var problem = APIProblem(status, name, status == .serviceUnavailable ? "Try again shortly" : "Server error", text)
        problem.reference = reference
        return problem
    }
}

/// An RFC 9457 problem: `application/problem+json` with a stable `type` (`urn:calltrace:problem:<name>`).
struct APIProblem: Error, Encodable, Sendable {
    let type: String
    let title: String
    let status: Int
    let detail: String
    var reference: String?
    /// 401 only: what `WWW-Authenticate` says.
    var challenge: String?

    private enum CodingKeys: String, CodingKey { case type, title, status, detail, reference }

    init(_ status: HTTPResponse.Status, _ name: String, _ title: String, _ detail: String) {
        type = "urn:calltrace:problem:" + name
        self.title = title
        self.status = status.code
        self.detail = detail
    }

    static func unauthenticated(_ detail: String, invalidToken: Bool = false) -> APIProblem {
        var problem = APIProblem(.unauthorized, "unauthenticated", "API token needed", detail)
        problem.challenge = invalidToken ? #"Bearer realm="calltrace", error="invalid_token""# : #"Bearer realm="calltrace""#
        return problem
    }

    static let notFound = APIProblem(.notFound, "not-found", "Not found", "There is nothing here, or it is not yours to see.")

    static func invalid(_ detail: String) -> APIProblem { APIProblem(.badRequest, "invalid-request", "Invalid request", detail) }

    var response: Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let body = (try? encoder.encode(self)) ?? Data()
        var headers: HTTPFields = [.contentType: "application/problem+json"]
        if let challenge { headers[.wwwAuthenticate] = challenge }
        return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(data: body)))
    }
}

extension HTTPField.Name {
    static let callTraceFirm = HTTPField.Name("CallTrace-Firm")!
}
