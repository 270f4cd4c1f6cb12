import COpenSSL
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A 32-byte key in memory of its own: never copied into a `Data` or an array, kept out of swap
/// where the memory-lock limit allows, and wiped with `OPENSSL_cleanse` when the last reference
/// goes — a dropped organisation key (shredded, or evicted when the master key rotates) leaves
/// nothing behind in the process to find in a core file or a later allocation.
final class SecretKey: @unchecked Sendable {
    static let count = 32
    private let bytes: UnsafeMutableRawBufferPointer

    /// Zeroes, to be filled through `withUnsafeMutableBytes`.
    init() {
        bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.count, alignment: 16)
        bytes.initializeMemory(as: UInt8.self, repeating: 0)
        _ = mlock(bytes.baseAddress, Self.count)  // best effort: RLIMIT_MEMLOCK may not allow it
    }

    /// Fresh random bytes from OpenSSL.
    static func random() throws -> SecretKey {
        let key = SecretKey()
        guard key.bytes.withMemoryRebound(to: UInt8.self, { RAND_bytes($0.baseAddress, Int32($0.count)) }) == 1 else {
            throw KeyError(.crypto, "no randomness for a key")
        }
        return key
    }

    deinit {
        wipe()
        _ = munlock(bytes.baseAddress, Self.count)
        bytes.deallocate()
    }

    /// Overwrites the key with zeroes in a way the compiler cannot drop as a dead store.
    func wipe() {
        OPENSSL_cleanse(bytes.baseAddress, Self.count)
    }

    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(bytes))
    }

    func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        try body(bytes)
    }
}
