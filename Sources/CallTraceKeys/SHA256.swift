public import CallTraceStorage
import COpenSSL
import Foundation

/// SHA-256 over data that arrives in pieces (an upload), with the system OpenSSL.
public final class SHA256Stream: @unchecked Sendable {
    private let context: OpaquePointer

    public init() throws {
        guard let context = EVP_MD_CTX_new() else { throw KeyError(.crypto, "cannot create a digest context") }
        guard EVP_DigestInit_ex(context, EVP_sha256(), nil) == 1 else {
            EVP_MD_CTX_free(context)
            throw KeyError(.crypto, "cannot start SHA-256")
        }
        self.context = context
    }

    deinit { EVP_MD_CTX_free(context) }

    public func update(_ data: Data) {
        data.withUnsafeBytes { _ = EVP_DigestUpdate(context, $0.baseAddress, $0.count) }
    }

    /// The 32-byte digest; the stream cannot be used after.
    public func finish() -> Data {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        _ = EVP_DigestFinal_ex(context, &digest, &length)
        return Data(digest)
    }
}

extension Sequence where Element == UInt8 {
    /// Lower-case hexadecimal, two digits a byte: for digests, index values and chain links in
    /// text (row ids, logs, exports).
    public var hexString: String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(underestimatedCount * 2)
        for byte in self { text.append(digits[Int(byte >> 4)]); text.append(digits[Int(byte & 0x0f)]) }
        return String(decoding: text, as: UTF8.self)
    }
}

/// The digest a `TarWriter` keeps of its archive and entries.
extension SHA256Stream: ArchiveDigest {}
