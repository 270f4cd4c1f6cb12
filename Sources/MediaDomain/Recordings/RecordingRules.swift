import CallTraceKeys
import CallTraceAPI
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceStorage
import Foundation

/// What an uploader declares before a recording's bytes (the rules' input, whatever carried it).
struct RecordingUpload: Sendable {
    var org: String
    var callID: String
    var format: AudioFormat
    var sampleRate: UInt32
    var channels: UInt32
    var durationMs: UInt64
    /// Of the whole file, 32 bytes.
    var sha256: Data
}


/// Media's rules for recordings: how audio is received, sealed, stored, played and destroyed.
///
/// A recording is sealed in chunks of `chunkBytes` under a key of its own (`KeyRing` object
/// key, wrapped by the organisation's key in the key store), each chunk authenticated with the
/// recording's id, its index and whether it is the last. Storing follows one order — sealed
/// chunks to an uncommitted blob, the checksum checked, the blob synced and renamed into place,
/// then the row, the audit record and the job for transcript in one transaction — so a crash at
/// any point leaves a complete recording or nothing that the start-up sweep does not remove.
struct RecordingRules: Sendable {
    /// Plaintext bytes per sealed chunk: a byte range is served by opening only the chunks it covers.
    static let chunkBytes = 64 << 10
    /// The largest recording accepted (a day of two-channel 16-bit 8 kHz audio is 2.8 GB; calls are shorter).
    static let maxRecordingBytes: UInt64 = 2 << 30

    let repository: any RecordingRepository
    let blobs: any BlobStore
    let keys: KeyRing
    let outbox: AuditOutbox
    let jobs: JobQueue
    let clock: any WallClock
    /// Where sealing, opening and hashing run: never on the connection's I/O thread.
    var blocking = BlockingPool.shared

