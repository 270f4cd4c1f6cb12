import CallTraceKeys
import CallTraceProto
import CallTraceServiceHost
import Foundation

/// Routing (issue 31): per organisation and current tracking number, sealed whole under the
/// organisation's key (the destinations are its staff's phones).
extension CallRules {
    /// Replaces the routing of a number the organisation holds now (NOT_FOUND otherwise); audited
    /// with what changed, never a number.
    func setRouting(org: String, number raw: String, _ requested: RoutingChange, by actor: String) async throws
        -> (assignment: TrackingAssignment, routing: CallRouting) {
        let number = try Self.e164(raw, field: "number")
        let routing = try CallRouting(validating: requested, trackingNumber: number)
        let now = clock.nowUnixMs
        return try await repository.write { [outbox, keys] tx in
            guard let current = try tx.currentAssignment(of: number), current.org == org else {
                throw DomainError.notFound("tracking number \(number) is not in use by organisation \(org)")
            }
            let old = try tx.routing(org: org, number: number).map { try Self.open($0, org: org, number: number, keys: keys) } ?? .unset
            try tx.putRouting(try Self.seal(routing, org: org, number: number, keys: keys), org: org, number: number, at: now)
            try outbox.record(AuditRecord(org: org, actor: actor, action: .trackingNumberRoutingSet, resource: .trackingNumber(number),
                                          outcome: .success, detail: routing.changes(from: old)), in: tx.connection)
            return (current, routing)
        }
    }

    /// The routing of each of `numbers` (the organisation's current ones) that has one.
    func routings(org: String, numbers: [String]) async throws -> [String: CallRouting] {
        let sealed = try await repository.read { tx in
            try numbers.reduce(into: [String: Data]()) { found, number in found[number] = try tx.routing(org: org, number: number) }
        }
        return Dictionary(uniqueKeysWithValues: try sealed.map { number, routing in (number, try Self.open(routing, org: org, number: number, keys: keys)) })
    }

    static func seal(_ routing: CallRouting, org: String, number: String, keys: KeyRing) throws -> Data {
        try keys.seal(try routing.proto(withNumbers: true).serializedBytes(), org: org, table: "tracking_number_routing", column: "routing", row: number)
    }

    static func open(_ sealed: Data, org: String, number: String, keys: KeyRing) throws -> CallRouting {
        let plain = try keys.open(sealed, org: org, table: "tracking_number_routing", column: "routing", row: number)
        return CallRouting(stored: try Calltrace_Transcript_V1_Routing(serializedBytes: plain))
    }
}
