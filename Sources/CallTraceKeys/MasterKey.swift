import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A service's master key: a 32-byte file, readable by its owner only, given by the operator.
/// It only wraps the per-organisation data keys; it never seals data itself.
public struct MasterKey: Sendable {
    let bytes: Data

    /// Loads and checks the file.
    ///
    /// - Throws: `KeyError(.masterKey)` if the file is missing, not exactly 32 bytes, or
    ///   readable or writable by group or others.
    public static func load(path: String) throws -> MasterKey {
        var info = stat()
        guard stat(path, &info) == 0 else { throw KeyError(.masterKey, "master key file \(path) cannot be read: \(String(cString: strerror(errno)))") }
        let mode = info.st_mode & 0o777
        guard mode & 0o077 == 0 else {
            throw KeyError(.masterKey, "master key file \(path) is accessible by group or others (mode \(String(mode, radix: 8))); run chmod 600 \(path)")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw KeyError(.masterKey, "master key file \(path) cannot be read")
        }
        guard data.count == 32 else {
            throw KeyError(.masterKey, "master key file \(path) must be exactly 32 bytes, found \(data.count)")
        }
        return MasterKey(bytes: data)
    }

    /// Writes a new random master key to `path` with mode 0600 (refuses to overwrite).
    public static func generate(path: String) throws {
        let key = try AESGCM.randomKey()
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw KeyError(.masterKey, "cannot create master key file \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let written = key.withUnsafeBytes { write(fd, $0.baseAddress, 32) }
        guard written == 32 else { throw KeyError(.masterKey, "cannot write master key file \(path)") }
    }
}
