// calltrace-media: the media service. Owns recordings: encrypted audio, their metadata (org, call id, format, size, duration, checksum), share links. Media never sees callers' phone numbers. (DESIGN.md §3).
import CallTraceRPC
import CallTraceServiceHost
import CallTraceStorage

struct MediaService: CallTraceService {
    static let name = "media"
    static let defaultPort = 7102
    static let migrations = [Migration(version: 1, SharedSchema.v1), Migration(version: 2, SharedSchema.v2)]

    init(context: ServiceContext) {}

    /// Domain RPCs arrive with their issues; health and info are always served.
    var rpcServices: [any RPCService] { [] }
}

await ServiceHost.main(MediaService.self)
