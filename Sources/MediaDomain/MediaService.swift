public import CallTraceRPC
public import CallTraceServiceHost
public import CallTraceStorage

/// The media service: recordings: encrypted audio, their metadata (org, call id, format, size, duration,
/// checksum), share links. Media never sees callers' phone numbers (DESIGN.md §3). Its RPCs
/// arrive with media's issue; health, info and metrics are served already.
public struct MediaService: CallTraceService {
    public static let name = "media"
    public static let defaultPort = 7102
    public static let requiredPeers: [String: String] = ["identity": "to authorise users and operators", "compliance": "to forward its audit events"]
    public static let migrations = [Migration(version: 1, SharedSchema.v1), Migration(version: 2, SharedSchema.v2),
                                    Migration(version: 3, SharedSchema.v3)]

    public init(context: ServiceContext) {}

    public var rpcServices: [any RPCService] { [] }
}
