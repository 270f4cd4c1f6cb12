import CallTraceAPI
import CallTraceKeys
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceStorage
import Foundation
import SwiftProtobuf

/// Exported bundles — a subject's access bundle (P13), an organisation's offboarding export
/// (P11), a matter file (P14) — built as durable jobs into tar archives, sealed at rest in
/// chunks under a key of their own (wrapped by the organisation's key), streamed to whoever
/// holds the permission of their kind, audited, and destroyed when they expire.
struct BundleRules: Sendable {
    /// How long a ready bundle can be fetched.
    static let lifetime: Int64 = 7 * 86_400_000
    static let chunkBytes = 256 << 10
    /// Attempts before a bundle is given up as failed (its reason shown).
    static let maxAttempts = 8

    let repository: any ComplianceRepository
    let jobs: JobQueue
    let outbox: AuditOutbox
    let clock: any WallClock
    let keys: KeyRing
    let blobs: any BlobStore
    /// Matter files asked with delete-after are followed by the call's deletion.
    let deletions: DeletionRules

    /// Inside the caller's transaction: a bundle of `kind` for `subject`, or the one already
    /// building or ready for it.
    func queue(_ kind: BundleRow.Kind, org: String, subject: String, by actor: String, matterReference: String = "", deleteAfter: Bool = false,
               in tx: any ComplianceTransaction) throws -> BundleRow {
        if var live = try tx.liveBundle(org: org, kind: kind, subject: subject) {
            // The same export asked again, now to be followed by the call's deletion: the bundle
            // is shared, the deletion is not skipped (queued once it is ready, or now if it is).
            if deleteAfter && !live.deleteAfter {
                live.deleteAfter = true
                try tx.update(live)
                if live.state == .ready {
                    _ = try deletions.queue(subject, org: org, reason: "exported to matter \(matterReference)", request: "", by: actor, in: tx)
                }
            }
            return live
        }
        var row = BundleRow(id: "bun_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""), org: org, kind: kind,
                            subject: subject, state: .building, requestedBy: actor, createdAt: clock.nowUnixMs, matterReference: matterReference,
                            deleteAfter: deleteAfter)
        row.jobID = try jobs.enqueue(BundleBuild(id: row.id), idempotencyKey: "bundle:\(row.id)", in: tx.connection)
        try tx.insert(row)
        try outbox.record(AuditRecord(org: org, actor: actor, action: .bundleRequested, resource: .bundle(row.id), outcome: .success,
                                      detail: "\(Self.name(kind)) of \(subject)"), in: tx.connection)
        return row
    }

    /// The bundle, if it belongs to `org` and is of a kind the caller may read.
    func bundle(_ id: String, org: String) async throws -> BundleRow {
        try OrganizationID.validate(org)
        guard let row = try await repository.read({ tx in try tx.bundle(id) }), row.org == org else {
            throw DomainError.notFound("bundle \(id.prefix(64)) not found in organisation \(org)")
        }
        return row
    }

    static func permission(of kind: BundleRow.Kind) -> Calltrace_Identity_V1_Permission {
        switch kind {
        case .subjectAccess: .requestsManage
        case .offboarding: .orgOffboard
        case .matter: .mattersExport
        }
    }

    static func name(_ kind: BundleRow.Kind) -> String {
        switch kind {
        case .subjectAccess: "subject-access bundle"
        case .offboarding: "offboarding export"
        case .matter: "matter file"
        }
    }

    // MARK: Building

