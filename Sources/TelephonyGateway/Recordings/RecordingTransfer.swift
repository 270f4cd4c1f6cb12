import CallTraceAPI
import CallTraceKeys
import CallTraceOutbound
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceSync
import Foundation
import Logging
import Twilio

/// Moves one recording from Twilio into media, then deletes it at Twilio, so the only copy is
/// CallTrace's, encrypted (P4, P10). A durable job: it survives restarts, retries with the
/// queue's backoff, and is idempotent by the recording's SID — media answers a second upload of
/// the same file for the same call with the recording it already has, and Twilio's delete of a
/// recording already gone is success. The delete happens only once media has confirmed.
///
/// The file is read from Twilio twice and kept nowhere: first to learn its SHA-256 and format
/// (media's header comes before the audio), then streamed into media as it arrives, which checks
/// the bytes against that SHA-256 and stores nothing if they differ.
struct TransferRecording: DurableJob {
    static let kind = "telephony.recording_transfer"
    let recording: String
    /// From Twilio's callback (`RecordingDuration`).
    let durationMs: UInt64
}

struct RecordingTransfer: Sendable {
    let repository: any TelephonyRepository
    let twilio: TwilioClient
    let media: Calltrace_Media_V1_RecordingServiceClient
    let clock: any WallClock
    let counters: TelephonyCounters
    let logger: Logger

    /// A recording still at Twilio this long after its callback raises the alert gauge.
    static let alertAfterMs: Int64 = 86_400_000
    /// What a row names instead of media's id when media refused the recording.
    static let discarded = "-"
    /// Media's largest chunk.
    static let chunkBytes = 1 << 20

    func run(_ work: TransferRecording) async throws {
        guard let row = try await repository.read({ tx in try tx.recording(work.recording) }) else {
            throw PermanentJobFailure("recording \(work.recording) is not one this gateway was told of")
        }
        if row.mediaRecording == nil {
            let stored: String
            do {
                stored = try await upload(row, durationMs: work.durationMs)
            } catch let error as RPCError where error.code == .notFound || error.code == .failedPrecondition {
                // Media will never take it: its call was deleted (P10), its firm offboarded (P11),
                // or the caller objected. No copy may stay at Twilio either.
                counters.add(.recordingDiscarded)
                logger.warning("recording not stored: media refuses it; deleting it at Twilio",
                               metadata: ["recording": "\(row.sid)", "call": "\(row.callSID)", "code": "\(error.code)"])
                stored = Self.discarded
            }
            try await repository.write { tx in try tx.setStored(row.sid, mediaRecording: stored) }
            logger.info("recording stored in media", metadata: ["recording": "\(row.sid)", "call": "\(row.callSID)", "org": "\(row.org)",
                                                              "media_recording": "\(stored)"])
        }
        guard row.deletedAtTwilio == nil else { return }
        let deletion: RecordingDeletion
        do {
            deletion = try await twilio.deleteRecording(sid: row.sid)
        } catch {
            logger.warning("recording not yet deleted at Twilio: will try again", metadata: ["recording": "\(row.sid)", "error": "\(error)"])
            throw error
        }
        let now = clock.nowUnixMs
        try await repository.write { tx in try tx.setDeletedAtTwilio(row.sid, at: now) }
        logger.info("recording deleted at Twilio", metadata: ["recording": "\(row.sid)", "already_gone": "\(deletion == .alreadyGone)"])
    }

    /// Both passes over Twilio's file; media's id for it.
    private func upload(_ row: RecordingTransferRow, durationMs: UInt64) async throws -> String {
        let survey = try FileSurvey()
        _ = try await twilio.fetchRecordingWAV(sid: row.sid, into: survey)
        let (sha256, prefix) = try survey.finish()
        guard let wav = WAVInfo(prefix) else {
            // Never deleted unread: left at Twilio, counted, and in the day-old gauge until an operator acts.
            counters.add(.recordingUnreadable)
            logger.error("recording left at Twilio: not a WAV file media takes", metadata: ["recording": "\(row.sid)", "call": "\(row.callSID)",
                                                                                            "org": "\(row.org)"])
            throw PermanentJobFailure("Twilio's recording \(row.sid) is not a WAV file media takes")
        }
        let header = Calltrace_Media_V1_RecordingHeader.with {
            $0.orgID = row.org; $0.callID = row.callSID; $0.format = wav.format; $0.sampleRateHz = wav.sampleRate
            $0.channels = wav.channels; $0.durationMs = durationMs; $0.sha256 = sha256
        }
        let pieces = ResponsePieces()
        let fetch = Task {
            do {
                _ = try await twilio.fetchRecordingWAV(sid: row.sid, into: pieces)
                pieces.finish(nil)
            } catch {
                pieces.finish(error)
            }
        }
        defer { pieces.cancel(); fetch.cancel() }
        let stored = try await media.uploadRecording(options: CallOptions(timeout: .seconds(600))) { writer in
            try await writer.send(.with { $0.header = header })
            var pending = Data()
            while let piece = try await pieces.next() {
                pending.append(piece)
                if pending.count >= Self.chunkBytes / 4 {
                    try await writer.send(.with { $0.chunk = pending })
                    pending = Data()
                }
            }
            if !pending.isEmpty { try await writer.send(.with { $0.chunk = pending }) }
        }
        return stored.recording.recordingID
    }

    /// Recordings still at Twilio a day after their callback (a delete that keeps failing).
    func stillAtTwilio() async -> Int {
        let cutoff = clock.nowUnixMs - Self.alertAfterMs
        return (try? await repository.read { tx in try tx.recordingsStillAtTwilio(receivedBefore: cutoff) }) ?? 0
    }
}

struct TransferRecordingHandler: DurableJobHandler {
    let transfer: RecordingTransfer
    func run(_ work: TransferRecording, job: Job) async throws -> JobOutcome {
        try await transfer.run(work)
        return .done
    }
}

/// The first pass: the file's SHA-256 and first bytes, nothing kept. On the transfer's thread.
private final class FileSurvey: HTTPSResponseSink, @unchecked Sendable {
    private let digest: SHA256Stream
    private let prefix = Locked(Data())

    init() throws { digest = try SHA256Stream() }

    func received(_ data: Data, status: Int) throws {
        guard status == 200 else { return }
        digest.update(data)
        prefix.withLock { prefix in
            if prefix.count < WAVInfo.prefixBytes { prefix.append(data.prefix(WAVInfo.prefixBytes - prefix.count)) }
        }
    }

    func finish() throws -> (sha256: Data, prefix: Data) { (digest.finish(), prefix.withLock { $0 }) }
}
