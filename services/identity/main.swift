// calltrace-identity: the identity service. Owns organisations, named users, credentials, sessions and tokens, roles, support grants, service and gateway principals (DESIGN.md §3).
import CallTraceRPC
import CallTraceServiceHost
import CallTraceStorage

struct IdentityService: CallTraceService {
    static let name = "identity"
    static let defaultPort = 7101
    static let migrations = [Migration(version: 1, SharedSchema.v1), Migration(version: 2, IdentityStore.schema),
                             Migration(version: 3, IdentityStore.schemaV3), Migration(version: 4, SharedSchema.v2)]

    let identity: IdentityRPC

    init(context: ServiceContext) throws {
        guard let outbox = context.configuration.mailOutbox else {
            throw ConfigurationError("mail_outbox is not configured: identity delivers invitation and reset tokens there (config key mail_outbox, or CALLTRACE_MAIL_OUTBOX)")
        }
        let delivery = try FileOutboxDelivery.checked(folder: outbox)
        identity = IdentityRPC(store: IdentityStore(database: context.database, keys: context.keys, outbox: context.outbox,
                                                    delivery: delivery),
                               credentialGateways: context.configuration.credentialGateways)
    }

    var rpcServices: [any RPCService] { [identity] }
}

await ServiceHost.main(IdentityService.self)
