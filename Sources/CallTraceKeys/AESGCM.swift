import COpenSSL
import Foundation

/// A key or sealing failure. Messages never contain key material or plaintext.
public struct KeyError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// The master key file is unusable.
        case masterKey
        /// A ciphertext failed authentication: tampered, moved to another row or org, truncated.
        case tampered
        /// The organisation's keys were destroyed (crypto-shredded) or never existed.
        case noKey
        /// OpenSSL failed.
        case crypto
    }
    public let kind: Kind
    public let message: String
    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }
    public var description: String { message }
}

/// AES-256-GCM with the system OpenSSL.
///
///     sealed = version (1 byte, 0x01) || nonce (12 bytes, random) || ciphertext || tag (16 bytes)
///
/// The associated data is authenticated but not stored: the opener must supply the same.
enum AESGCM {
    static let version: UInt8 = 1
    static let overhead = 1 + 12 + 16

    static func seal(_ plaintext: Data, key: SecretKey, associatedData: Data) throws -> Data {
        try plaintext.withUnsafeBytes { try seal($0, key: key, associatedData: associatedData) }
    }

    /// Wraps `secret` under `key` (an organisation key under the master key).
    static func seal(key secret: SecretKey, under key: SecretKey, associatedData: Data) throws -> Data {
        try secret.withUnsafeBytes { try seal($0, key: key, associatedData: associatedData) }
    }

    private static func seal(_ plaintext: UnsafeRawBufferPointer, key: SecretKey, associatedData: Data) throws -> Data {
        var nonce = [UInt8](repeating: 0, count: 12)
        guard RAND_bytes(&nonce, 12) == 1 else { throw KeyError(.crypto, "no randomness for a nonce") }
        guard let ctx = EVP_CIPHER_CTX_new() else { throw KeyError(.crypto, "cannot create a cipher context") }
        defer { EVP_CIPHER_CTX_free(ctx) }
        var output = [UInt8](repeating: 0, count: plaintext.count + 16)
        var length: Int32 = 0
        var tag = [UInt8](repeating: 0, count: 16)
        let ok = key.withUnsafeBytes { keyBytes -> Bool in
            guard EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nil, nil, nil) == 1,
                  EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, 12, nil) == 1,
                  EVP_EncryptInit_ex(ctx, nil, nil, keyBytes.bindMemory(to: UInt8.self).baseAddress, nonce) == 1
            else { return false }
            let aadOK = associatedData.withUnsafeBytes {
                EVP_EncryptUpdate(ctx, nil, &length, $0.bindMemory(to: UInt8.self).baseAddress, Int32($0.count)) == 1
            }
            guard aadOK else { return false }
            var written: Int32 = 0
            if !plaintext.isEmpty {
                guard EVP_EncryptUpdate(ctx, &output, &written, plaintext.bindMemory(to: UInt8.self).baseAddress, Int32(plaintext.count)) == 1
                else { return false }
            }
            var final: Int32 = 0
            guard output.withUnsafeMutableBufferPointer({ EVP_EncryptFinal_ex(ctx, $0.baseAddress! + Int(written), &final) }) == 1,
                  EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, &tag) == 1
            else { return false }
            length = written + final
            return true
        }
        guard ok else { throw KeyError(.crypto, "encryption failed") }
        var sealed = Data([version])
        sealed.append(contentsOf: nonce)
        sealed.append(contentsOf: output[0..<Int(length)])
        sealed.append(contentsOf: tag)
        return sealed
    }

    static func open(_ sealed: Data, key: SecretKey, associatedData: Data, what: @autoclosure () -> String) throws -> Data {
        guard sealed.count >= overhead else { throw KeyError(.tampered, "\(what()) is not a valid sealed value") }
        var output = Data(count: sealed.count - overhead)
        try output.withUnsafeMutableBytes { try open(sealed, key: key, associatedData: associatedData, into: $0, what: what()) }
        return output
    }

    /// Unwraps a key sealed by `seal(key:under:associatedData:)`, straight into a `SecretKey`.
    static func openKey(_ sealed: Data, under key: SecretKey, associatedData: Data, what: @autoclosure () -> String) throws -> SecretKey {
        guard sealed.count == overhead + SecretKey.count else { throw KeyError(.tampered, "\(what()) is not a valid sealed key") }
        let secret = SecretKey()
        try secret.withUnsafeMutableBytes { try open(sealed, key: key, associatedData: associatedData, into: $0, what: what()) }
        return secret
    }

    /// Decrypts into `output` (exactly the plaintext's size); on failure `output` is wiped.
    private static func open(_ sealed: Data, key: SecretKey, associatedData: Data, into output: UnsafeMutableRawBufferPointer,
                             what: @autoclosure () -> String) throws {
        let bytes = [UInt8](sealed)
        guard bytes.count >= overhead, bytes[0] == version, output.count == bytes.count - overhead else {
            throw KeyError(.tampered, "\(what()) is not a valid sealed value")
        }
        let nonce = Array(bytes[1..<13])
        let ciphertext = Array(bytes[13..<(bytes.count - 16)])
        var tag = Array(bytes[(bytes.count - 16)...])
        guard let ctx = EVP_CIPHER_CTX_new() else { throw KeyError(.crypto, "cannot create a cipher context") }
        defer { EVP_CIPHER_CTX_free(ctx) }
        let out = output.bindMemory(to: UInt8.self).baseAddress
        var written: Int32 = 0
        var unused: Int32 = 0
        let ok = key.withUnsafeBytes { keyBytes -> Bool in
            guard EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nil, nil, nil) == 1,
                  EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, 12, nil) == 1,
                  EVP_DecryptInit_ex(ctx, nil, nil, keyBytes.bindMemory(to: UInt8.self).baseAddress, nonce) == 1
            else { return false }
            let aadOK = associatedData.withUnsafeBytes {
                EVP_DecryptUpdate(ctx, nil, &unused, $0.bindMemory(to: UInt8.self).baseAddress, Int32($0.count)) == 1
            }
            guard aadOK else { return false }
            if !ciphertext.isEmpty {
                guard EVP_DecryptUpdate(ctx, out, &written, ciphertext, Int32(ciphertext.count)) == 1 else { return false }
            }
            guard EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, &tag) == 1 else { return false }
            // GCM's final step only checks the tag: it writes nothing.
            var final: Int32 = 0
            var none: UInt8 = 0
            return EVP_DecryptFinal_ex(ctx, &none, &final) == 1
        }
        _ = ERR_get_error()
        guard ok else {
            if let base = output.baseAddress { OPENSSL_cleanse(base, output.count) }
            throw KeyError(.tampered, "\(what()) failed authentication (tampered, moved, or sealed under another key)")
        }
    }

    static func hmacSHA256(key: SecretKey, message: Data) -> Data {
        key.withUnsafeBytes { MessageSignature.hmacSHA256(keyBytes: $0, message: message) }
    }
}
