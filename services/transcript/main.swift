// calltrace-transcript: the transcript service. Owns call records (tracking number, marketing source, caller number, direction, times, outcome, matter reference), tracking numbers, transcripts, AI summaries and classifications, processing objections (DESIGN.md §3).
import CallTraceRPC
import CallTraceServiceHost
import CallTraceStorage

struct TranscriptService: CallTraceService {
    static let name = "transcript"
    static let defaultPort = 7103
    static let migrations = [Migration(version: 1, SharedSchema.v1), Migration(version: 2, SharedSchema.v2)]

    init(context: ServiceContext) {}

    /// Domain RPCs arrive with their issues; health and info are always served.
    var rpcServices: [any RPCService] { [] }
}

await ServiceHost.main(TranscriptService.self)
