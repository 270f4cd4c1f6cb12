// calltrace-identity: the identity service. Owns organisations, named users, credentials, sessions and tokens, roles, support grants, service and gateway principals (DESIGN.md §3).
import CallTraceRPC
import CallTraceServiceHost
import CallTraceStorage

struct IdentityService: CallTraceService {
    static let name = "identity"
    static let defaultPort = 7101
    static let migrations = [Migration(version: 1, SharedSchema.v1), Migration(version: 2, IdentityStore.schema),
                             Migration(version: 3, IdentityStore.schemaV3)]

    let identity: IdentityRPC

    init(context: ServiceContext) {
        identity = IdentityRPC(store: IdentityStore(database: context.database, keys: context.keys, outbox: context.outbox))
    }

    var rpcServices: [any RPCService] { [identity] }
}

await ServiceHost.main(IdentityService.self)
