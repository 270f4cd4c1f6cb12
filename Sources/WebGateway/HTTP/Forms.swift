import Foundation
import Hummingbird

/// A submitted form (`application/x-www-form-urlencoded`), after its form token was checked.
struct Form: Sendable {
    private let fields: [String: String]

    init(fields: [String: String]) { self.fields = fields }

    /// The field's value, trimmed of surrounding white space; "" when absent.
    subscript(_ name: String) -> String { (fields[name] ?? "").trimmingCharacters(in: .whitespacesAndNewlines) }
    /// The value exactly as typed (passwords).
    func raw(_ name: String) -> String { fields[name] ?? "" }
    /// What follows `prefix` in the names of the fields that start with it: the ticked boxes of
    /// a list named `number-<value>` (a repeated name keeps only its last value).
    func names(after prefix: String) -> [String] { fields.keys.filter { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) }.sorted() }

    /// `a=1&b=two+words` → fields; the last of a repeated name wins; nil for bytes that are not
    /// a form (invalid percent-escapes or UTF-8).
    static func decode(_ body: String) -> [String: String]? {
        var fields: [String: String] = [:]
        for pair in body.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = unescape(parts[0]), let value = unescape(parts.count > 1 ? parts[1] : "") else { return nil }
            fields[name] = value
        }
        return fields
    }

    /// A value for a query or form: everything but unreserved characters percent-escaped (so a
    /// `+` in a source's name stays a `+`).
    static func escape(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(.init(charactersIn: "-._~"))) ?? ""
    }

    private static func unescape(_ text: Substring) -> String? {
        text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding
    }

    /// Reads the request's form and checks its token: the session's, or for the forms before
    /// sign-in (`beforeSignIn`: signing in, accepting an invitation, resetting a password, which a
    /// browser may open while another session is in it) the one in the pre-session cookie. A
    /// missing or wrong token is refused (403) before anything is done.
    static func read(_ request: Request, context: WebContext, beforeSignIn: Bool = false) async throws -> Form {
        let body = try await request.body.collect(upTo: context.maxUploadSize)
        guard let text = body.getString(at: body.readerIndex, length: body.readableBytes), let fields = decode(text) else {
            throw PageError.badForm
        }
        let expected = beforeSignIn ? request.cookies[Cookies.preSession]?.value : context.session?.csrf
        guard let expected, let given = fields["csrf"], SessionSeal.same(given, expected) else { throw PageError.formExpired }
        return Form(fields: fields)
    }
}

/// What is wrong with a form, in words for the person who filled it in, and the id of the field
/// it is about (the error summary at the form's top links to it).
struct FormProblem: Error, Equatable {
    let text: String
    let field: String

    init(_ text: String, field: String) {
        self.text = text
        self.field = field
    }

    var values: [String: String] { ["text": text, "field": field] }
}

/// The gateway's cookies: all `__Host-` (Secure, path /, no domain: only this host sets or reads
/// them), HttpOnly, SameSite=Lax (a link from an e-mail opens the signed-in page; every change
/// is a POST with a form token as well).
enum Cookies {
    /// The sealed session (`SessionSeal`).
    static let session = "__Host-calltrace-session"
    /// The form token of the sign-in, reset and invitation forms, before there is a session.
    static let preSession = "__Host-calltrace-form"
    /// The firm last signed in to, to fill in the sign-in form (not secret: an organisation id).
    static let firm = "__Host-calltrace-firm"

    static func make(_ name: String, _ value: String, maxAge: Int? = nil) -> Cookie {
        Cookie(name: name, value: value, maxAge: maxAge, path: "/", secure: true, httpOnly: true, sameSite: .lax)
    }

    static func clear(_ name: String) -> Cookie {
        Cookie(name: name, value: "", maxAge: 0, path: "/", secure: true, httpOnly: true, sameSite: .lax)
    }
}

extension Request {
    /// The query's fields as a form sends them (`+` for a space, then percent-escapes), so a GET
    /// form's values arrive as typed; a malformed query counts as empty.
    var query: Form { Form(fields: Form.decode(uri.query ?? "") ?? [:]) }
}
