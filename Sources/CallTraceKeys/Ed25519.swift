import COpenSSL
import Foundation

/// Ed25519 signatures through the system OpenSSL: what compliance signs its deletion
/// certificates with (P11), and what anyone verifies them with, offline.
public struct Ed25519Signer: Sendable {
    private let seed: SecretKey
    /// The raw 32-byte public key.
    public let publicKey: Data

    init(seed: SecretKey) throws {
        self.seed = seed
        let key = try Self.privateKey(seed)
        defer { EVP_PKEY_free(key) }
        var bytes = [UInt8](repeating: 0, count: 32)
        var length = 32
        guard EVP_PKEY_get_raw_public_key(key, &bytes, &length) == 1, length == 32 else {
            throw KeyError(.tampered, "the Ed25519 public key cannot be derived")
        }
        publicKey = Data(bytes)
    }

    private static func privateKey(_ seed: SecretKey) throws -> OpaquePointer {
        let key = seed.withUnsafeBytes { EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nil, $0.bindMemory(to: UInt8.self).baseAddress, 32) }
        guard let key else { throw KeyError(.tampered, "the Ed25519 signing key cannot be loaded") }
        return key
    }

    /// The 64-byte signature of `message`.
    public func sign(_ message: Data) throws -> Data {
        let key = try Self.privateKey(seed)
        defer { EVP_PKEY_free(key) }
        guard let context = EVP_MD_CTX_new() else { throw KeyError(.tampered, "no signing context") }
        defer { EVP_MD_CTX_free(context) }
        var signature = [UInt8](repeating: 0, count: 64)
        var length = 64
        let signed = message.withUnsafeBytes { bytes in
            EVP_DigestSignInit(context, nil, nil, nil, key) == 1
                && EVP_DigestSign(context, &signature, &length, bytes.bindMemory(to: UInt8.self).baseAddress, bytes.count) == 1
        }
        guard signed, length == 64 else { throw KeyError(.tampered, "Ed25519 signing failed") }
        return Data(signature)
    }

    /// Whether `signature` is `publicKey`'s signature of `message`.
    public static func verify(_ signature: Data, of message: Data, publicKey: Data) -> Bool {
        guard signature.count == 64, publicKey.count == 32,
              let key = publicKey.withUnsafeBytes({ EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nil, $0.bindMemory(to: UInt8.self).baseAddress, 32) })
        else { return false }
        defer { EVP_PKEY_free(key) }
        guard let context = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(context) }
        return signature.withUnsafeBytes { sig in
            message.withUnsafeBytes { bytes in
                EVP_DigestVerifyInit(context, nil, nil, nil, key) == 1
                    && EVP_DigestVerify(context, sig.bindMemory(to: UInt8.self).baseAddress, 64, bytes.bindMemory(to: UInt8.self).baseAddress,
                                        bytes.count) == 1
            }
        }
    }
}

extension KeyRing {
    /// The service's own Ed25519 signing key for `purpose` (e.g. "deletion-certificates"): a random
    /// seed created on first use and kept in the key store, wrapped under the master key like the
    /// organisations' keys — so it survives master-key rotation and is in every key-store backup.
    public func signer(_ purpose: String) throws -> Ed25519Signer {
        try Ed25519Signer(seed: try keys(for: "signing:\(purpose)", create: true).data)
    }
}
