import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A service's master key: a 32-byte file, readable by its owner only, given by the operator.
/// It only wraps the per-organisation data keys; it never seals data itself.
public struct MasterKey: Sendable {
    /// Wiped from memory when the last copy of this value is dropped (after a rotation).
    let key: SecretKey
    /// The file it was read from: named in refusals (never the key itself).
    public let path: String

    /// Loads and checks the file.
    ///
    /// - Throws: `KeyError(.masterKey)` if the file is missing, not exactly 32 bytes, or
    ///   readable or writable by group or others.
    public static func load(path: String) throws -> MasterKey {
        // Opened once, never through a symbolic link; every check is made on the open descriptor,
        // so the file cannot be swapped between the check and the read.
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else {
            let reason = errno == ELOOP ? "is a symbolic link; point master_key at the key file itself" : String(cString: strerror(errno))
            throw KeyError(.masterKey, "master key file \(path) cannot be read: \(reason)")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            throw KeyError(.masterKey, "master key file \(path) is not a regular file")
        }
        let mode = info.st_mode & 0o777
        guard mode & 0o077 == 0 else {
            throw KeyError(.masterKey, "master key file \(path) is accessible by group or others (mode \(String(mode, radix: 8))); run chmod 600 \(path)")
        }
        guard info.st_uid == geteuid() else {
            throw KeyError(.masterKey, "master key file \(path) belongs to another user (uid \(info.st_uid)); the service's own user must own it")
        }
        // Read straight into the key's own memory; one byte more shows a file that is too long.
        let key = SecretKey()
        let count = key.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        var extra: UInt8 = 0
        let more = count == 32 ? read(fd, &extra, 1) : 0
        guard count == 32, more == 0 else {
            throw KeyError(.masterKey, "master key file \(path) must be exactly 32 bytes, found \(more > 0 ? Int(info.st_size) : max(count, 0))")
        }
        return MasterKey(key: key, path: path)
    }

    /// Writes a new random master key to `path` with mode 0600 (refuses to overwrite).
    public static func generate(path: String) throws {
        let key = try SecretKey.random()
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw KeyError(.masterKey, "cannot create master key file \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let written = key.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == 32, fsync(fd) == 0 else {
            unlink(path)
            throw KeyError(.masterKey, "cannot write master key file \(path)")
        }
    }
}
