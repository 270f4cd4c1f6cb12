import COpenSSL
import Foundation

/// Password hashing with scrypt (system OpenSSL).
///
/// Cost: N = 2^15, r = 8, p = 1 (32 MiB, about 0.2 s of one core per hash here), a 16-byte
/// random salt per password, a 32-byte output. Stored as `scrypt$15$8$1$<salt b64>$<hash b64>`,
/// so the cost can be raised later without invalidating stored hashes: a hash is always
/// verified at the cost it was made with.
public struct PasswordHasher: Sendable {
    /// log2 of N for new hashes and for the dummy check of unknown accounts.
    public let logN: Int
    static let r = 8, p = 1

    /// What every deployment uses.
    public static let standard = PasswordHasher(logN: 15)

    /// - Parameter logN: 15 in every deployment. In-process tests use 10 (1/32 of the work, the
    ///   same code), as test suites of web frameworks use a cheap hasher; it is not a setting.
    public init(logN: Int) {
        precondition((10...20).contains(logN), "scrypt's log2 N is from 10 to 20")
        self.logN = logN
    }

    /// The longest password taken when one is set: a long passphrase fits, and the checks below
    /// stay quick whatever a form can hold (64 KiB). Signing in checks no length.
    public static let maxCharacters = 256

    /// Why a password is refused; the message never repeats the password.
    public static func weakness(of password: String) -> String? {
        let characters = password.count
        if characters < 12 { return "a password needs at least 12 characters" }
        if characters > maxCharacters { return "a password can have at most \(maxCharacters) characters" }
        if Set(password).count < 4 { return "a password needs more than a few different characters" }
        return isCommon(password) ? "that password is too common (or one with only digits, symbols or a letter or two around it)" : nil
    }

    /// Whether the whole password is a common one (`commonPasswordList`, or this product's name),
    /// as it is or once the padding people add is taken off: digits and symbols around it
    /// ("Password123456!"), a letter or two ("MyPassword"), look-alike characters ("P@ssw0rd"),
    /// the word said twice ("dragondragon"), or a run of digits or a keyboard row ("123456789012").
    /// A password that merely contains a common word ("Bob-Bell-Solicitor-77") is not refused.
    static func isCommon(_ password: String) -> Bool {
        let lowered = password.lowercased()
        let padding = CharacterSet.decimalDigits.union(.punctuationCharacters).union(.symbols).union(.whitespaces)
        let core = lowered.trimmingCharacters(in: padding)
        if core.isEmpty || isRun(core) || isRun(lowered) { return true }
        let lookAlikes: [Character: Character] = ["0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"]
        let plain = String(core.map { lookAlikes[$0] ?? $0 })
        var candidates = [lowered, core, plain]
        for word in [core, plain] {
            let characters = word.count  // (counted once: counting walks the whole word)
            guard characters >= 6 else { continue }
            for cut in 1...2 { candidates += [String(word.dropFirst(cut)), String(word.dropLast(cut))] }
            for length in 3...(characters / 2) where characters % length == 0 {
                let unit = word.prefix(length)
                if String(repeating: String(unit), count: characters / length) == word { candidates.append(String(unit)) }
            }
        }
        return candidates.contains { commonPasswordList.contains($0) || $0 == "calltrace" }
    }

    /// Ascending or descending digits ("123456789012", wrapping past 9) or a run along a
    /// keyboard row ("qwertyuiop", "asdfghjkl;").
    static func isRun(_ text: String) -> Bool {
        guard text.count >= 6 else { return false }
        let rows = ["1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm"]
        let forward = rows.map { String(repeating: $0, count: 3) }, backward = rows.map { String(repeating: String($0.reversed()), count: 3) }
        return (forward + backward).contains { $0.contains(text) }
    }

    public func hash(_ password: String) throws -> String {
        var salt = [UInt8](repeating: 0, count: 16)
        guard RAND_bytes(&salt, 16) == 1 else { throw KeyError(.crypto, "no randomness for a salt") }
        let (r, p) = (Self.r, Self.p)
        let derived = try Self.scrypt(password, salt: salt, logN: logN, r: r, p: p)
        return "scrypt$\(logN)$\(r)$\(p)$\(Data(salt).base64EncodedString())$\(derived.base64EncodedString())"
    }

    /// Checks `password` against a stored hash in constant time. A malformed hash never matches.
    public static func verify(_ password: String, against stored: String) -> Bool {
        let parts = stored.split(separator: "$")
        guard parts.count == 6, parts[0] == "scrypt", let logN = Int(parts[1]), let r = Int(parts[2]), let p = Int(parts[3]),
              let salt = Data(base64Encoded: String(parts[4])), let expected = Data(base64Encoded: String(parts[5])),
              let derived = try? scrypt(password, salt: [UInt8](salt), logN: logN, r: r, p: p)
        else { return false }
        return derived.count == expected.count && CRYPTO_memcmp([UInt8](derived), [UInt8](expected), derived.count) == 0
    }

    /// Spends the time of one verification, for logins of unknown accounts.
    public func verifyDummy(_ password: String) {
        _ = try? Self.scrypt(password, salt: [UInt8](repeating: 0, count: 16), logN: logN, r: Self.r, p: Self.p)
    }