    static func newID() -> String { "rec_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "") }

    // MARK: Upload

    /// Receives a file: `next` yields its pieces in order and nil at its end (it throws when the
    /// stream breaks). Nothing is stored unless the whole file arrived and its SHA-256 matches.
    func upload(_ header: RecordingUpload, by actor: String,
                next: () async throws -> Data?) async throws -> RecordingRow {
        try OrganizationID.validate(header.org)
        try CallID.validate(header.callID)
        let declared = try DeclaredAudio(header)
        guard header.sha256.count == 32 else { throw DomainError.invalid("sha256 must be the 32-byte SHA-256 of the file") }
        let org = header.org
        let refusal = DomainError.wrongState("call \(header.callID) was deleted: it takes no more recordings")
        // Asked first, so the audio of a deleted call is not streamed in only to be refused, and
        // again when the row is written (the call's deletion may have finished meanwhile).
        let (deleted, already) = try await repository.read { tx in
            (try tx.isCallDeleted(org: org, callID: header.callID),
             try tx.recording(org: org, callID: header.callID, receivedSHA256: header.sha256))
        }
        guard !deleted else { throw refusal }
        // The same file for the same call again (a gateway retrying after a lost answer, or after
        // it died between the upload and noting it): the recording already stored, not a second.
        if let already {
            // The rest of the stream is read and dropped, to the same limit as any upload.
            var size: UInt64 = 0
            while let piece = try await next() {
                size += UInt64(piece.count)
                guard size <= Self.maxRecordingBytes else {
                    throw DomainError.invalid("a recording holds at most \(Self.maxRecordingBytes >> 20) MiB; nothing was stored")
                }
            }
            return already
        }
        let id = Self.newID()
        // The organisation's keys come with its first recording; the recording's own key is kept
        // before anything is sealed under it.
        let key: ObjectKey
        do {
            try keys.createKeys(for: org)
            key = try keys.createObjectKey(org: org, object: id)
        } catch let error as KeyError where error.kind == .noKey {
            throw DomainError.wrongState("organisation \(org) was purged: it takes no recordings")
        }
        let began = clock.nowUnixMs
        let writer = try blobs.create(id)
        var stored = false
        defer {
            if !stored {
                writer.abandon()
                try? keys.destroyObjectKey(org: org, object: id)
            }
        }
        let sealer = ChunkSealer(keys: keys, key: key, writer: writer, chunkBytes: RecordingRules.chunkBytes)
        let digest = try SHA256Stream()
        var size: UInt64 = 0
        var prefix = Data()
        while let piece = try await next() {
            guard !piece.isEmpty else { continue }
            size += UInt64(piece.count)
            guard size <= Self.maxRecordingBytes else {
                throw DomainError.invalid("a recording holds at most \(Self.maxRecordingBytes >> 20) MiB; nothing was stored")
            }
            if declared.isWAV && prefix.count < DeclaredAudio.wavPrefixBytes {
                prefix += piece.prefix(DeclaredAudio.wavPrefixBytes - prefix.count)
                if prefix.count >= DeclaredAudio.wavPrefixBytes { try declared.check(wavPrefix: prefix) }
            }
            try await blocking.run {
                digest.update(piece)
                try sealer.add(piece)
            }
        }
        guard size > 0 else { throw DomainError.invalid("the upload ended before any audio arrived; nothing was stored") }
        if declared.isWAV && prefix.count < DeclaredAudio.wavPrefixBytes { try declared.check(wavPrefix: prefix) }
        guard digest.finish() == header.sha256 else {
            throw DomainError.invalid("the file's SHA-256 does not match the header's (corrupted or incomplete); nothing was stored")
        }
        try await blocking.run {
            try sealer.finish()
            try writer.commit()
        }
        // A sweep takes a key no row names once it is a day old: an upload that outlived half
        // that margin, or whose key went meanwhile, is refused rather than stored unreadable.
        guard clock.nowUnixMs - began < Self.sweepGrace.wholeMilliseconds / 2 else {
            throw DomainError.invalid("the upload took longer than 12 hours; nothing was stored")
        }
        do { _ = try keys.objectKey(org: org, object: id) } catch let error as KeyError where error.kind == .noKey {
            throw DomainError.wrongState("the recording's key was destroyed during the upload (the organisation purged?); nothing was stored")
        }
        let row = RecordingRow(id: id, org: org, callID: header.callID, format: header.format.rawValue, sampleRate: header.sampleRate,
                               channels: header.channels, durationMs: header.durationMs, sizeBytes: size, sha256: header.sha256,
                               chunkBytes: Self.chunkBytes, createdAt: clock.nowUnixMs, blobID: id)
        do {
            let kept = try await repository.write { [outbox, jobs] tx -> RecordingRow? in
                guard try !tx.isCallDeleted(org: org, callID: row.callID) else { throw refusal }
                // Two retries at once: the first to get here keeps its file.
                if let first = try tx.recording(org: org, callID: row.callID, receivedSHA256: row.sha256) { return first }
                try tx.insert(row)
                try jobs.enqueue(RecordingStored(org: org, recording: id), idempotencyKey: "\(RecordingStored.kind):\(id)", in: tx.connection)
                try outbox.record(AuditRecord(org: org, actor: actor, action: .recordingStored, resource: .recording(id),
                                              outcome: .success), in: tx.connection)
                return nil
            }
            if let kept {
                try? await deleteBlobs([id])
                try? keys.destroyObjectKey(org: org, object: id)
                stored = true  // nothing of this upload is left to abandon
                return kept
            }
        } catch {
            try? await deleteBlobs([id])
            throw error
        }
        stored = true
        return row
    }

    // MARK: Reading

    func recording(_ id: String, org: String) async throws -> RecordingRow {
        try OrganizationID.validate(org)
        guard let row = try await repository.read({ tx in try tx.recording(id, org: org) }) else {
            throw DomainError.notFound("recording \(id.prefix(64)) not found in organisation \(org)")
        }
        return row
    }

    /// A page of recordings, newest first, and the token of the next page (empty at the end).
    func list(org: String, callID: String?, from: Int64?, before: Int64?, pageSize: Int, pageToken: String) async throws
        -> (rows: [RecordingRow], next: String) {
        if let callID { try CallID.validate(callID) }
        let limit = pageSize == 0 ? 100 : min(pageSize, 500)
        var after: (Int64, String)?
        if !pageToken.isEmpty {
            let parts = pageToken.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, let time = Int64(parts[0]) else { throw DomainError.invalid("page_token is not one this service issued") }
            after = (time, String(parts[1]))
        }
        let bound = after
        let rows = try await repository.read { tx in
            try tx.recordings(org: org, callID: callID, from: from, before: before, after: bound, limit: limit + 1)
        }
        let page = Array(rows.prefix(limit))
        let next = rows.count > limit ? page.last.map { "\($0.createdAt):\($0.id)" } ?? "" : ""
        return (page, next)
    }

    /// Plays `length` bytes from `offset` (0: to the end) of a recording: the playback is audited
    /// first, then `send` receives the bytes in order, in pieces of at most `pieceBytes` (256 KiB:
    /// four fit the 1 MiB flow-control window, so the next is on its way while one is read).
    ///
    /// - Parameter reason: why (at most 200 characters), kept in the audit event.
    /// - Parameter action: the audit action (`recording.exported` for compliance's exports).
    func play(_ id: String, org: String, offset: UInt64, length: UInt64, reason: String = "", by actor: String,
              action: MediaAuditAction = .recordingPlayed,
              pieceBytes: Int = 256 << 10, send: (RecordingRow, UInt64, Data) async throws -> Void) async throws {
        try Self.validate(reason: reason)
        var row = try await recording(id, org: org)
        guard offset < row.sizeBytes else {
            throw DomainError.outOfRange("offset \(offset) is past the end of the recording (\(row.sizeBytes) bytes)")
        }
        // Compared before adding: offset + length may not fit in 64 bits (a request's length is
        // anything a gateway passes on, such as an HTTP Range header's).
        guard length <= row.sizeBytes - offset else {
            throw DomainError.outOfRange("\(length) bytes from offset \(offset) are not within the recording (\(row.sizeBytes) bytes)")
        }
        var end = length == 0 ? row.sizeBytes : offset + length
        try await repository.write { [outbox, end] tx in
            try outbox.record(AuditRecord(org: org, actor: actor, action: action, resource: .recording(id), outcome: .success,
                                          detail: "bytes=\(offset)-\(end - 1)" + (reason.isEmpty ? "" : "; reason: \(reason)")),
                              in: tx.connection)
        }
        var key: ObjectKey?
        for _ in 0..<3 where key == nil {
            do {
                key = try keys.objectKey(org: org, object: row.blobID)
            } catch {
                // A redaction may have replaced the file (and destroyed its key) since the row was
                // read: the muted version is the recording now. Gone for good: NOT_FOUND.
                let again = try await recording(id, org: org)
                guard again.blobID != row.blobID, again.sizeBytes == row.sizeBytes || length == 0 && offset < again.sizeBytes else {
                    throw DomainError.notFound("recording \(id) not found in organisation \(org)")
                }
                row = again
            }
        }
        guard let key else { throw DomainError.notFound("recording \(id) not found in organisation \(org)") }
        if length == 0 { end = row.sizeBytes }
        var reader = ChunkReader(keys: keys, blobs: blobs, key: key, row: row)
        var position = offset
        while position < end {
            let upTo = min(end, position + UInt64(pieceBytes))
            let from = position
            let data: Data
            do {
                data = try await blocking.run { [reader] in try reader.bytes(from: from, to: upTo) }
            } catch let error as DomainError where error.kind == .corrupt {
                // A redaction may have replaced the file (and deleted the old one) while this read
                // it: the muted version is the recording now, read on from it. Damaged for real,
                // or changed in size (muted into another format): said so, never mixed.
                let again = try await recording(id, org: org)
                guard again.blobID != row.blobID else { throw error }
                guard again.sizeBytes == row.sizeBytes else {
                    throw DomainError.wrongState("recording \(id) was redacted while it was read; read it again")
                }
                row = again
                reader = ChunkReader(keys: keys, blobs: blobs, key: try keys.objectKey(org: org, object: row.blobID), row: row)
                continue
            }
            try await send(row, from, data)
            position = upTo
        }
    }

    /// A reason kept in the audit trail: one line of at most 200 characters (`DomainText.line`).
    static func validate(reason: String) throws {
        _ = try DomainText.line(reason, "reason", max: 200)
    }

    // MARK: Deletion

    /// Instant and final: the row goes (and with it every read), then the recording's key, then
    /// its file. A crash between these steps leaves a key or file without a row, which the
    /// start-up sweep destroys.
    func delete(_ id: String, org: String, by actor: String) async throws {
        try OrganizationID.validate(org)
        let deleted = try await repository.write { [outbox] tx -> String? in
            guard let row = try tx.recording(id, org: org), try tx.delete(id, org: org) else { return nil }
            try tx.deleteShareLinks(recording: id, org: org)  // its links die with it
            try outbox.record(AuditRecord(org: org, actor: actor, action: .recordingDeleted, resource: .recording(id),
                                          outcome: .success), in: tx.connection)
            return row.blobID
        }
        guard let blobID = deleted else { throw DomainError.notFound("recording \(id.prefix(64)) not found in organisation \(org)") }
        try keys.destroyObjectKey(org: org, object: blobID)
        try await deleteBlobs([blobID])
    }

    /// Every recording of a call destroyed (compliance deleting the call everywhere, P10): rows
    /// and share links in one transaction with one audit record per recording, then keys, then
    /// files — the start-up sweep finishes what a crash interrupts. Idempotent: none left, 0.
    func deleteCall(_ callID: String, org: String, by actor: String) async throws -> Int {
        try OrganizationID.validate(org)
        try CallID.validate(callID)
        let now = clock.nowUnixMs
        let rows = try await repository.write { [outbox] tx -> [RecordingRow] in
            try tx.markCallDeleted(org: org, callID: callID, at: now)
            let rows = try tx.recordings(org: org, callID: callID, from: nil, before: nil, after: nil, limit: 1000)
            for row in rows {
                _ = try tx.delete(row.id, org: org)
                try tx.deleteShareLinks(recording: row.id, org: org)
                try outbox.record(AuditRecord(org: org, actor: actor, action: .recordingDeleted, resource: .recording(row.id),
                                              outcome: .success, detail: "call \(callID) deleted"), in: tx.connection)
            }
            return rows
        }
        try keys.destroyObjectKeys(org: org, objects: rows.map(\.blobID))
        try await deleteBlobs(rows.map(\.blobID))
        return rows.count
    }

    // MARK: Redaction (P16)

    /// Mutes `ranges` (milliseconds, [start, end)) of a recording: a new version is sealed under a
    /// new key and committed before the row points at it; then the old version's key and file
    /// are destroyed. A WAV recording keeps its format, the ranges digital silence and every
    /// other byte unchanged; an MP3 or Opus recording is decoded and stored as FLAC
    /// (`redactCompressed`). One that cannot be muted is flagged (`flagUnmutable`) and refused.
    /// Returns the new row and how many bytes were muted.
    func redact(_ id: String, org: String, ranges: [(start: UInt64, end: UInt64)], reason: String, by actor: String) async throws
        -> (row: RecordingRow, muted: UInt64) {
        guard (1...RedactionLimits.maxRanges).contains(ranges.count),
              ranges.allSatisfy({ $0.start < $0.end && $0.end <= RedactionLimits.maxAudioMs }) else {
            throw DomainError.invalid("name 1 to 1000 ranges, each ending after it starts and within 7 days of audio")
        }
        try Self.validate(reason: reason)
        let row = try await recording(id, org: org)
        guard let silence = WAVLayout.silence(of: row.format) else {
            return try await redactCompressed(row, ranges: ranges, reason: reason, by: actor)
        }
        let oldKey: ObjectKey
        do { oldKey = try keys.objectKey(org: org, object: row.blobID) } catch {
            throw DomainError.notFound("recording \(id) not found in organisation \(org)")
        }
        let reader = ChunkReader(keys: keys, blobs: blobs, key: oldKey, row: row)
        let prefix = try await blocking.run { try reader.bytes(from: 0, to: min(UInt64(DeclaredAudio.wavPrefixBytes), row.sizeBytes)) }
        let layout: WAVLayout
        do {
            layout = try WAVLayout(prefix, format: AudioFormat(number: row.format), size: row.sizeBytes)
        } catch let error as DomainError where error.kind == .wrongState {
            throw try await flagUnmutable(row, why: error.message, ranges: ranges, by: actor)
        }
        let mutes = ranges.compactMap { layout.bytes(of: $0) }.merged()
        let newBlob = "\(id)-r\(UUID().uuidString.prefix(8).lowercased())"
        let newKey = try keys.createObjectKey(org: org, object: newBlob)
        let writer = try blobs.create(newBlob)
        var committed = false
        defer {
            if !committed {
                writer.abandon()
                try? blobs.delete(newBlob)
                try? keys.destroyObjectKey(org: org, object: newBlob)
            }
        }
        let (sha, muted) = try await blocking.run { () -> (Data, UInt64) in
            let sealer = ChunkSealer(keys: keys, key: newKey, writer: writer, chunkBytes: RecordingRules.chunkBytes)
            let digest = try SHA256Stream()
            var muted: UInt64 = 0
            var start: UInt64 = 0
            var next = 0  // the first of the sorted, merged ranges not yet passed
            while start < row.sizeBytes {
                let end = min(row.sizeBytes, start + UInt64(row.chunkBytes))
                var plain = try reader.bytes(from: start, to: end)
                while next < mutes.count, mutes[next].upperBound <= start { next += 1 }
                for range in mutes[next...].prefix(while: { $0.lowerBound < end }) {
                    let from = Int(max(range.lowerBound, start) - start), to = Int(min(range.upperBound, end) - start)
                    plain.replaceSubrange(from..<to, with: repeatElement(silence, count: to - from))
                    muted += UInt64(to - from)
                }
                digest.update(plain)
                try sealer.add(plain)
                start = end
            }
            try sealer.finish()
            try writer.commit()
            return (digest.finish(), muted)
        }
        let summary = ranges.map { "\($0.start)-\($0.end)ms" }.joined(separator: ",")
        let replaced = try await repository.write { [outbox] tx -> ContentReplacement in
            let replaced = try tx.replaceBlob(of: id, org: org, replacing: row.blobID, with: newBlob, sha256: sha, sizeBytes: row.sizeBytes)
            guard replaced == .replaced else { return replaced }
            try outbox.record(AuditRecord(org: org, actor: actor, action: .recordingRedacted, resource: .recording(id), outcome: .success,
                                          detail: String("ranges=\(summary)".prefix(900)) + (reason.isEmpty ? "" : "; reason: \(reason)")),
                              in: tx.connection)
            return .replaced
        }
        switch replaced {
        case .replaced: break
        case .gone: throw DomainError.notFound("recording \(id) was deleted meanwhile")
        // Another redaction replaced the file this one muted: storing this one would undo its muting.
        case .changed: throw RPCError(.aborted, "recording \(id) was redacted by another call meanwhile; redact again")
        }
        committed = true
        try keys.destroyObjectKey(org: org, object: row.blobID)
        try await deleteBlobs([row.blobID])
        return (try await recording(id, org: org), muted)
    }

    // MARK: Retention and offboarding (for compliance)

    /// Destroys up to `limit` (0: 500, at most 500) recordings of `org` created before `cutoff`:
    /// rows and share links in one transaction with one audit record, then their keys, then
    /// their files. Returns how many, their bytes, and whether more remain before the cutoff.
    func purge(org: String, createdBefore cutoff: Int64, limit: Int, by actor: String) async throws -> (purged: Int, bytes: UInt64, more: Bool) {
        try OrganizationID.validate(org)
        guard cutoff > 0 else { throw DomainError.invalid("name the cutoff (created_before_unix_ms)") }
        let limit = limit == 0 ? 500 : min(limit, 500)
        let (batch, more) = try await repository.write { [outbox] tx -> ([RecordingRow], Bool) in
            let found = try tx.recordings(org: org, callID: nil, from: nil, before: cutoff, after: nil, limit: limit + 1)
            let batch = Array(found.prefix(limit))
            for row in batch {
                _ = try tx.delete(row.id, org: org)
                try tx.deleteShareLinks(recording: row.id, org: org)
            }
            if !batch.isEmpty {
                try outbox.record(AuditRecord(org: org, actor: actor, action: .recordingsPurged, resource: .organisation(org),
                                              outcome: .success, detail: "count=\(batch.count); created_before=\(cutoff)"), in: tx.connection)
            }
            return (batch, found.count > limit)
        }
        try keys.destroyObjectKeys(org: org, objects: batch.map(\.blobID))
        try await deleteBlobs(batch.map(\.blobID))
        return (batch.count, batch.reduce(0) { $0 + $1.sizeBytes }, more)
    }

    /// Offboarding: every recording, share link, file and key of `org` destroyed, and the
    /// organisation's key shredded (tombstoned: it never gets keys here again). Idempotent.
    func purgeOrganisation(_ org: String, by actor: String) async throws -> (recordings: Int, shareLinks: Int) {
        try OrganizationID.validate(org)
        let (ids, counts) = try await repository.write { [outbox] tx -> ([String], (recordings: Int, shareLinks: Int)) in
            let ids = try tx.blobIDs(org: org)
            let counts = try tx.deleteAll(org: org)
            try outbox.record(AuditRecord(org: org, actor: actor, action: .organisationPurged, resource: .organisation(org),
                                          outcome: .success, detail: "recordings=\(counts.recordings); share_links=\(counts.shareLinks)"),
                              in: tx.connection)
            return (ids, counts)
        }
        try keys.shred(org: org)
        try await deleteBlobs(ids)
        return counts
    }

    /// Removes sealed files, on the blocking pool: a blob store's delete is a system call, or
    /// two requests to an object store, and neither may hold a thread of the cooperative pool.
    /// In a task of its own, so a caller that goes away (a cancelled call) does not stop it halfway.
    func deleteBlobs(_ ids: [String]) async throws {
        guard !ids.isEmpty else { return }
        try await Task { [blocking, blobs] in try await blocking.run { for id in ids { try blobs.delete(id) } } }.value
    }

    // MARK: Sweeps

    /// How long a sweep beside replicas leaves a key or file no recording names: an upload or a
    /// redaction on another replica (or, for the daily sweep, this one) makes its key and writes
    /// its file before the row naming them, and none takes a day.
    static let sweepGrace: Duration = .seconds(86_400)

    /// Removes what an interrupted upload, redaction or deletion left — unfinished files, and
    /// files and keys no recording names (also what a restored database backup no longer
    /// names) — and says what it removed and why, one entry each. With `sparingSince` (Unix
    /// ms), keys made and files written since then are left alone (they may be a write in flight).
    func sweep(sparingSince cutoff: Int64? = nil) throws -> [String] {
        let rows = try repository.allBlobIDs()
        let written = cutoff.map { Date(timeIntervalSince1970: TimeInterval($0) / 1000) }
        var removed = try blobs.removeLeftovers(writtenBefore: written).map { "\($0) (unfinished: its upload or redaction was interrupted)" }
        for name in try written.map(blobs.names(writtenBefore:)) ?? blobs.names() where !rows.contains(name) {
            try blobs.delete(name)
            removed.append("\(name) (no recording names it: its deletion was interrupted, or the database was restored from before it)")
        }
        for (org, object) in try keys.objectKeyIDs(createdBefore: cutoff) where !rows.contains(object) {
            try keys.destroyObjectKey(org: org, object: object)
            removed.append("key of \(object) (no recording names it)")
        }
        return removed
    }
}

/// Reads plaintext byte ranges of a sealed recording; a damaged chunk is DATA_LOSS, never played.
struct ChunkReader: Sendable {
    let reader: SealedBlobReader
    let id: String