    /// Builds the bundle afresh (a retry starts over): the archive is sealed chunk by chunk as
    /// its entries arrive, committed, and only then marked ready.
    func build(_ id: String, attempt: Int, contents: BundleContents) async throws {
        guard var row = try await repository.read({ tx in try tx.bundle(id) }), row.state == .building else { return }
        try? blobs.delete(row.id)
        try? keys.destroyObjectKey(org: row.org, object: row.id)
        let summary: TarArchive.Summary
        do {
            let key = try keys.createObjectKey(org: row.org, object: row.id)
            let writer = try blobs.create(row.id)
            var committed = false
            defer { if !committed { writer.abandon() } }
            let archive = try TarArchive(sink: ChunkSealer(keys: keys, key: key, writer: writer, chunkBytes: Self.chunkBytes)) { try SHA256Stream() }
            try await contents.write(row, into: archive)
            summary = try archive.finish()
            try writer.commit()
            committed = true
        } catch {
            let error = (error as? TarWriter.Failure)?.jobFailure ?? error
            try? keys.destroyObjectKey(org: row.org, object: row.id)
            guard attempt + 1 >= Self.maxAttempts || error is PermanentJobFailure else { throw error }
            row.state = .failed
            row.failure = String("\(error)".prefix(300))
            try await repository.write { [row, outbox] tx in
                try tx.update(row)
                try outbox.record(AuditRecord(org: row.org, actor: ComplianceService.actor, action: .bundleFailed, resource: .bundle(row.id),
                                              outcome: .failed, detail: row.failure), in: tx.connection)
            }
            return
        }
        row.state = .ready
        row.readyAt = clock.nowUnixMs
        row.expiresAt = row.readyAt + Self.lifetime
        row.sizeBytes = summary.size
        row.sha256 = summary.sha256
        row.entries = summary.entries
        try await repository.write { [row, outbox, deletions] tx in
            var row = row
            // Delete-after may have been asked while the bundle was building (`queue`): the stored flag counts.
            row.deleteAfter = try row.deleteAfter || (tx.bundle(row.id)?.deleteAfter ?? false)
            try tx.update(row)
            try outbox.record(AuditRecord(org: row.org, actor: ComplianceService.actor, action: .bundleReady, resource: .bundle(row.id),
                                          outcome: .success, detail: "\(Self.name(row.kind)); \(row.entries) entries, \(row.sizeBytes) bytes"),
                              in: tx.connection)
            if row.kind == .matter && row.deleteAfter {
                _ = try deletions.queue(row.subject, org: row.org, reason: "exported to matter \(row.matterReference)", request: "",
                                        by: row.requestedBy, in: tx)
            }
        }
    }

    // MARK: Reading

    /// Streams the archive in pieces of `chunkBytes`; audited.
    func download(_ id: String, org: String, by actor: String, send: (BundleRow, UInt64, Data) async throws -> Void) async throws {
        var row = try await bundle(id, org: org)
        switch row.state {
        case .building: throw DomainError.wrongState("bundle \(id) is still being built")
        case .failed: throw DomainError.wrongState("bundle \(id) failed: \(row.failure)")
        case .expired: throw DomainError.wrongState("bundle \(id) expired and was destroyed; ask for a new one")
        case .ready: break
        }
        guard row.expiresAt > clock.nowUnixMs else { throw DomainError.wrongState("bundle \(id) expired; ask for a new one") }
        row.downloads += 1
        try await repository.write { [row, outbox] tx in
            try tx.update(row)
            try outbox.record(AuditRecord(org: org, actor: actor, action: .bundleDownloaded, resource: .bundle(id), outcome: .success,
                                          detail: Self.name(row.kind)), in: tx.connection)
        }
        let reader = SealedBlobReader(keys: keys, blobs: blobs, key: try keys.objectKey(org: org, object: id), blob: id,
                                      chunkBytes: Self.chunkBytes, sizeBytes: row.sizeBytes)
        var offset: UInt64 = 0
        repeat {
            let end = min(row.sizeBytes, offset + UInt64(Self.chunkBytes))
            let piece: Data
            do { piece = try reader.bytes(from: offset, to: end) } catch is SealedBlobReader.Damaged {
                throw DomainError.corrupt("bundle \(id) is damaged; ask for a new one")
            }
            try await send(row, offset, piece)
            offset = end
        } while offset < row.sizeBytes
    }

    // MARK: Expiry and offboarding

    /// Destroys the files and keys of bundles whose time is up.
    func expire() async throws -> Int {
        let due = try await repository.read { [clock] tx in try tx.expiredBundles(at: clock.nowUnixMs) }
        for var row in due {
            try keys.destroyObjectKey(org: row.org, object: row.id)
            try blobs.delete(row.id)
            row.state = .expired
            try await repository.write { [row, outbox] tx in
                try tx.update(row)
                try outbox.record(AuditRecord(org: row.org, actor: ComplianceService.actor, action: .bundleExpired, resource: .bundle(row.id),
                                              outcome: .success), in: tx.connection)
            }
        }
        return due.count
    }

    /// Every bundle file of `org` removed (offboarding; its keys go with the organisation's).
    func removeFiles(org: String) async throws {
        for row in try await repository.read({ tx in try tx.bundles(org: org) }) { try blobs.delete(row.id) }
    }
}
