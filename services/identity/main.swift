// calltrace-identity: the identity service. Owns organisations, named users, credentials, sessions and tokens, roles, support grants, service and gateway principals (DESIGN.md §3).
import CallTraceRPC
import CallTraceServiceHost
import CallTraceStorage

struct IdentityService: CallTraceService {
    static let name = "identity"
    static let defaultPort = 7101
    static let migrations = [Migration(version: 1, SharedSchema.v1)]

    init(context: ServiceContext) {}

    /// Domain RPCs arrive with their issues; health and info are always served.
    var rpcServices: [any RPCService] { [] }
}

await ServiceHost.main(IdentityService.self)