    init(keys: KeyRing, blobs: any BlobStore, key: ObjectKey, row: RecordingRow) {
        reader = SealedBlobReader(keys: keys, blobs: blobs, key: key, blob: row.blobID, chunkBytes: row.chunkBytes, sizeBytes: row.sizeBytes)
        id = row.id
    }

    func bytes(from start: UInt64, to end: UInt64) throws -> Data {
        do {
            return try reader.bytes(from: start, to: end)
        } catch let error as SealedBlobReader.Damaged {
            throw DomainError.corrupt("recording \(id) is damaged (chunk \(error.chunk) is missing or failed authentication); nothing altered is played")
        } catch let error as DomainError {
            throw error
        } catch {
            // The store did not answer (an object store's outage): the recording is not damaged.
            throw DomainError.unavailable("recording \(id) cannot be read from its store now; try again")
        }
    }
}

/// The daily sweep: what a crash left while the service ran on (the start-up sweep has run long
/// before), sparing the last day's keys and files, which may be writes in flight.
struct RecordingSweep: PayloadFreeJob { static let kind = "media.sweep" }

/// Runs `media.sweep` on the blocking pool (file and key-store I/O); `removed` hears what went.
struct RecordingSweepJob: DurableJobHandler {
    let rules: RecordingRules
    let removed: @Sendable ([String]) -> Void

