import Foundation
import Hummingbird

extension Form {
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