    private static func scrypt(_ password: String, salt: [UInt8], logN: Int, r: Int, p: Int) throws -> Data {
        guard (10...20).contains(logN), (1...32).contains(r), (1...16).contains(p) else { throw KeyError(.crypto, "bad scrypt parameters") }
        var out = [UInt8](repeating: 0, count: 32)
        let bytes = Array(password.utf8)
        let ok = bytes.withUnsafeBufferPointer { pass in
            EVP_PBE_scrypt(pass.baseAddress.map { UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self) }, pass.count,
                           salt, salt.count, UInt64(1) << UInt64(logN), UInt64(r), UInt64(p), 64 << 20, &out, out.count)
        }
        guard ok == 1 else {
            _ = ERR_get_error()
            throw KeyError(.crypto, "scrypt failed")
        }
        return Data(out)
    }
}

/// Opaque bearer secrets (session tokens, invitations): 256 random bits, base64url, stored only
/// as their SHA-256.
public enum OpaqueToken {
    public static func generate() throws -> String {
        var bytes = [UInt8](repeating: 0, count: 32)
        guard RAND_bytes(&bytes, 32) == 1 else { throw KeyError(.crypto, "no randomness for a token") }
        return Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// What is stored and looked up.
    public static func storageHash(_ token: String) -> Data {
        var digest = [UInt8](repeating: 0, count: 32)
        let bytes = Array(token.utf8)
        _ = EVP_Digest(bytes, bytes.count, &digest, nil, EVP_sha256(), nil)
        return Data(digest)
    }
}

/// Time-based one-time passwords (RFC 6238): HMAC-SHA1, 30-second steps, 6 digits.
public enum TOTP {
    public static let step: Int64 = 30

    /// A new 20-byte secret.
    public static func newSecret() throws -> Data {
        var bytes = [UInt8](repeating: 0, count: 20)
        guard RAND_bytes(&bytes, 20) == 1 else { throw KeyError(.crypto, "no randomness for a secret") }
        return Data(bytes)
    }

    /// The code for `unixTime` (RFC 6238 with RFC 4226's dynamic truncation).
    public static func code(secret: Data, unixTime: Int64, digits: Int = 6) -> String {
        var counter = UInt64(unixTime / step).bigEndian
        let message = withUnsafeBytes(of: &counter) { Data($0) }
        var digest = [UInt8](repeating: 0, count: 20)
        var length: UInt32 = 0
        secret.withUnsafeBytes { key in
            message.withUnsafeBytes { bytes in
                _ = HMAC(EVP_sha1(), key.baseAddress, Int32(key.count), bytes.bindMemory(to: UInt8.self).baseAddress,
                         bytes.count, &digest, &length)
            }
        }
        let offset = Int(digest[19] & 0x0F)
        let value = (UInt32(digest[offset] & 0x7F) << 24) | (UInt32(digest[offset + 1]) << 16)
            | (UInt32(digest[offset + 2]) << 8) | UInt32(digest[offset + 3])
        var modulus: UInt32 = 1
        for _ in 0..<digits { modulus *= 10 }
        let text = String(value % modulus)
        return String(repeating: "0", count: digits - text.count) + text
    }

    /// Accepts the code of this step or an adjacent one (clock drift), in constant time per code.
    public static func verify(_ code: String, secret: Data, unixTime: Int64) -> Bool {
        acceptedStep(code, secret: secret, unixTime: unixTime) != nil
    }

    /// The time step (`unixTime / 30`) whose code `code` is — this step or an adjacent one —
    /// or nil. Callers store the last step they accepted and refuse any step not after it, so a
    /// code works once (RFC 6238 §5.2).
    public static func acceptedStep(_ code: String, secret: Data, unixTime: Int64) -> Int64? {
        guard code.utf8.count == 6, code.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        var matched: Int64?
        let given = Array(code.utf8)
        for drift in [-step, 0, step] {
            let expected = Array(self.code(secret: secret, unixTime: unixTime + drift).utf8)
            if CRYPTO_memcmp(expected, given, 6) == 0 { matched = (unixTime + drift) / step }
        }
        return matched
    }

    /// RFC 4648 base32 without padding, as authenticator apps expect.
    public static func base32(_ data: Data) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
        var output = "", buffer = 0, bits = 0
        for byte in data {
            buffer = (buffer << 8) | Int(byte)
            bits += 8
            while bits >= 5 {
                output.append(alphabet[(buffer >> (bits - 5)) & 31])
                bits -= 5
            }
        }
        if bits > 0 { output.append(alphabet[(buffer << (5 - bits)) & 31]) }
        return output
    }
}

/// Random bytes and comparisons that do not leak where two secrets differ.
public enum SecretBytes {
    /// `count` bytes from OpenSSL's generator.
    public static func random(_ count: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        guard RAND_bytes(&bytes, Int32(count)) == 1 else { throw KeyError(.crypto, "no randomness") }
        return bytes
    }

    /// Equal length and equal bytes, in time that depends only on the length.
    public static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        a.count == b.count && CRYPTO_memcmp(a, b, a.count) == 0
    }
}
