import CallTraceKeys
import CallTraceRPC
import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// What a page can fail with before it reaches a service.
enum PageError: Error, Equatable {
    /// The page needs a signed-in person.
    case signInNeeded
    /// The form's token is missing or not this session's: a page left open too long, or a
    /// request forged by another site.
    case formExpired
    /// The body is not a form.
    case badForm
    /// A form field the person must correct (shown to them as is).
    case invalid(String)
    /// The thing asked for is not there, or not the person's to see (one answer for both).
    case notFound
}

/// Turns a failure into the page a person sees: a refusal, not-found, a form to correct, or a
/// plain page with a reference id that the log carries beside the real error. Never a stack,
/// a token or a phone number: the services' messages are written to be shown (`RPCError`), and
/// nothing else of an error reaches the page.
struct Failures: Sendable {
    let renderer: Renderer
    let logger: Logger

    func response(for error: any Error, request: Request, context: WebContext) -> Response {
        let signedIn = context.session != nil
        switch error {
        case PageError.signInNeeded:
            return Self.toSignIn(request, reason: nil)
        case let rpc as RPCError where rpc.code == .unauthenticated && signedIn:
            // The session ended in identity (timeout, sign-out elsewhere, suspension).
            var response = Self.toSignIn(request, reason: "ended")
            response.setCookie(Cookies.clear(Cookies.session))
            return response
        case PageError.formExpired:
            return page("This form has expired", "Go back, reload the page and try again.", .forbidden, signedIn)
        case PageError.badForm:
            return page("Something was wrong with that form", "Go back and try again.", .badRequest, signedIn)
        case PageError.invalid(let text):
            return page("Please check what you entered", text, .badRequest, signedIn)
        case PageError.notFound:
            return notFound(signedIn)
        case let rpc as RPCError:
            switch rpc.code {
            case .notFound: return notFound(signedIn)
            case .permissionDenied where rpc.message.contains("two-factor"):
                return page("Set up two-factor authentication first",
                            "Your firm requires two-factor authentication. Set it up on your account page, then try again.",
                            .forbidden, signedIn, link: ("/account", "Your account"))
            case .permissionDenied, .unauthenticated:
                return page("You do not have access to this",
                            "Your role does not allow it, or your firm limits where it can be used from. Ask your firm's CallTrace admin if you need it.",
                            .forbidden, signedIn)
            case .invalidArgument, .failedPrecondition, .alreadyExists, .outOfRange:
                return page("That could not be done", Self.sentence(rpc.message), .badRequest, signedIn)
            case .resourceExhausted:
                return page("Too many attempts", "Wait a few minutes, then try again.", .tooManyRequests, signedIn)
            case .unavailable, .deadlineExceeded:
                return referenced(error, request, context, status: .serviceUnavailable,
                                  text: "Part of CallTrace is not answering just now. Try again in a minute.")
            default:
                return referenced(error, request, context, status: .internalServerError, text: "Something went wrong on our side.")
            }
        case let http as HTTPError where http.status == .notFound:
            return notFound(signedIn)
        case let http as HTTPError where http.status.code < 500:
            return page(http.status.reasonPhrase, "That request could not be handled.", http.status, signedIn)
        default:
            return referenced(error, request, context, status: .internalServerError, text: "Something went wrong on our side.")
        }
    }

    /// 303 to the sign-in page, coming back to this page (GET) afterwards.
    static func toSignIn(_ request: Request, reason: String?) -> Response {
        var query: [String] = []
        if request.method == .get, let path = request.uri.path.removingPercentEncoding, SignInPages.isSafeReturn(path) {
            query.append("next=" + (path.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(.init(charactersIn: "/-_"))) ?? "/"))
        }
        if let reason { query.append("reason=\(reason)") }
        return .redirect(to: "/sign-in" + (query.isEmpty ? "" : "?" + query.joined(separator: "&")), type: .found)
    }

    private func notFound(_ signedIn: Bool) -> Response {
        page("Not found", "There is nothing here, or it is not yours to see.", .notFound, signedIn)
    }

    private func page(_ title: String, _ text: String, _ status: HTTPResponse.Status, _ signedIn: Bool,
                      link: (String, String)? = nil) -> Response {
        renderer.message(title: title, text: text, link: link.map { (href: $0.0, label: $0.1) }
                         ?? (signedIn ? (href: "/calls", label: "Back to calls") : (href: "/sign-in", label: "Sign in")),
                         chrome: nil, status: status)
    }

    /// A plain page with a reference id, and the error in the log under the same id (with the
    /// route's pattern, never its path: paths can hold share-link tokens).
    private func referenced(_ error: any Error, _ request: Request, _ context: WebContext, status: HTTPResponse.Status, text: String) -> Response {
        let reference = ErrorReference.make()
        let described = (error as? RPCError).map(\.description) ?? String(describing: type(of: error))
        logger.error("page failed", metadata: ["reference": "\(reference)", "route": "\(context.endpointPath ?? "unmatched")",
                                                "method": "\(request.method)", "error": "\(described)"])
        return page(status == .serviceUnavailable ? "Try again shortly" : "Something went wrong",
                    "\(text) If it goes on, give your CallTrace admin this reference: \(reference).", status, context.session != nil)
    }

    /// A service's message as a sentence: capitalised, with a full stop.
    static func sentence(_ message: String) -> String {
        guard let first = message.first else { return "" }
        let text = first.uppercased() + message.dropFirst()
        return text.hasSuffix(".") ? text : text + "."
    }
}

/// The id a failure's answer and its log line share, so a person can quote it and an operator find it.
enum ErrorReference {
    static func make() -> String {
        (try? SecretBytes.random(6).map { String(format: "%02x", $0) }.joined()) ?? "unknown"
    }
}
