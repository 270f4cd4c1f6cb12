import CallTraceKeys
import CallTraceServiceHost
import Foundation

/// Whom a call back rings and dials (issue 31): the rules' answer to `PrepareCallback`.
struct CallbackPlan: Sendable, Equatable {
    /// The enquirer, dialled once the member of staff answers.
    let caller: String
    /// The firm's number the call came in on, presented to the enquirer.
    let trackingNumber: String
    /// Rung first.
    let staff: String
    let source: String
    let startedAt: Int64
}

extension CallRules {
    /// A call back to one of the organisation's calls, for `actor` (a person allowed calls.place):
    /// only to a caller who gave a UK number that is not premium-rate and has not objected to
    /// recording (a returned call is recorded, P3), from the number the call came in on while the
    /// firm still holds it, to a member of staff on a UK number that is not premium-rate (default:
    /// the number's first destination). Audited with the staff phone masked; no number in full is
    /// in the trail or in an error.
    func prepareCallback(org: String, call callID: String, staffNumber: String, by actor: String) async throws -> CallbackPlan {
        let call = try await self.call(callID, org: org)
        let caller = try callerNumber(of: call)
        guard !caller.isEmpty else {
            throw DomainError.wrongState("the caller of call \(callID) withheld their number: there is no number to call back")
        }
        // A number outside the UK or a premium one is what a fraudster calls from (caller ids are
        // easily spoofed) to be "called back" at the firm's cost.
        guard (try? CallRouting.phone(caller, field: "caller", trackingNumber: call.trackingNumber)) != nil else {
            throw DomainError.wrongState("the caller of call \(callID) has a number CallTrace does not call back (outside the UK, premium rate, personal or pager)")
        }
        return try await repository.write { [keys, outbox] tx in
            guard try tx.listedCaller(.suppressions, org: org, callerIndex: call.callerIndex) == nil else {
                throw DomainError.wrongState("the caller of call \(callID) objected to recording: CallTrace places no recorded call to them")
            }
            guard let current = try tx.currentAssignment(of: call.trackingNumber), current.org == org else {
                throw DomainError.wrongState("the number call \(callID) came in on is no longer the firm's: there is no number to call back from")
            }
            let staff: String
            if staffNumber.isEmpty {
                let routing = try tx.routing(org: org, number: call.trackingNumber)
                    .map { try Self.open($0, org: org, number: call.trackingNumber, keys: keys) }
                guard let first = routing?.destinations.first else {
                    throw DomainError.invalid("staff_number is required: the number the call came in on rings nobody")
                }
                staff = first
            } else {
                staff = try CallRouting.phone(staffNumber, field: "staff_number", trackingNumber: call.trackingNumber)
            }
            try outbox.record(AuditRecord(org: org, actor: actor, action: .callCallbackPlaced, resource: .call(callID), outcome: .success,
                                          detail: "staff phone: \(PhoneNumber.masked(staff))"), in: tx.connection)
            return CallbackPlan(caller: caller, trackingNumber: call.trackingNumber, staff: staff, source: current.source,
                                startedAt: call.startedAt)
        }
    }
}
