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

    static func seal(_ plaintext: Data, key: Data, associatedData: Data) throws -> Data {
        precondition(key.count == 32)
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
                let updated = plaintext.withUnsafeBytes {
                    EVP_EncryptUpdate(ctx, &output, &written, $0.bindMemory(to: UInt8.self).baseAddress, Int32($0.count)) == 1
                }
                guard updated else { return false }
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

    static func open(_ sealed: Data, key: Data, associatedData: Data, what: @autoclosure () -> String) throws -> Data {
        precondition(key.count == 32)
        let bytes = [UInt8](sealed)
        guard bytes.count >= overhead, bytes[0] == version else {
            throw KeyError(.tampered, "\(what()) is not a valid sealed value")
        }
        let nonce = Array(bytes[1..<13])
        let ciphertext = Array(bytes[13..<(bytes.count - 16)])
        var tag = Array(bytes[(bytes.count - 16)...])
        guard let ctx = EVP_CIPHER_CTX_new() else { throw KeyError(.crypto, "cannot create a cipher context") }
        defer { EVP_CIPHER_CTX_free(ctx) }
        var output = [UInt8](repeating: 0, count: ciphertext.count + 16)
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
                guard EVP_DecryptUpdate(ctx, &output, &written, ciphertext, Int32(ciphertext.count)) == 1 else { return false }
            }
            guard EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, &tag) == 1 else { return false }
            var final: Int32 = 0
            return output.withUnsafeMutableBufferPointer { EVP_DecryptFinal_ex(ctx, $0.baseAddress! + Int(written), &final) } == 1
        }
        _ = ERR_get_error()
        guard ok else { throw KeyError(.tampered, "\(what()) failed authentication (tampered, moved, or sealed under another key)") }
        return Data(output[0..<Int(written)])
    }

    static func randomKey() throws -> Data {
        var key = [UInt8](repeating: 0, count: 32)
        guard RAND_bytes(&key, 32) == 1 else { throw KeyError(.crypto, "no randomness for a key") }
        return Data(key)
    }

    static func hmacSHA256(key: Data, message: Data) -> Data {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        key.withUnsafeBytes { keyBytes in
            message.withUnsafeBytes { messageBytes in
                _ = HMAC(EVP_sha256(), keyBytes.baseAddress, Int32(keyBytes.count),
                         messageBytes.bindMemory(to: UInt8.self).baseAddress, messageBytes.count, &digest, &length)
            }
        }
        return Data(digest)
    }
}
