public import CallTraceRPC
public import CallTraceServiceHost
public import CallTraceStorage

/// The identity service: organisations, named users, credentials, sessions and tokens, roles,
/// support grants, service and gateway principals (DESIGN.md §3). `services/identity/main.swift`
/// runs it as a process; tests run it in process.
public struct IdentityService: CallTraceService {
    public static let name = "identity"
    public static let defaultPort = 7101
    public static let requiredPeers: [String: String] = ["compliance": "to forward its audit events"]
    public static let migrations = [Migration(version: 1, SharedSchema.v1), Migration(version: 2, IdentityStore.schema),
                                    Migration(version: 3, IdentityStore.schemaV3), Migration(version: 4, SharedSchema.v2),
                                    Migration(version: 5, SharedSchema.v3)]

    let identity: IdentityHandler

    public init(context: ServiceContext) throws {
        guard let outbox = context.configuration.mailOutbox else {
            throw ConfigurationError("mail_outbox is not configured: identity delivers invitation and reset tokens there (config key mail_outbox, or CALLTRACE_MAIL_OUTBOX)")
        }
        let delivery = try FileOutboxDelivery.checked(folder: outbox)
        let store = IdentityStore(database: context.database, keys: context.keys, outbox: context.outbox,
                                  delivery: delivery, clock: context.clock)
        identity = IdentityHandler(store: store, credentialGateways: context.configuration.credentialGateways,
                                   adminOperators: context.configuration.adminOperators)
        context.jobs.register(Housekeeping(store: store))
        context.jobs.schedule(Housekeeping.kind, every: .seconds(3600), kind: Housekeeping.kind)
    }

    public var rpcServices: [any RPCService] { [identity] }
}

/// Hourly: expired sessions, stale failed-login counts and used or expired tokens are deleted.
struct Housekeeping: JobHandler {
    static let kind = "identity.purge"
    let store: IdentityStore
    var kind: String { Self.kind }

    func run(_ job: Job) async throws -> JobOutcome {
        _ = try await store.purgeExpired()
        return .done
    }
}
