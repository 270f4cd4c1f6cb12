import CallTraceRPC
import Foundation

/// A service's own settings, declared by the service beside its code (`MediaSettings` in
/// MediaDomain, …): the host knows none of them. Each is one `Setting` in `settings` — its file
/// key, from which its `CALLTRACE_*` variable and `--flag` follow — and the host reads every
/// source (file, environment, flags) for the service's table as it does for its own settings.
/// A setting of one service is one entry in that service's table, its field, and a line in its
/// README.
public protocol ServiceSettings: Sendable {
    /// Every default.
    init()
    /// The settings an operator can set, in the order `--help` lists them.
    static var settings: [Setting<Self>] { get }
    /// Checks the settings against each other, once every source is applied (a setting that needs
    /// another). Each setting's own value is checked as it is set.
    func validate() throws
    /// In-process tests only: the same code at a lower work factor (identity's scrypt), so the
    /// suite stays fast; no deployment calls it. Default: nothing to lower.
    mutating func lowerCostsForTests()
}

extension ServiceSettings {
    public func validate() throws {}
    public mutating func lowerCostsForTests() {}

    /// Sets `key` from text; false when this service has no such setting.
    mutating func set(_ key: String, _ value: String) throws -> Bool {
        guard let setting = Self.settings.first(where: { $0.key == key }) else { return false }
        try setting.apply(&self, value)
        return true
    }

    /// Whether `key` names one of this service's settings (a list, when `list`).
    static func knows(_ key: String) -> Setting<Self>? { settings.first { $0.key == key } }
}

/// A service without settings of its own.
public struct NoSettings: ServiceSettings {
    public init() {}
    public static var settings: [Setting<NoSettings>] { [] }
}

/// One setting of a service: its file key (`blob_store`), from which its environment variable
/// (`CALLTRACE_BLOB_STORE`) and flag (`--blob-store`) follow, so the three never drift apart.
/// The value arrives as text (a file's list as comma-separated names) and is checked as it is
/// set, with a message naming the setting, the value and what is allowed.
public struct Setting<Owner: Sendable>: Sendable {
    /// The config file's key.
    public let key: String
    /// One line for `--help` and the README, starting with what it is.
    public let help: String
    /// Whether a config file gives it as a list of names (else as a string).
    public let isList: Bool
    let apply: @Sendable (inout Owner, String) throws -> Void

    /// `CALLTRACE_<KEY>`.
    public var environmentVariable: String { "CALLTRACE_" + key.uppercased() }
    /// `--<key with dashes>`.
    public var flag: String { "--" + key.replacingOccurrences(of: "_", with: "-") }

    /// A string (a path, a name), checked by `check` when given: it returns what the value must
    /// do (`"be text or json"`), or nil when the value will do.
    public static func text(_ key: String, help: String, check: (@Sendable (String) -> String?)? = nil,
                            _ assign: @escaping @Sendable (inout Owner, String) -> Void) -> Setting {
        Setting(key: key, help: help, isList: false) { owner, value in
            if let allowed = check?(value) { throw ConfigurationError("\(key) must \(allowed), not \(value)") }
            assign(&owner, value)
        }
    }

    /// An `https://` URL with a host.
    public static func httpsURL(_ key: String, help: String, _ assign: @escaping @Sendable (inout Owner, String) -> Void) -> Setting {
        text(key, help: help, check: { $0.hasPrefix("https://") && URL(string: $0)?.host != nil ? nil : "be an https:// URL" }, assign)
    }

    /// A list of words (addresses, say), each checked by `check`; comma-separated as text, a list
    /// in a file.
    public static func list(_ key: String, help: String, check: @escaping @Sendable (String) -> String?,
                            _ assign: @escaping @Sendable (inout Owner, [String]) -> Void) -> Setting {
        Setting(key: key, help: help, isList: true) { owner, value in
            let items = value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            if let bad = items.first(where: { check($0) != nil }), let allowed = check(bad) {
                throw ConfigurationError("each of \(key) must \(allowed), not \(bad)")
            }
            assign(&owner, items)
        }
    }

    /// Names of peers of one kind (gateways, operators), as in `spiffe://<domain>/<kind>/<name>`;
    /// comma-separated as text, a list in a file.
    public static func names(_ key: String, of kind: PeerIdentity.Kind, help: String,
                             _ assign: @escaping @Sendable (inout Owner, [String]) -> Void) -> Setting {
        Setting(key: key, help: help, isList: true) { owner, value in
            let names = value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            guard names.allSatisfy({ PeerIdentity(uri: "spiffe://x/\(kind.rawValue)/\($0)") != nil }) else {
                throw ConfigurationError("\(key) must name \(kind.rawValue)s (a-z 0-9 - . _), not \(value)")
            }
            assign(&owner, names)
        }
    }
}
