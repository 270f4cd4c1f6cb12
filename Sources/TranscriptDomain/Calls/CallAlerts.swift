import CallTraceAPI
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceStorage
import Foundation
import TranscriptText

/// A fact about one call that its firm's people may want by e-mail (issue 32): a missed call, or
/// a new enquiry by the AI analysis. Enqueued in the transaction that learns it; the job reads
/// what it tells when it runs, so nothing of the call waits in the jobs table, and a call deleted
/// meanwhile tells nothing. Identity picks who hears of it (`AlertService.Notify`).
struct CallAlert: DurableJob {
    static let kind = "transcript.call_alert"
    enum Fact: String, Codable, Sendable { case missed, newEnquiry = "new_enquiry" }
    let org: String
    let callID: String
    let fact: Fact

    /// One alert per fact per call, whichever retry or repeat enqueues it; identity sends once per key.
    var key: String { "transcript:\(fact.rawValue):\(callID)" }

    /// The outcomes a missed-call alert is for.
    static let missedOutcomes: Set<Calltrace_Transcript_V1_Outcome> = [.missed, .voicemail, .abandoned]
}

extension CallRules {
    /// Queues `fact` about `call` in the transaction `db` (its key makes a repeat nothing).
    func alert(_ fact: CallAlert.Fact, about call: CallRow, in db: Connection) throws {
        let alert = CallAlert(org: call.org, callID: call.id, fact: fact)
        try jobs.enqueue(alert, idempotencyKey: alert.key, in: db)
    }

    /// What identity's template for the alert is given: when and to which source the call came,
    /// how it ended or, for a new enquiry, the analysis's practice area and summary (redacted when
    /// stored). Never the caller's number. Nil when the call, or the fact, is no longer so.
    func alertFields(_ alert: CallAlert) async throws -> (kind: Calltrace_Identity_V1_AlertKind, fields: [String: String])? {
        let found = try await repository.read { tx in
            (try tx.call(alert.callID, org: alert.org), alert.fact == .newEnquiry ? try tx.analysis(org: alert.org, callID: alert.callID) : nil)
        }
        guard let call = found.0 else { return nil }
        var fields = ["call_id": call.id, "source": call.source, "started_at_unix_ms": String(call.startedAt)]
        switch alert.fact {
        case .missed:
            let outcome = Calltrace_Transcript_V1_Outcome(rawValue: call.outcome) ?? .unspecified
            guard CallAlert.missedOutcomes.contains(outcome) else { return nil }
            fields["outcome"] = outcome == .voicemail ? "voicemail" : outcome == .abandoned ? "abandoned" : "missed"
            return (.missedCall, fields)
        case .newEnquiry:
            guard let sealed = found.1 else { return nil }
            let plain = try callKeys.open(sealed, org: call.org, call: call.id, .transcript, table: "analyses", column: "analysis")
            let analysis = try Calltrace_Transcript_V1_Analysis(serializedBytes: plain)
            guard analysis.newEnquiry else { return nil }
            let index = analysis.practiceArea.rawValue - 1
            if CallAnalysis.practiceAreas.indices.contains(index) {
                let name = CallAnalysis.practiceAreas[index].replacingOccurrences(of: "_", with: " ")
                fields["practice_area"] = name.prefix(1).uppercased() + name.dropFirst()
            }
            fields["summary"] = String(analysis.summary.prefix(4000))
            return (.newEnquiry, fields)
        }
    }
}

/// Runs `transcript.call_alert` jobs: the fact to identity, as transcript. Identity down: the
/// attempt fails and the job retries; a day late, identity drops the e-mail as stale.
struct CallAlertJobHandler: DurableJobHandler {
    let rules: CallRules
    let identity: Calltrace_Identity_V1_AlertServiceClient

    func run(_ work: CallAlert, job: Job) async throws -> JobOutcome {
        guard let alert = try await rules.alertFields(work) else { return .done }
        _ = try await identity.notify(.with {
            $0.orgID = work.org
            $0.kind = alert.kind
            $0.fields = alert.fields
            $0.idempotencyKey = work.key
        }, options: CallOptions(timeout: .seconds(30), failFast: true))
        return .done
    }
}
