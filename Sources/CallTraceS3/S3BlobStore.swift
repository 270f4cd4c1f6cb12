public import CallTraceStorage
public import Foundation

/// Blobs as objects in an S3-compatible bucket, under the location's prefix: `BlobStore` for a
/// deployment that keeps recordings off the service's disk. What is stored is what the file
/// store holds: chunks sealed before they reach it (`ChunkSealer`), so the object store never
/// sees plaintext, and destroying a recording's key still shreds it wherever a copy lies.
///
/// - A blob is written as a multipart upload of `partBytes` parts, so at most one part is in
///   memory whatever the recording's size; one smaller than a part is a single PUT. Neither is
///   visible until committed: S3 shows an object only once its PUT or its upload's completion
///   succeeded.
/// - Reads are ranged GETs, checked for the length asked.
/// - A delete is confirmed by asking for the object again and finding it gone.
/// - `removeLeftovers` abandons the uploads begun more than `leftoverAge` ago (and before the
///   cutoff given) and never finished (a process that died mid-upload); younger ones may be
///   another replica's, in flight.
///   A bucket lifecycle rule aborting incomplete uploads after a day does the same for a bucket.
///
/// Every call blocks its thread for a transfer: callers already run blob I/O on a `BlockingPool`.
public struct S3BlobStore: BlobStore {
    public let client: S3Client
    public let partBytes: Int
    public let leftoverAge: TimeInterval

    /// S3's smallest part but the last.
    public static let minimumPartBytes = 5 << 20

    public init(client: S3Client, partBytes: Int = 8 << 20, leftoverAge: TimeInterval = 86_400) throws {
        guard partBytes >= Self.minimumPartBytes, partBytes <= 1 << 30 else {
            throw S3Error("an upload part must be 5 MiB to 1 GiB, not \(partBytes) bytes")
        }
        self.client = client
        self.partBytes = partBytes
        self.leftoverAge = leftoverAge
    }

    private func key(_ name: String) throws -> String {
        try BlobName.check(name)
        return client.location.prefix + name
    }

    public func create(_ name: String) throws -> any BlobWriter {
        S3BlobWriter(client: client, key: try key(name), partBytes: partBytes)
    }

    /// What marks the prefix as one deployment's (not a plain blob name: `names` never lists it).
    static let ownerObject = "calltrace.owner"

    /// Binds the prefix to `owner` (media's key-store id): writes it on first use, and refuses a
    /// prefix another deployment holds — the start-up sweep deletes every blob its own database
    /// does not name, so a second deployment (a staging copy, a restored test) pointed at a
    /// bucket and prefix in use would delete the first one's recordings. Replicas of one
    /// deployment share the key store, and so the owner.
    public func claim(owner: String) throws {
        let key = client.location.prefix + Self.ownerObject
        if let found = try client.getSmallObject(key) {
            guard String(decoding: found, as: UTF8.self) == owner else {
                throw S3Error("\(client.location) holds another deployment's recordings (its \(Self.ownerObject) names another key store): "
                              + "give each deployment a bucket or prefix of its own")
            }
        } else {
            try client.putObject(key, Data(owner.utf8))
        }
    }

    public func read(_ name: String, offset: Int64, length: Int) throws -> Data {
        guard length > 0 else { return Data() }
        guard let data = try client.getObject(try key(name), offset: offset, length: length) else {
            throw BlobError("blob \(name) cannot be opened: it is not in the object store")
        }
        return data
    }

    public func delete(_ name: String) throws {
        let key = try key(name)
        try client.deleteObject(key)
        guard try !client.exists(key) else { throw BlobError("blob \(name) is still in the object store after its deletion") }
    }

    public func names() throws -> [String] {
        let prefix = client.location.prefix
        return try client.listKeys(prefix: prefix).map { String($0.dropFirst(prefix.count)) }.filter { (try? BlobName.check($0)) != nil }
    }

    /// An object whose time the store did not give counts as young.
    public func names(writtenBefore cutoff: Date) throws -> [String] {
        let prefix = client.location.prefix
        return try client.listObjects(prefix: prefix).filter { $0.modified.map { $0 < cutoff } ?? false }
            .map { String($0.key.dropFirst(prefix.count)) }.filter { (try? BlobName.check($0)) != nil }
    }

    /// Never an upload younger than `leftoverAge`, whatever the cutoff.
    public func removeLeftovers(writtenBefore given: Date?) throws -> [String] {
        let prefix = client.location.prefix, cutoff = min(given ?? .distantFuture, Date().addingTimeInterval(-leftoverAge))
        let stale = try client.listUploads(prefix: prefix).filter { upload in upload.initiated.map { $0 < cutoff } ?? false }
        for upload in stale { try client.abortUpload(upload.key, upload: upload.id) }
        return stale.map { String($0.key.dropFirst(prefix.count)) }.sorted()
    }
}

/// Used by one upload at a time.
final class S3BlobWriter: BlobWriter, @unchecked Sendable {
    private let client: S3Client
    private let key: String
    private let partBytes: Int
    /// Bytes not yet sent: less than a part.
    private var pending = Data()
    /// The multipart upload, begun when the first part is full.
    private var upload: String?
    private var etags: [String] = []
    private var finished = false

    init(client: S3Client, key: String, partBytes: Int) {
        self.client = client
        self.key = key
        self.partBytes = partBytes
    }

    deinit { abandon() }

    func append(_ data: Data) throws {
        guard !finished else { throw BlobError("blob already closed") }
        pending.append(data)
        while pending.count >= partBytes {
            try send(Data(pending.prefix(partBytes)))
            pending = Data(pending.dropFirst(partBytes))
        }
    }

    private func send(_ part: Data) throws {
        let upload = try self.upload ?? client.startUpload(key)
        self.upload = upload
        etags.append(try client.uploadPart(key, upload: upload, number: etags.count + 1, part))
    }

    func commit() throws {
        guard !finished else { throw BlobError("blob already closed") }
        do {
            if let upload {
                if !pending.isEmpty { try send(pending) }
                try client.completeUpload(key, upload: upload, etags: etags)
            } else {
                try client.putObject(key, pending)
            }
        } catch {
            abandon()
            throw error
        }
        finished = true
        pending = Data()
    }

    func abandon() {
        guard !finished else { return }
        finished = true
        pending = Data()
        if let upload { try? client.abortUpload(key, upload: upload) }
    }
}
