public import CallTraceServiceHost

/// Transcript's own settings (besides every service's: `ServiceConfiguration`); listed in
/// services/transcript/README.md.
public struct TranscriptSettings: ServiceSettings, Equatable {
    /// The gateways (names, as in `spiffe://<domain>/gateway/<name>`) that report calls as
    /// themselves — start and complete calls, give a call's first transcript: the telephony
    /// gateway. Any other gateway (the web backend) acts only with a user's token. Default `["telephony"]`.
    public var telephonyGateways = ["telephony"]
    /// Deepgram's API (EU: `https://api.eu.deepgram.com`). Default `https://api.deepgram.com`.
    public var deepgramURL = "https://api.deepgram.com"
    /// A 0600 file holding the Deepgram API key; without it the deepgram engine is off.
    public var deepgramKeyFile: String?
    /// Anthropic's API. Default `https://api.anthropic.com`.
    public var anthropicURL = "https://api.anthropic.com"
    /// A 0600 file holding the Anthropic API key; without it only `local` analysis runs.
    public var anthropicKeyFile: String?
    /// The Anthropic model. Default `claude-sonnet-4-5`.
    public var anthropicModel = "claude-sonnet-4-5"
    /// PEM CA certificates the sub-processors' HTTPS certificates must chain to; default the system's.
    public var outboundCA: String?

    public init() {}

    public static let settings: [Setting<TranscriptSettings>] = [
        .names("telephony_gateways", of: .gateway, help: "Gateways that report calls as themselves (comma-separated; default telephony).") {
            $0.telephonyGateways = $1
        },
        .httpsURL("deepgram_url", help: "Deepgram's API (default https://api.deepgram.com).") { $0.deepgramURL = $1 },
        .text("deepgram_key_file", help: "File (0600) holding the Deepgram API key.") { $0.deepgramKeyFile = $1 },
        .httpsURL("anthropic_url", help: "Anthropic's API (default https://api.anthropic.com).") { $0.anthropicURL = $1 },
        .text("anthropic_key_file", help: "File (0600) holding the Anthropic API key.") { $0.anthropicKeyFile = $1 },
        .text("anthropic_model", help: "The Anthropic model (default claude-sonnet-4-5).",
              check: { !$0.isEmpty && $0.count <= 100 && $0.allSatisfy { $0.isLetter || $0.isNumber || "-._".contains($0) }
                  ? nil : "be a model name (letters, digits, - . _)" }) { $0.anthropicModel = $1 },
        .text("outbound_ca", help: "PEM CA certificates the providers' HTTPS must chain to (default: the system's).") { $0.outboundCA = $1 },
    ]
}
