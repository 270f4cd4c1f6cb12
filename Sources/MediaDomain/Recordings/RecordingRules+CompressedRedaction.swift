import CallTraceKeys
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceStorage
import Foundation

extension RecordingRules {
    /// Mutes `ranges` of an MP3, Opus (or FLAC, muted before) recording: decoded as it is read
    /// from the sealed store, the ranges' samples set to zero, and stored as 16-bit FLAC, a new
    /// version sealed under a new key; the row takes the FLAC file's format, rate, channels,
    /// duration, size and SHA-256, then the old version's key and file are destroyed.
    ///
    /// ```
    /// sealed original ──open──▶ libsndfile ──mute──▶ FLAC encoder ──seal──▶ <id>-m… (scratch)
    ///                                                     │ STREAMINFO rewritten at its end:
    ///                                                     ▼ kept as a patch
    /// <id>-m… ──open, patch, SHA-256──▶ seal ──▶ <id>-r… (the new version) ──▶ row
    /// ```
    /// The scratch version exists because the FLAC encoder rewrites its header when it finishes
    /// and sealed chunks are written once, in order: audio is never on disk unsealed, and only one
    /// chunk of it is in memory at a time. The scratch file and its key go in every case.
    ///
    /// - Throws: FAILED_PRECONDITION when the file cannot be muted; the recording is then flagged
    ///   (`flagUnmutable`). ABORTED when another redaction replaced the file meanwhile.
    func redactCompressed(_ row: RecordingRow, ranges: [(start: UInt64, end: UInt64)], reason: String, by actor: String) async throws
        -> (row: RecordingRow, muted: UInt64) {
        let format = AudioFormat(number: row.format)
        guard let kind = CompressedAudio.Kind(format) else {
            throw try await flagUnmutable(row, why: "its format (\(format)) is not one media can decode", ranges: ranges, by: actor)
        }
        let oldKey: ObjectKey
        do { oldKey = try keys.objectKey(org: row.org, object: row.blobID) } catch {
            throw DomainError.notFound("recording \(row.id) not found in organisation \(row.org)")
        }
        let reader = ChunkReader(keys: keys, blobs: blobs, key: oldKey, row: row)
        let version = UUID().uuidString.prefix(8).lowercased()
        let scratchBlob = "\(row.id)-m\(version)", newBlob = "\(row.id)-r\(version)"
        let (org, chunkBytes) = (row.org, RecordingRules.chunkBytes)
        let scratchKey = try keys.createObjectKey(org: org, object: scratchBlob)
        let newKey: ObjectKey
        let scratch: any BlobWriter, writer: any BlobWriter
        var committed = false
        defer {
            try? blobs.delete(scratchBlob)
            try? keys.destroyObjectKey(org: org, object: scratchBlob)
            if !committed {
                try? blobs.delete(newBlob)
                try? keys.destroyObjectKey(org: org, object: newBlob)
            }
        }
        newKey = try keys.createObjectKey(org: org, object: newBlob)
        scratch = try blobs.create(scratchBlob)
        defer { scratch.abandon() }
        writer = try blobs.create(newBlob)
        defer { if !committed { writer.abandon() } }

        let encoded: (muted: CompressedAudio.Muted, size: UInt64, sha256: Data)
        do {
            encoded = try await blocking.run { [keys, blobs] in
                let scratchSealer = ChunkSealer(keys: keys, key: scratchKey, writer: scratch, chunkBytes: chunkBytes)
                let sink = AudioSink { try scratchSealer.add($0) }
                let source = AudioSource(length: row.sizeBytes, chunkBytes: row.chunkBytes) { try reader.bytes(from: $0, to: $1) }
                let muted = try CompressedAudio.mute(kind, ranges: ranges, source: source, into: sink)
                try scratchSealer.finish()
                try scratch.commit()
                // The scratch version, its patches laid over it, sealed again as the new version.
                let encoded = SealedBlobReader(keys: keys, blobs: blobs, key: scratchKey, blob: scratchBlob, chunkBytes: chunkBytes,
                                               sizeBytes: sink.length)
                let sealer = ChunkSealer(keys: keys, key: newKey, writer: writer, chunkBytes: chunkBytes)
                let digest = try SHA256Stream()
                var start: UInt64 = 0
                while start < sink.length {
                    let end = min(sink.length, start + UInt64(chunkBytes))
                    var plain = try encoded.bytes(from: start, to: end)
                    sink.patch(&plain, at: start)
                    digest.update(plain)
                    try sealer.add(plain)
                    start = end
                }
                try sealer.finish()
                try writer.commit()
                return (muted, sink.length, digest.finish())
            }
        } catch let error as CompressedAudio.Undecodable {
            throw try await flagUnmutable(row, why: error.reason, ranges: ranges, by: actor)
        }
        let summary = ranges.map { "\($0.start)-\($0.end)ms" }.joined(separator: ",")
        let muted = encoded.muted
        let content = RecordingContent(blobID: newBlob, format: AudioFormat.flac.rawValue, sampleRate: muted.sampleRate,
                                       channels: muted.channels, durationMs: muted.durationMs, sizeBytes: encoded.size, sha256: encoded.sha256)
        let outcome = try await repository.write { [outbox] tx -> ContentReplacement in
            let replaced = try tx.replaceContent(of: row.id, org: org, replacing: row.blobID, with: content)
            guard replaced == .replaced else { return replaced }
            try outbox.record(AuditRecord(org: org, actor: actor, action: .recordingRedacted, resource: .recording(row.id), outcome: .success,
                                          detail: String("ranges=\(summary)".prefix(900)) + "; stored as FLAC (was \(kind.name))"
                                              + (reason.isEmpty ? "" : "; reason: \(reason)")),
                              in: tx.connection)
            return .replaced
        }
        switch outcome {
        case .replaced: break
        case .gone: throw DomainError.notFound("recording \(row.id) was deleted meanwhile")
        case .changed: throw RPCError(.aborted, "recording \(row.id) was redacted by another call meanwhile; redact again")
        }
        committed = true
        try keys.destroyObjectKey(org: org, object: row.blobID)
        try await deleteBlobs([row.blobID])
        return (try await recording(row.id, org: org), muted.mutedBytes)
    }

    /// Flags a recording that cannot be muted — `redaction_state` FAILED with `why`, shown by
    /// GetRecording and ListRecordings, and a `recording.redaction_failed` audit event for the
    /// firm — and returns the FAILED_PRECONDITION that says so. Its audio is left as it was.
    func flagUnmutable(_ row: RecordingRow, why: String, ranges: [(start: UInt64, end: UInt64)], by actor: String) async throws -> DomainError {
        let summary = ranges.map { "\($0.start)-\($0.end)ms" }.joined(separator: ",")
        let why = String(why.prefix(300))
        try await repository.write { [outbox] tx in
            guard try tx.markRedactionFailed(row.id, org: row.org, reason: why) else { return }
            try outbox.record(AuditRecord(org: row.org, actor: actor, action: .recordingRedactionFailed, resource: .recording(row.id),
                                          outcome: .failed, detail: String("could not be muted: \(why); ranges=\(summary)".prefix(1000))),
                              in: tx.connection)
        }
        return DomainError.wrongState("recording \(row.id) cannot be muted: \(why); it is flagged (redaction_state FAILED)")
    }
}
