import CallTraceServiceHost

/// The call events a firm's own systems read (`ListCallEvents`; the web gateway's outgoing
/// webhooks): a call completed, a call's transcript ready. Each is written in the transaction of
/// what it tells (`complete`, `TranscriptRules.store`) and deleted with its call, so none
/// outlives its call; an event names the call and nothing of its content.
extension CallRules {
    /// The most events one answer holds, and how many when the caller names no limit.
    static let eventPageLimit = 500
    static let eventPageDefault = 100

    /// Up to `limit` (default 100, at most 500) events of `org` after `after`, oldest first; the
    /// cursor to read on from, whether more wait, and the latest sequence so far.
    func events(org: String, after: UInt64, limit: UInt32) async throws -> (events: [CallEventRow], next: UInt64, more: Bool, latest: UInt64) {
        guard after <= UInt64(Int64.max) else { throw DomainError.invalid("after_sequence is not a sequence this service gave") }
        let limit = limit == 0 ? Self.eventPageDefault : min(Int(limit), Self.eventPageLimit)
        let (rows, latest) = try await repository.read { tx in
            (try tx.events(org: org, after: Int64(after), limit: limit + 1), try tx.lastEventSequence(org: org))
        }
        let page = Array(rows.prefix(limit))
        return (page, page.last.map { UInt64($0.sequence) } ?? after, rows.count > limit, UInt64(latest))
    }
}
