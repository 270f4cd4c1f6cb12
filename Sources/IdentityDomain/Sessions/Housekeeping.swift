import CallTraceKeys
import CallTraceOutbound
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceStorage
import Foundation

/// Housekeeping.
extension IdentityRules {
    /// Deletes what can no longer be used: sessions past their maximum or idle beyond the longest
    /// idle time any organisation may set (a day), failed-login counts outside their window,
    /// invitation and reset tokens used or expired, API tokens that ended (expired or were
    /// revoked) more than 90 days ago, and the record of alerts sent over 30 days ago (a sender
    /// retries for less). Returns the rows removed.
    func purgeExpired() async throws -> Int {
        let now = self.now()
        return try await repository.write { tx in
            try tx.purge(now: now, idleBefore: now - 86_400_000, failuresBefore: now - Self.failureWindowMS,
                         apiTokensEndedBefore: now - Self.endedApiTokenKeptMS, alertsSentBefore: now - Self.alertsSentKeptMS)
        }
    }
}
