import CallTraceKeys
import CallTraceServiceHost
import Foundation

/// Each call's own keys (P11, issue 27.8), kept wrapped in the key store beside the
/// organisation's: its caller data (the caller's number) under one, its transcript and analysis
/// under another. Deleting a call destroys both, and purging or deleting a transcript destroys
/// the second, once the rows are gone: a backup of the database taken before then (or what
/// the WAL still holds) cannot be read with the key store as it is after. Rows sealed before
/// per-call keys existed open with the organisation's key, which offboarding shreds.
struct CallKeys: Sendable {
    let keys: KeyRing

    enum Part: String, CaseIterable, Sendable {
        case caller
        case transcript
    }

    static func object(_ callID: String, _ part: Part) -> String { "call/\(callID)/\(part.rawValue)" }

    /// Seals a cell of the call's `part`, making its key first if it has none.
    func seal(_ plaintext: Data, org: String, call callID: String, _ part: Part, table: String, column: String) throws -> Data {
        let key = try keys.objectKey(org: org, object: Self.object(callID, part), creating: true)
        return try keys.seal(plaintext, with: key, table: table, column: column, row: callID)
    }

    /// Opens a cell of the call's `part`: with its own key, or (sealed before per-call keys, when
    /// a call of then may have a key for cells sealed since) the organisation's. A cell neither
    /// opens is `KeyError(.tampered)`; once both keys are destroyed, `.noKey`.
    func open(_ sealed: Data, org: String, call callID: String, _ part: Part, table: String, column: String) throws -> Data {
        if let key = try? keys.objectKey(org: org, object: Self.object(callID, part)),
           let plain = try? keys.open(sealed, with: key, table: table, column: column, row: callID) {
            return plain
        }
        return try keys.open(sealed, org: org, table: table, column: column, row: callID)
    }

    /// Destroys the given parts' keys of the calls (nothing to destroy is not an error).
    func destroy(org: String, calls: some Sequence<String>, _ parts: [Part] = Part.allCases) throws {
        try keys.destroyObjectKeys(org: org, objects: calls.flatMap { call in parts.map { Self.object(call, $0) } })
    }
}

/// The daily sweep of keys no call or transcript names (what a crash left while the service ran
/// on), sparing the last hour's, which may be writes in flight.
struct CallKeySweep: PayloadFreeJob { static let kind = "transcript.key_sweep" }

/// Runs `transcript.key_sweep` on the blocking pool (key-store I/O); `destroyed` hears how many went.
struct CallKeySweepJob: DurableJobHandler {
    let rules: CallRules
    let blocking: BlockingPool
    let destroyed: @Sendable (Int) -> Void

    func run(_ work: CallKeySweep, job: Job) async throws -> JobOutcome {
        let cutoff = rules.clock.nowUnixMs - CallRules.sweepGrace.wholeMilliseconds
        let count = try await blocking.run { [rules] in try rules.sweepKeys(sparingSince: cutoff) }
        if count > 0 { destroyed(count) }
        return .done
    }
}
