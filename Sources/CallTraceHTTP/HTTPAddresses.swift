import Foundation

/// Where the HTTP listener binds.
public enum HTTPListenAddress: Equatable, Sendable {
    case tcp(host: String, port: Int)
    case unix(path: String)

    public init?(_ text: String) {
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst(5))
            guard path.hasPrefix("/"), path.count > 1 else { return nil }
            self = .unix(path: path)
            return
        }
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { return nil }
        self = .tcp(host: host, port: port)
    }
}

/// The public address, without a trailing slash: `https://host[:port]`, or `http://localhost…`
/// and `http://127.0.0.1…` for development (browsers treat loopback as a secure context, so the
/// `__Host-` cookies still hold).
public struct PublicURL: Equatable, Sendable {
    public let base: String

    public init?(_ text: String) {
        let trimmed = text.hasSuffix("/") ? String(text.dropLast()) : text
        guard let url = URL(string: trimmed), let host = url.host, url.path.isEmpty, url.query == nil else { return nil }
        switch url.scheme {
        case "https": break
        case "http" where ["localhost", "127.0.0.1", "::1"].contains(host): break
        default: return nil
        }
        base = trimmed
    }
}
