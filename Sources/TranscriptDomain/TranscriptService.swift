public import CallTraceRPC
public import CallTraceServiceHost
public import CallTraceStorage

/// The transcript service: call records (tracking number, marketing source, caller number, direction, times, outcome,
/// matter reference), tracking numbers, transcripts, AI summaries and classifications, processing
/// objections (DESIGN.md §3). Its RPCs arrive with transcript's issue; health, info and metrics
/// are served already.
public struct TranscriptService: CallTraceService {
    public static let name = "transcript"
    public static let defaultPort = 7103
    public static let requiredPeers: [String: String] = ["identity": "to authorise users and operators", "compliance": "to forward its audit events"]
    public static let migrations = [Migration(version: 1, SharedSchema.v1), Migration(version: 2, SharedSchema.v2),
                                    Migration(version: 3, SharedSchema.v3)]

    public init(context: ServiceContext) {}

    public var rpcServices: [any RPCService] { [] }
}
