import CallTraceKeys
import CallTraceProto

/// The secret of an API token: `ctk_` and 43 base64url characters (256 random bits). The prefix
/// lets secret scanners find a leaked one (`ctk_[A-Za-z0-9_-]{43}`) and tells identity to look it
/// up among API tokens rather than sessions. Stored only as its SHA-256 (`OpaqueToken.storageHash`).
enum ApiTokenSecret {
    static let marker = "ctk_"
    /// How much of a secret is kept and shown to tell tokens apart: the marker and 8 characters
    /// (48 of its 256 bits).
    static let shownLength = marker.count + 8

    static func generate() throws -> String { marker + (try OpaqueToken.generate()) }

    /// Whether `token` is written as an API token (it may still be unknown).
    static func isApiToken(_ token: String) -> Bool { token.hasPrefix(marker) && token.utf8.count > shownLength }

    /// What is kept of `secret` to recognise it: `ctk_` and the next 8 characters.
    static func shownPrefix(of secret: String) -> String { String(secret.prefix(shownLength)) }
}

/// What a user asks for: a token named for its use, scoped to some of their role's permissions,
/// lasting `durationSeconds` (0: the default, 90 days); `heldBy` names the gateway asking to keep
/// it for the firm (a webhook's), nil for a token the person keeps.
struct ApiTokenRequest: Sendable {
    var name: String
    var permissions: [Calltrace_Identity_V1_Permission]
    var durationSeconds: UInt32
    var heldBy: String? = nil
}

/// An API token as its owner and the organisation's admins see it: as stored, its name opened;
/// never its secret.
struct ApiToken: Sendable {
    let record: ApiTokenRecord
    let name: String

    /// Its scopes, in declaration order.
    var permissions: [Calltrace_Identity_V1_Permission] {
        Calltrace_Identity_V1_Permission.allCases.filter { record.permissions.contains($0.rawValue) }
    }
}
