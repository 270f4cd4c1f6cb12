import CCallTraceShims
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Where sealed files live (media's recordings, compliance's bundles). The local filesystem is
/// the default (`FileBlobStore`); an S3-compatible bucket is the other (`S3BlobStore`, in CallTraceS3).
///
/// A blob is written through a `BlobWriter` and is invisible until committed; a writer that is
/// abandoned (or a process that dies mid-write) leaves only a leftover that
/// `removeLeftovers()` deletes at start-up.
///
/// Several replicas may share one store: a sweep then judges only what was last written before
/// a cutoff (`writtenBefore`), since a younger leftover, or a committed blob no row names yet,
/// may be another replica's write in flight.
public protocol BlobStore: Sendable {
    func create(_ name: String) throws -> any BlobWriter
    /// `length` bytes from `offset` of a committed blob.
    func read(_ name: String, offset: Int64, length: Int) throws -> Data
    /// Removes a committed blob; one that is not there is not an error.
    func delete(_ name: String) throws
    /// The names of committed blobs.
    func names() throws -> [String]
    /// The names of committed blobs last written before `cutoff`.
    func names(writtenBefore cutoff: Date) throws -> [String]
    /// Deletes what uncommitted writers left behind (with `writtenBefore`, only what was last
    /// written before then); returns the names removed.
    func removeLeftovers(writtenBefore cutoff: Date?) throws -> [String]
}

extension BlobStore {
    /// Deletes every leftover of an uncommitted writer: for a store no other process writes.
    public func removeLeftovers() throws -> [String] { try removeLeftovers(writtenBefore: nil) }
}

public protocol BlobWriter: AnyObject, Sendable {
    func append(_ data: Data) throws
    /// Makes the blob durable and visible, in that order: data synced, then renamed into place,
    /// then the folder synced.
    func commit() throws
    /// Forgets the blob (an upload refused or interrupted).
    func abandon()
}

/// A blob-store failure: names the blob and the reason, never contents.
public struct BlobError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A blob's name: a plain identifier (letters, digits, '_' and '-'; at most 128), so it is a
/// file name or an object key as it stands, and never a path.
public enum BlobName {
    public static func check(_ name: String) throws {
        // Checked byte by byte: this runs on every read of a playback.
        guard !name.isEmpty, name.utf8.count <= 128, name.utf8.allSatisfy({ byte in
            (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) || byte == 0x5F || byte == 0x2D
        }) else {
            throw BlobError("blob name is not a plain identifier")
        }
    }
}

/// Blobs as files in one folder (mode 0700, files 0600): `<name>` when committed,
/// `<name>.partial` while written.
public struct FileBlobStore: BlobStore {
    public let folder: String
    static let partialSuffix = ".partial"

    /// Creates the folder if needed.
    public init(folder: String) throws {
        self.folder = folder
        var isFolder: ObjCBool = false
        if !FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder) {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } else if !isFolder.boolValue {
            throw BlobError("blob_store \(folder) is not a folder")
        }
        guard access(folder, W_OK) == 0 else { throw BlobError("blob_store \(folder) is not writable") }
    }

    private func path(_ name: String) throws -> String {
        try BlobName.check(name)
        return folder + "/" + name
    }

    public func create(_ name: String) throws -> any BlobWriter {
        let final = try path(name)
        let partial = final + Self.partialSuffix
        let fd = open(partial, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw BlobError("cannot create blob \(name): \(String(cString: strerror(errno)))") }
        return FileBlobWriter(fd: fd, partial: partial, final: final, folder: folder)
    }

    public func read(_ name: String, offset: Int64, length: Int) throws -> Data {
        let fd = open(try path(name), O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw BlobError("blob \(name) cannot be opened: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var data = Data(count: length)
        var done = 0
        while done < length {
            let n = data.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, length - done, off_t(offset) + off_t(done)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw BlobError("blob \(name) is shorter than expected (truncated)") }
            done += n
        }
        return data
    }

    public func delete(_ name: String) throws {
        guard unlink(try path(name)) == 0 || errno == ENOENT else {
            throw BlobError("blob \(name) cannot be deleted: \(String(cString: strerror(errno)))")
        }
        syncFolder(folder)
    }

    public func names() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: folder).filter { !$0.hasSuffix(Self.partialSuffix) }
    }

    public func names(writtenBefore cutoff: Date) throws -> [String] {
        try names().filter { name in modified(name).map { $0 < cutoff } ?? false }
    }

    public func removeLeftovers(writtenBefore cutoff: Date?) throws -> [String] {
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: folder).filter { name in
            name.hasSuffix(Self.partialSuffix) && (cutoff.map { cutoff in modified(name).map { $0 < cutoff } ?? false } ?? true)
        }.sorted()
        for name in leftovers { unlink(folder + "/" + name) }
        if !leftovers.isEmpty { syncFolder(folder) }
        return leftovers
    }
}

extension FileBlobStore {
    /// When the file `name` was last written; nil when it is gone (or cannot be read).
    private func modified(_ name: String) -> Date? {
        var info = stat()
        guard lstat(folder + "/" + name, &info) == 0 else { return nil }
        return Date(timeIntervalSince1970: TimeInterval(info.st_mtim.tv_sec) + TimeInterval(info.st_mtim.tv_nsec) / 1e9)
    }
}

private func syncFolder(_ folder: String) {
    let fd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard fd >= 0 else { return }
    _ = fsync(fd)
    close(fd)
}

/// Used by one upload at a time.
final class FileBlobWriter: BlobWriter, @unchecked Sendable {
    private var fd: Int32
    private let partial: String
    private let final: String
    private let folder: String

    init(fd: Int32, partial: String, final: String, folder: String) {
        self.fd = fd
        self.partial = partial
        self.final = final
        self.folder = folder
    }

    deinit { abandon() }

    /// Bytes written, and how far writeback has been started.
    private var written: Int64 = 0
    private var flushed: Int64 = 0
    /// Writeback starts every this many bytes, overlapping the disk with the upload, so the
    /// fsync at commit waits for little.
    static let writebackStep: Int64 = 8 << 20

    func append(_ data: Data) throws {
        var done = 0
        while done < data.count {
            let n = data.withUnsafeBytes { write(fd, $0.baseAddress! + done, data.count - done) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw BlobError("cannot write blob: \(String(cString: strerror(errno)))") }
            done += n
        }
        written += Int64(data.count)
        if written - flushed >= Self.writebackStep {
            _ = ctshim_start_writeback(fd, flushed, written - flushed)
            flushed = written
        }
    }

    func commit() throws {
        guard fd >= 0 else { throw BlobError("blob already closed") }
        guard fsync(fd) == 0 else { throw BlobError("cannot sync blob: \(String(cString: strerror(errno)))") }
        close(fd)
        fd = -1
        guard rename(partial, final) == 0 else { throw BlobError("cannot commit blob: \(String(cString: strerror(errno)))") }
        syncFolder(folder)
    }

    func abandon() {
        if fd >= 0 {
            close(fd)
            fd = -1
            unlink(partial)
        }
    }
}
