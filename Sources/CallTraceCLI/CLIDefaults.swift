import ArgumentParser
import Foundation

/// What a person would otherwise type on every command — the firm's web address and its CA
/// file, the organisation; for operators the certificates' folder, the deployment file, the
/// certificate to present — from the environment (`CALLTRACE_URL`, `CALLTRACE_CA_FILE`,
/// `CALLTRACE_ORG`, `CALLTRACE_PKI`, `CALLTRACE_DEPLOYMENT`, `CALLTRACE_AS`), else from one small
/// JSON file, `$CALLTRACE_CONFIG` or `~/.config/calltrace/config.json`. A firm's staff:
///
/// ```json
/// { "url": "https://calltrace.firm.example", "org": "org_…" }
/// ```
/// An operator:
///
/// ```json
/// { "pki": "/root/calltrace-pki", "deployment": "/etc/calltrace/deployment.json", "as": "operator-admin" }
/// ```
/// A flag on the command line wins over both.
package enum CLIDefaults {
    static let keys = ["url", "ca_file", "pki", "org", "deployment", "as"]

    static var path: String {
        let environment = ProcessInfo.processInfo.environment
        if let path = environment["CALLTRACE_CONFIG"] { return path }
        return (environment["HOME"] ?? NSHomeDirectory()) + "/.config/calltrace/config.json"
    }

    /// The file's values; a file that is there but unreadable, not a JSON object of strings, or
    /// with an unknown key is an error named when a command needs it.
    static let file: Result<[String: String], ValidationError> = {
        let path = Self.path
        guard FileManager.default.fileExists(atPath: path) else { return .success([:]) }
        guard let data = FileManager.default.contents(atPath: path),
              let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
              let values = object as? [String: String] else {
            return .failure(ValidationError("\(path) must be a JSON object of strings (keys: \(keys.joined(separator: ", ")))"))
        }
        if let unknown = values.keys.filter({ !keys.contains($0) }).sorted().first {
            return .failure(ValidationError("\(path): unknown key \"\(unknown)\" (keys: \(keys.joined(separator: ", ")))"))
        }
        return .success(values)
    }()

    /// `key`'s value from the environment, else the file; nil when neither has one.
    package static func value(_ key: String) -> String? {
        let variable = "CALLTRACE_" + key.uppercased()
        if let value = ProcessInfo.processInfo.environment[variable], !value.isEmpty { return value }
        return (try? file.get())?[key]
    }

    /// `flag` when given, else the environment's or the file's `key`, else a clear error.
    package static func required(_ flag: String?, _ key: String, option: String) throws -> String {
        if let flag { return flag }
        if case .failure(let error) = file { throw error }
        guard let value = value(key) else {
            throw ValidationError("give \(option), or set CALLTRACE_\(key.uppercased()), or \"\(key)\" in \(path)")
        }
        return value
    }

    /// The organisation a command names when --org is not given ("" when none is configured:
    /// the service then refuses it, and the CLI says where to set it).
    package static var org: String { value("org") ?? "" }
}
