import HTTPTypes
import Hummingbird

/// Around every request: who is asking (the client address, the session cookie), failures
/// turned into pages, and the security headers on every answer.
struct PageGuard: RouterMiddleware {
    typealias Context = WebContext
    let seal: SessionSeal
    let trustedProxies: Set<String>
    let failures: Failures

    func handle(_ request: Request, context: WebContext, next: (Request, WebContext) async throws -> Response) async throws -> Response {
        // The JSON API is `APIGuard`'s (bearer tokens only, never the session cookie); the website
        // tag's is `TagGuard`'s (other sites' pages, no session at all).
        guard !request.uri.path.hasPrefix(APIGuard.prefix), !TagGuard.handles(request.uri.path) else { return try await next(request, context) }
        var context = context
        context.clientAddress = ClientAddress.resolve(peer: context.peerAddress,
                                                      forwardedFor: request.headers[values: .xForwardedFor],
                                                      trustedProxies: trustedProxies)
        if let value = request.cookies[Cookies.session]?.value {
            context.session = seal.open(value)
        }
        var response: Response
        do {
            response = try await next(request, context)
        } catch {
            response = failures.response(for: error, request: request, context: context)
        }
        SecurityHeaders.apply(to: &response.headers, cacheable: request.uri.path.hasPrefix("/static/"))
        return response
    }
}

extension HTTPField.Name {
    static let xForwardedFor = HTTPField.Name("X-Forwarded-For")!
}
