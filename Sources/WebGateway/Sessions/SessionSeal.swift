import CallTraceKeys
import Foundation

/// A signed-in person's session as the browser holds it: identity's session token and who it
/// belongs to, sealed (AES-256-GCM through OpenSSL) under a key of the gateway's own key store,
/// so the cookie is opaque to the browser and to anyone who copies it out of a log; a cookie
/// altered by one bit opens to nothing. The session's life is identity's: the idle and absolute
/// timeouts of the firm's security policy end the token, and sign-out ends it in identity.
struct WebSession: Codable, Sendable, Equatable {
    /// Identity's bearer token.
    let token: String
    let orgID: String
    let userID: String
    /// The form token every state-changing request of this session must carry.
    let csrf: String
    /// When the person signed in (Unix ms).
    let signedInAt: Int64
}

/// Seals and opens the cookie values the gateway sets: the session, and the token that protects
/// the sign-in forms before there is a session.
struct SessionSeal: Sendable {
    private let keys: KeyRing
    private let key: ObjectKey
    /// The gateway's own secrets live under this pseudo-organisation of its key store.
    static let keyOwner = "calltrace-web"

    init(keys: KeyRing) throws {
        self.keys = keys
        try keys.createKeys(for: Self.keyOwner)
        key = try keys.objectKey(org: Self.keyOwner, object: "session-cookies", creating: true)
    }

    func seal(_ session: WebSession) throws -> String {
        let sealed = try keys.seal(try JSONEncoder().encode(session), with: key, table: "cookie", column: "session", row: "v1")
        return Self.base64URL(sealed)
    }

    /// The session in a cookie value, or nil for anything that was not sealed by this gateway.
    func open(_ value: String) -> WebSession? {
        guard value.count < 4096, let sealed = Self.data(base64URL: value),
              let plain = try? keys.open(sealed, with: key, table: "cookie", column: "session", row: "v1") else { return nil }
        return try? JSONDecoder().decode(WebSession.self, from: plain)
    }

    /// A new random token (256 bits, base64url).
    static func randomToken() throws -> String {
        base64URL(Data(try SecretBytes.random(32)))
    }

    static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func data(base64URL text: String) -> Data? {
        guard text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else { return nil }
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        return Data(base64Encoded: base64)
    }

    /// Constant-time comparison of two form tokens.
    static func same(_ a: String, _ b: String) -> Bool {
        SecretBytes.equal(Array(a.utf8), Array(b.utf8))
    }
}
