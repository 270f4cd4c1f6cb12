import COpenSSL
public import Foundation

/// HMAC-SHA256 through the system OpenSSL, for signatures a third party checks with a secret it
/// shares with us (the web gateway's outgoing webhooks: `CallTrace-Signature`).
public enum MessageSignature {
    /// HMAC-SHA256 of `message` under `key`, 32 bytes.
    public static func hmacSHA256(key: Data, message: Data) -> Data {
        key.withUnsafeBytes { hmacSHA256(keyBytes: $0, message: message) }
    }

    /// The same over a key's bytes in place (`SecretKey`'s, never copied out: the blind index).
    static func hmacSHA256(keyBytes: UnsafeRawBufferPointer, message: Data) -> Data {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        message.withUnsafeBytes { messageBytes in
            _ = HMAC(EVP_sha256(), keyBytes.baseAddress, Int32(keyBytes.count),
                     messageBytes.bindMemory(to: UInt8.self).baseAddress, messageBytes.count, &digest, &length)
        }
        return Data(digest)
    }

    /// Lower-case hex, as signatures are written in headers.
    public static func hex(_ bytes: Data) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes { out.append(digits[Int(byte >> 4)]); out.append(digits[Int(byte & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }
}