    func run(_ work: RecordingSweep, job: Job) async throws -> JobOutcome {
        let cutoff = rules.clock.nowUnixMs - RecordingRules.sweepGrace.wholeMilliseconds
        let swept = try await rules.blocking.run { [rules] in try rules.sweep(sparingSince: cutoff) }
        if !swept.isEmpty { removed(swept) }
        return .done
    }
}

/// A recording is stored: transcript is to be told, so it can queue its transcription.
struct RecordingStored: DurableJob {
    static let kind = "media.recording_stored"
    let org: String
    let recording: String

    /// Releases before typed payloads stored `org\nrecording`.
    static func legacyPayload(_ data: Data) -> RecordingStored? {
        legacyFields(data, count: 2).map { RecordingStored(org: $0[0], recording: $0[1]) }
    }
}

/// Tells transcript that a recording is stored, so it can queue its transcription. A recording
/// deleted meanwhile needs nothing; any failure is retried.
struct RecordingStoredJob: DurableJobHandler {
    let rules: RecordingRules
    let transcript: Calltrace_Transcript_V1_TranscriptServiceClient

    func run(_ work: RecordingStored, job: Job) async throws -> JobOutcome {
        guard let row = try await rules.repository.read({ tx in try tx.recording(work.recording, org: work.org) }) else { return .done }
        do {
            _ = try await transcript.recordingStored(.with {
                $0.orgID = row.org; $0.recordingID = row.id; $0.callID = row.callID; $0.channels = row.channels
            }, options: CallOptions(timeout: .seconds(30), failFast: true))
        } catch let error as RPCError where error.code == .notFound && job.attempts + 1 >= Self.unknownCallAttempts {
            // Transcript's outages are waited out for ever. A call it does not know (the upload
            // was confirmed, so the call was deleted since) only for a while; then the job is
            // dead-lettered with the reason, for the operator (log, metrics, the jobs list).
            throw PermanentJobFailure("transcript does not know call \(row.callID) of recording \(row.id): \(error)")
        }
        return .done
    }

    /// About half an hour of retries (the job queue's backoff: 1 s doubling to 10 minutes) for a call transcript does not know.
    static let unknownCallAttempts = 12
}
