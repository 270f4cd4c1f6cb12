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
    static let buildKind = "bundle.build"
    static let expireKind = "bundle.expire"
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
        row.jobID = try jobs.enqueue(kind: Self.buildKind, idempotencyKey: "bundle:\(row.id)", payload: Data(row.id.utf8), in: tx.connection)
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
            let archive = TarArchive(sink: ChunkSealer(keys: keys, key: key, writer: writer, chunkBytes: Self.chunkBytes))
            try await contents.write(row, into: archive)
            summary = try archive.finish()
            try writer.commit()
            committed = true
        } catch {
            try? keys.destroyObjectKey(org: row.org, object: row.id)
            guard attempt + 1 >= Self.maxAttempts || error is PermanentJobFailure else { throw error }
            row.state = .failed
            row.failure = String("\(error)".prefix(300))
            try await repository.write { [row, outbox] tx in
                try tx.update(row)
                try outbox.record(AuditRecord(org: row.org, actor: "service:compliance", action: .bundleFailed, resource: .bundle(row.id),
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
            try outbox.record(AuditRecord(org: row.org, actor: "service:compliance", action: .bundleReady, resource: .bundle(row.id),
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
                try outbox.record(AuditRecord(org: row.org, actor: "service:compliance", action: .bundleExpired, resource: .bundle(row.id),
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

/// What goes into a bundle of each kind.
struct BundleContents: Sendable {
    let services: any CallDataServices
    let trail: AuditTrail
    let requests: SubjectRequestRules
    /// The offboarding export carries a signed checkpoint of the trail it holds.
    let checkpoints: AuditCheckpoints

    func write(_ bundle: BundleRow, into archive: TarArchive) async throws {
        var about: [String: Any] = [:]
        var calls: [String] = []
        switch bundle.kind {
        case .subjectAccess:
            let request = try await requests.request(bundle.subject, org: bundle.org)
            calls = try await SubjectRequestRules.calls(of: request, services: services).map(\.callID)
            about = ["subject_request": request.id, "received_on": request.receivedOn.description,
                     "phone_numbers": request.details.phoneNumbers.map(PhoneNumber.masked)]
            try archive.add("README.txt", Self.readme(bundle, """
                Everything this firm holds about the data subject through CallTrace: for each call, its record and
                transcript as JSON (call.json) and as text (call.txt), and its recordings in their original format.
                """))
            for call in calls { try await addCall(call, org: bundle.org, folder: "calls/\(Self.entryName(call))/", recordings: true, into: archive) }
        case .matter:
            calls = [bundle.subject]
            about = ["call": bundle.subject, "matter_reference": bundle.matterReference]
            try archive.add("README.txt", Self.readme(bundle, """
                One call for the matter file: its record, transcript and summary as JSON (call.json) and text (call.txt),
                its recordings, and the audit trail's events about it (audit-excerpt.jsonl).
                """))
            guard try await addCall(bundle.subject, org: bundle.org, folder: "", recordings: true, into: archive) else {
                throw PermanentJobFailure("call \(bundle.subject) no longer exists")
            }
            try await addAuditExcerpt(call: bundle.subject, org: bundle.org, into: archive)
        case .offboarding:
            about = ["organisation": bundle.org]
            try archive.add("README.txt", Self.readme(bundle, """
                Everything the organisation kept in CallTrace: every call's record, transcript and summary (calls/),
                every recording in its original format (recordings/), and the whole audit trail as JSON lines
                (audit/trail.jsonl), oldest first, each event with its chain index and link.
                """))
            var token = ""
            repeat {
                let page = try await services.callPage(org: bundle.org, pageToken: token)
                for call in page.ids where try await addCall(call, org: bundle.org, folder: "calls/\(Self.entryName(call))/", recordings: false, into: archive) {
                    calls.append(call)
                }
                token = page.next
            } while !token.isEmpty
            repeat {
                let page = try await services.recordingPage(org: bundle.org, callID: nil, pageToken: token)
                for recording in page.recordings { try await addRecording(recording, org: bundle.org, folder: "recordings/", into: archive) }
                token = page.next
            } while !token.isEmpty
            // Streamed, never held whole (a firm's trail can run to millions of events): a first
            // pass up to today's head measures it for the entry's header, the second writes it.
            // That head is checkpointed (signed with the deployment key), and the checkpoint goes
            // beside the trail, so the firm can show later that what it took away was whole.
            let current = try await checkpoints.current(org: bundle.org, reason: .export)
            let head = current.headIndex
            if let checkpoint = current.checkpoint {
                let document = Data(checkpoint.document.utf8)
                try archive.begin("audit/checkpoint.txt", size: UInt64(document.count))
                try archive.body(document)
                try archive.end()
                about["audit_checkpoint"] = current.withheld
                    ? "the trail no longer matches checkpoint \(checkpoint.id) (event \(checkpoint.index)): verify the trail to see which events are missing"
                    : "audit/checkpoint.txt signs event \(checkpoint.index), the last in audit/trail.jsonl"
            }
            var size: UInt64 = 0
            try await trail.export(org: bundle.org, from: 0, before: 0, through: head) { size += UInt64($0.count) }
            try archive.begin("audit/trail.jsonl", size: size)
            try await trail.export(org: bundle.org, from: 0, before: 0, through: head) { try archive.body($0) }
            try archive.end()
        }
        about["calls"] = calls
        try archive.index(["bundle_id": bundle.id, "kind": BundleRules.name(bundle.kind), "organisation": bundle.org,
                           "created_at": iso(bundle.createdAt), "requested_by": bundle.requestedBy, "about": about])
    }

    /// A call id as a folder name in an archive: leading dots become "%2E" (a call id may be "."
    /// or "..", which would name the folder itself or its parent when unpacked). "%" is never in
    /// a call id, so no two calls share a folder.
    static func entryName(_ callID: String) -> String {
        let dots = callID.prefix { $0 == "." }.count
        return String(repeating: "%2E", count: dots) + callID.dropFirst(dots)
    }

    /// The call's record and transcript, and (with `recordings`) its recordings, under `folder`; false when the call is gone.
    @discardableResult
    private func addCall(_ call: String, org: String, folder: String, recordings: Bool, into archive: TarArchive) async throws -> Bool {
        guard let export = try await services.exportCall(org: org, callID: call) else { return false }
        try archive.add(folder + "call.json", Data(export.json.utf8))
        try archive.add(folder + "call.txt", Data(export.text.utf8))
        guard recordings else { return true }
        var token = ""
        repeat {
            let page = try await services.recordingPage(org: org, callID: call, pageToken: token)
            for recording in page.recordings { try await addRecording(recording, org: org, folder: folder, into: archive) }
            token = page.next
        } while !token.isEmpty
        return true
    }

    private func addRecording(_ recording: Calltrace_Media_V1_Recording, org: String, folder: String, into archive: TarArchive) async throws {
        let ext = switch recording.format {
        case .mp3: "mp3"
        case .opus: "opus"
        case .flac: "flac"
        default: "wav"
        }
        try archive.begin(folder + "\(recording.recordingID).\(ext)", size: recording.sizeBytes)
        try await services.exportRecording(org: org, recordingID: recording.recordingID) { piece in try archive.body(piece) }
        try archive.end()
    }

    private func addAuditExcerpt(call: String, org: String, into archive: TarArchive) async throws {
        var resources = ["call:\(call)"]
        var token = ""
        repeat {
            let page = try await services.recordingPage(org: org, callID: call, pageToken: token)
            resources += page.recordings.map { "recording:\($0.recordingID)" }
            token = page.next
        } while !token.isEmpty
        var events: [Calltrace_Compliance_V1_ChainedAuditEvent] = []
        for resource in resources {
            events += try await trail.list(org: org, filter: .init(resource: resource), pageSize: 500, pageToken: "").events
        }
        let lines = try events.sorted { $0.chainIndex < $1.chainIndex }.map { try $0.jsonString() + "\n" }.joined()
        try archive.add("audit-excerpt.jsonl", Data(lines.utf8))
    }

    static func readme(_ bundle: BundleRow, _ body: String) -> Data {
        Data("""
            CallTrace \(BundleRules.name(bundle.kind)) \(bundle.id)
            Organisation \(bundle.org), made \(iso(bundle.createdAt)) for \(bundle.requestedBy).

            \(body)

            index.json, the last entry, lists every other entry with its size in bytes and its SHA-256.

            """.utf8)
    }
}

func iso(_ ms: Int64) -> String {
    ms == 0 ? "" : ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
}

/// A tar (ustar) archive written as it goes into a `ChunkSealer`; each entry's size and
/// SHA-256 are kept for the index document that ends it.
final class TarArchive: @unchecked Sendable {
    struct Summary { let size: UInt64, sha256: String, entries: Int }

    private let sink: ChunkSealer
    private let whole: SHA256Stream
    private var entry: (path: String, size: UInt64, written: UInt64, digest: SHA256Stream)?
    private var listed: [[String: Any]] = []
    private var size: UInt64 = 0

    init(sink: ChunkSealer) {
        self.sink = sink
        whole = try! SHA256Stream()
    }

    func add(_ path: String, _ data: Data) throws {
        try begin(path, size: UInt64(data.count))
        try body(data)
        try end()
    }

    func begin(_ path: String, size: UInt64) throws {
        precondition(entry == nil, "an entry is already open")
        try emit(try Self.header(path: path, size: size))
        entry = (path, size, 0, try SHA256Stream())
    }

    func body(_ data: Data) throws {
        guard var open = entry else { preconditionFailure("no entry is open") }
        open.written += UInt64(data.count)
        guard open.written <= open.size else { throw PermanentJobFailure("\(open.path) is longer than its stated \(open.size) bytes") }
        open.digest.update(data)
        entry = open
        try emit(data)
    }

    func end() throws {
        guard let open = entry else { preconditionFailure("no entry is open") }
        guard open.written == open.size else { throw RetryLater("\(open.path) ended after \(open.written) of \(open.size) bytes", after: .seconds(1)) }
        let padding = Int((512 - open.size % 512) % 512)
        if padding > 0 { try emit(Data(count: padding)) }
        listed.append(["path": open.path, "bytes": open.size, "sha256": open.digest.finish().hexString])
        entry = nil
    }

    /// Adds index.json (`fields` and the entries so far) and the archive's end.
    func index(_ fields: [String: Any]) throws {
        var document = fields
        document["entries"] = listed
        try add("index.json", try JSONSerialization.data(withJSONObject: document, options: [.prettyPrinted, .sortedKeys]))
    }

    func finish() throws -> Summary {
        try emit(Data(count: 1024))
        try sink.finish()
        return Summary(size: size, sha256: whole.finish().hexString, entries: listed.count)
    }

    private func emit(_ data: Data) throws {
        whole.update(data)
        size += UInt64(data.count)
        try sink.add(data)
    }

    /// A ustar header: names longer than 100 bytes are split into prefix and name at a '/'.
    static func header(path: String, size: UInt64) throws -> Data {
        var name = Array(path.utf8), prefix: [UInt8] = []
        if name.count > 100 {
            guard let slash = name.indices.reversed().first(where: { name[$0] == UInt8(ascii: "/") && $0 <= 155 && name.count - $0 - 1 <= 100 }) else {
                throw PermanentJobFailure("the path \(path) is too long for the archive")
            }
            prefix = Array(name[..<slash])
            name = Array(name[(slash + 1)...])
        }
        var block = [UInt8](repeating: 0, count: 512)
        func put(_ bytes: [UInt8], at offset: Int) { for (i, byte) in bytes.enumerated() { block[offset + i] = byte } }
        func octal(_ value: UInt64, width: Int) -> [UInt8] { Array(String(String(value, radix: 8)).leftPadded(to: width - 1).utf8) + [0] }
        put(name, at: 0)
        put(octal(0o600, width: 8), at: 100)
        put(octal(0, width: 8), at: 108)
        put(octal(0, width: 8), at: 116)
        put(octal(size, width: 12), at: 124)
        put(octal(0, width: 12), at: 136)
        put(Array("        ".utf8), at: 148)  // the checksum counts itself as spaces
        block[156] = UInt8(ascii: "0")
        put(Array("ustar".utf8) + [0] + Array("00".utf8), at: 257)
        put(prefix, at: 345)
        let checksum = block.reduce(0) { $0 + UInt64($1) }
        put(Array(String(checksum, radix: 8).leftPadded(to: 6).utf8) + [0, UInt8(ascii: " ")], at: 148)
        return Data(block)
    }
}

extension String {
    func leftPadded(to width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}

struct BundleJob: JobHandler {
    let rules: BundleRules
    let contents: BundleContents
    var kind: String { BundleRules.buildKind }

    func run(_ job: Job) async throws -> JobOutcome {
        try await rules.build(String(decoding: job.payload, as: UTF8.self), attempt: job.attempts, contents: contents)
        return .done
    }
}

struct BundleExpiryJob: JobHandler {
    let rules: BundleRules
    var kind: String { BundleRules.expireKind }

    func run(_ job: Job) async throws -> JobOutcome {
        _ = try await rules.expire()
        return .done
    }
}

/// `calltrace.compliance.v1.BundleService`: the permission of the bundle's kind.
struct BundleHandler: Calltrace_Compliance_V1_BundleServiceHandler {
    let rules: BundleRules
    let authorizer: any Authorizing
    let policies = Calltrace_Compliance_V1_BundleServicePolicies(getBundle: .gateways | .operators, downloadBundle: .gateways | .operators)

    /// Org checked and annotated first, so a foreign org's bundle id says nothing.
    private func readable(_ id: String, org: String, context: ServerContext) async throws -> (BundleRow, String) {
        try OrganizationID.validate(org)
        context.annotate(org: org)
        // The route check comes before the bundle is looked up, with the strictest permission
        // when the id is unknown, so nobody learns which ids exist.
        let found = try? await rules.bundle(id, org: org)
        let who = try await context.principal(in: org, may: found.map { BundleRules.permission(of: $0.kind) } ?? .orgOffboard, via: authorizer)
        guard let found else { throw DomainError.notFound("bundle \(id.prefix(64)) not found in organisation \(org)") }
        return (found, who.actor)
    }

    func getBundle(_ request: Calltrace_Compliance_V1_GetBundleRequest, context: ServerContext) async throws -> Calltrace_Compliance_V1_GetBundleResponse {
        let (row, _) = try await readable(request.bundleID, org: request.orgID, context: context)
        return .with { $0.bundle = Self.proto(row) }
    }

    func downloadBundle(_ request: Calltrace_Compliance_V1_DownloadBundleRequest, responses: ResponseWriter<Calltrace_Compliance_V1_DownloadBundleResponse>,
                        context: ServerContext) async throws {
        let (_, actor) = try await readable(request.bundleID, org: request.orgID, context: context)
        try await rules.download(request.bundleID, org: request.orgID, by: actor) { row, offset, data in
            try await responses.send(.with {
                if offset == 0 { $0.bundle = Self.proto(row) }
                $0.offset = offset
                $0.data = data
            })
        }
    }

    static func proto(_ row: BundleRow) -> Calltrace_Compliance_V1_Bundle {
        .with {
            $0.bundleID = row.id; $0.orgID = row.org; $0.kind = .init(rawValue: row.kind.rawValue) ?? .unspecified
            $0.state = .init(rawValue: row.state.rawValue) ?? .unspecified; $0.subject = row.subject; $0.createdAtUnixMs = row.createdAt
            $0.readyAtUnixMs = row.readyAt; $0.expiresAtUnixMs = row.expiresAt; $0.sizeBytes = row.sizeBytes; $0.sha256 = row.sha256
            $0.entries = UInt32(row.entries); $0.failureReason = row.failure; $0.downloads = UInt32(row.downloads)
        }
    }
}
