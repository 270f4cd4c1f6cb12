import CallTraceAPI
import CallTraceHTTP
public import CallTraceServiceHost
import Foundation
import Twilio

/// The telephony gateway's own settings (besides every service's: `ServiceConfiguration`);
/// listed in services/telephony/README.md.
public struct TelephonySettings: ServiceSettings, Equatable {
    /// Where Twilio's webhooks arrive (from nginx): `host:port` on loopback, or `unix:/path`.
    public var httpListen = "127.0.0.1:\(DefaultPorts.telephonyHTTP)"
    /// The address Twilio is given for the webhooks, as nginx serves it
    /// (`https://hooks.calltrace.example`): the signatures are over it, so it must be exactly what
    /// Twilio requests. `http://` only for loopback development.
    public var publicURL = "http://localhost:\(DefaultPorts.telephonyHTTP)"
    /// The Twilio account (`AC…`) whose numbers this gateway serves; webhooks naming another are refused.
    public var twilioAccountSID = ""
    /// A file (0600) holding `<API key SID>:<secret>` for Twilio's REST API.
    public var twilioAPIKeyFile = ""
    /// A file (0600) holding the account's auth token, which signs Twilio's webhooks.
    public var twilioAuthTokenFile = ""
    /// Twilio's REST API. Default `https://api.twilio.com`.
    public var twilioAPIURL = "https://api.twilio.com"
    /// PEM CA certificates Twilio's HTTPS must chain to; default the system's (tests: the fake's CA).
    public var twilioCAFile: String?
    /// The voice the gateway's spoken words use (Twilio `<Say voice>`). Default `Polly.Amy` (British English).
    public var voice = "Polly.Amy"
    /// The regulatory bundle (`BU…`) numbers are bought under when a purchase names none.
    public var twilioBundleSID: String?
    /// The address (`AD…`) numbers are bought with when a purchase names none.
    public var twilioAddressSID: String?

    public init() {}

    public static let settings: [Setting<TelephonySettings>] = [
        .text("http_listen", help: "host:port (loopback) or unix:/path where nginx hands on Twilio's webhooks (default 127.0.0.1:8081).",
              check: { HTTPListenAddress($0) == nil ? "be host:port or unix:/absolute/path" : nil }) { $0.httpListen = $1 },
        .text("public_url", help: "The https:// address Twilio is given for the webhooks, exactly as nginx serves it (signatures cover it).",
              check: { PublicURL($0) == nil ? "be an https:// URL (http:// only for localhost), without a path" : nil }) { $0.publicURL = $1 },
        .text("twilio_account_sid", help: "The Twilio account (AC and 32 hex digits) whose numbers and webhooks this gateway serves.",
              check: { TwilioSID.isValid($0, prefix: "AC") ? nil : "be AC and 32 lower-case hex digits" }) { $0.twilioAccountSID = $1 },
        .text("twilio_api_key_file", help: "File (mode 0600) holding <API key SID>:<secret> for Twilio's REST API.") { $0.twilioAPIKeyFile = $1 },
        .text("twilio_auth_token_file", help: "File (mode 0600) holding the account's auth token, which signs Twilio's webhooks.") {
            $0.twilioAuthTokenFile = $1
        },
        .httpsURL("twilio_api_url", help: "Twilio's REST API (default https://api.twilio.com).") { $0.twilioAPIURL = $1 },
        .text("twilio_ca_file", help: "PEM CA certificates Twilio's HTTPS must chain to (default: the system's).") { $0.twilioCAFile = $1 },
        .text("voice", help: "The voice of the gateway's spoken words, as Twilio names it (default Polly.Amy, British English).",
              check: { $0.isEmpty || $0.count > 64 || $0.contains(where: { !$0.isLetter && !$0.isNumber && $0 != "." && $0 != "-" && $0 != "_" })
                  ? "be a Twilio voice name such as Polly.Amy" : nil }) { $0.voice = $1 },
        .text("twilio_bundle_sid", help: "The regulatory bundle (BU…) UK numbers are bought under when a purchase names none.",
              check: { TwilioSID.isValid($0, prefix: "BU") ? nil : "be BU and 32 lower-case hex digits" }) { $0.twilioBundleSID = $1 },
        .text("twilio_address_sid", help: "The address (AD…) UK numbers are bought with when a purchase names none.",
              check: { TwilioSID.isValid($0, prefix: "AD") ? nil : "be AD and 32 lower-case hex digits" }) { $0.twilioAddressSID = $1 },
    ]

    public func validate() throws {
        if twilioAccountSID.isEmpty { throw ConfigurationError("twilio_account_sid is not set: the gateway serves one Twilio account's numbers") }
        if twilioAPIKeyFile.isEmpty { throw ConfigurationError("twilio_api_key_file is not set: a 0600 file holding <API key SID>:<secret>") }
        if twilioAuthTokenFile.isEmpty { throw ConfigurationError("twilio_auth_token_file is not set: a 0600 file holding the account's auth token") }
    }
}
