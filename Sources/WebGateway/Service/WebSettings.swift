import CallTraceHTTP
import CallTraceAPI
public import CallTraceServiceHost
import Foundation

/// The web gateway's own settings (besides every service's: `ServiceConfiguration`); listed in
/// services/web/README.md.
public struct WebSettings: ServiceSettings, Equatable {
    /// Where browsers' requests arrive (from nginx): `host:port` on loopback, or `unix:/path`.
    public var httpListen = "127.0.0.1:\(DefaultPorts.webHTTP)"
    /// The address people open, as nginx serves it (`https://calltrace.example-firm.co.uk`):
    /// share links and e-mailed links are built on it. `http://` only for loopback development.
    public var publicURL = "http://localhost:\(DefaultPorts.webHTTP)"
    /// The proxies (IP addresses) whose `X-Forwarded-For` is believed: nginx's address as this
    /// gateway sees it. Others' header is ignored and the connection's own address is the
    /// client's. Behind a Unix socket the socket's permissions decide who may connect, and the
    /// header is believed.
    public var trustedProxies: [String] = []
    /// The folder holding the web app's Templates/ and Static/; default: beside the executable
    /// (`calltrace_WebGateway.resources`) or `<prefix>/share/calltrace/web` as installed.
    public var assets: String?
    /// How often the firms' webhooks read new call events, in seconds. Default 15.
    public var webhookPollSeconds = 15
    /// Whether a webhook may point at a private, loopback or link-local address (tests; a
    /// receiver inside the firm's own network through a VPN). Default false: refused (SSRF).
    public var webhookAllowPrivateAddresses = false
    /// PEM CA certificates the webhook receivers' HTTPS must chain to; default the system's.
    public var webhookCAFile: String?

    public init() {}

    public static let settings: [Setting<WebSettings>] = [
        .text("http_listen", help: "host:port (loopback) or unix:/path where nginx reaches the pages (default 127.0.0.1:8080).",
              check: { HTTPListenAddress($0) == nil ? "be host:port or unix:/absolute/path" : nil }) { $0.httpListen = $1 },
        .text("public_url", help: "The https:// address people open, as nginx serves it (http://localhost… for development only).",
              check: { PublicURL($0) == nil ? "be an https:// URL (http:// only for localhost), without a path" : nil }) { $0.publicURL = $1 },
        .list("trusted_proxies", help: "IP addresses of the proxies whose X-Forwarded-For is believed (comma-separated; default none).",
              check: { ClientAddress.isIPAddress($0) ? nil : "be an IP address" }) { $0.trustedProxies = $1 },
        .text("assets", help: "Folder of the web app's Templates/ and Static/ (default: beside the executable, or <prefix>/share/calltrace/web).") {
            $0.assets = $1
        },
        .text("webhook_poll_seconds", help: "How often webhooks read new call events, in seconds (default 15).",
              check: { Int($0).map { (1...3600).contains($0) } == true ? nil : "be a whole number of seconds from 1 to 3600" }) {
            $0.webhookPollSeconds = Int($1) ?? 15
        },
        .text("webhook_allow_private_addresses", help: "true to let webhooks reach private, loopback and link-local addresses (default false).",
              check: { ["true", "false"].contains($0) ? nil : "be true or false" }) { $0.webhookAllowPrivateAddresses = $1 == "true" },
        .text("webhook_ca_file", help: "PEM CA certificates webhook receivers' HTTPS must chain to (default: the system's).") {
            $0.webhookCAFile = $1
        },
    ]
}
