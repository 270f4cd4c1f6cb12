/// Where each service listens unless its `listen` setting says otherwise: the one table the
/// services, the client library (`CallTraceConnections`) and the CLI all read.
public enum DefaultPorts {
    public static let identity = 7101
    public static let media = 7102
    public static let transcript = 7103
    public static let compliance = 7104
    /// The web gateway's ctrpc/1 port (health and info); its pages are on `http_listen`.
    public static let web = 7105
    /// The web gateway's HTTP port, behind nginx.
    public static let webHTTP = 8080
    /// The telephony gateway's ctrpc/1 port (health, info, and its own RPCs).
    public static let telephony = 7106
    /// The telephony gateway's HTTP port for Twilio's webhooks, behind nginx.
    public static let telephonyHTTP = 8081

    /// By service name.
    public static let all = ["identity": identity, "media": media, "transcript": transcript, "compliance": compliance]
}
