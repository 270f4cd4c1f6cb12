/// Where each service listens unless its `listen` setting says otherwise: the one table the
/// services, the client library (`CallTraceConnections`) and the CLI all read.
public enum DefaultPorts {
    public static let identity = 7101
    public static let media = 7102
    public static let transcript = 7103
    public static let compliance = 7104

    /// By service name.
    public static let all = ["identity": identity, "media": media, "transcript": transcript, "compliance": compliance]
}
