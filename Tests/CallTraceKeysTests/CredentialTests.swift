@testable import CallTraceKeys
import Foundation
import Testing

@Suite("Credentials: scrypt passwords, TOTP")
struct CredentialTests {
    @Test("TOTP matches RFC 6238's SHA-1 test vectors (8 digits)", arguments: [
        (Int64(59), "94287082"), (1_111_111_109, "07081804"), (1_111_111_111, "14050471"),
        (1_234_567_890, "89005924"), (2_000_000_000, "69279037"), (20_000_000_000, "65353130"),
    ])
    func rfc6238(time: Int64, expected: String) {
        let secret = Data("12345678901234567890".utf8)
        #expect(TOTP.code(secret: secret, unixTime: time, digits: 8) == expected)
    }

    @Test("TOTP accepts the current and adjacent steps only; base32 as authenticator apps expect")
    func totpWindow() {
        let secret = Data("12345678901234567890".utf8)
        let now: Int64 = 1_234_567_890  // step 41152263
        func step(ofCodeAt time: Int64) -> Int64? {
            TOTP.acceptedStep(TOTP.code(secret: secret, unixTime: time), secret: secret, unixTime: now)
        }
        #expect(step(ofCodeAt: now) == now / 30)
        #expect(step(ofCodeAt: now - 30) == now / 30 - 1)
        #expect(step(ofCodeAt: now + 30) == now / 30 + 1)
        #expect(step(ofCodeAt: now - 60) == nil)
        #expect(step(ofCodeAt: now + 60) == nil)
        #expect(step(ofCodeAt: now - 90) == nil)
        #expect(TOTP.verify(TOTP.code(secret: secret, unixTime: now + 30), secret: secret, unixTime: now))
        #expect(!TOTP.verify("12345", secret: secret, unixTime: now))
        #expect(!TOTP.verify("１２３４５６", secret: secret, unixTime: now))  // non-ASCII digits
        #expect(TOTP.base32(Data("12345678901234567890".utf8)) == "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")
    }

    @Test("scrypt: verifies the right password, refuses others and malformed hashes; weak passwords named")
    func passwords() throws {
        // The deployment's cost, once each way (each scrypt at this cost takes about 0.1 s).
        let stored = try PasswordHasher.standard.hash("correct horse battery staple")
        #expect(stored.hasPrefix("scrypt$15$8$1$"))
        #expect(PasswordHasher.verify("correct horse battery staple", against: stored))
        #expect(!PasswordHasher.verify("anything", against: "scrypt$15$8$1$bad"))
        // A hash made at a lower cost is verified at that cost; a wrong password is refused.
        let cheap = try PasswordHasher(logN: 10).hash("correct horse battery staple")
        #expect(cheap.hasPrefix("scrypt$10$8$1$"))
        #expect(PasswordHasher.verify("correct horse battery staple", against: cheap))
        #expect(!PasswordHasher.verify("correct horse battery stapler", against: cheap))
        #expect(PasswordHasher.weakness(of: "short") != nil)
        #expect(PasswordHasher.weakness(of: "MyPassword2024!") != nil)
        #expect(PasswordHasher.weakness(of: "correct horse battery staple") == nil)
    }

    @Test("A password longer than 256 characters is refused before any other check; a long one is checked in one reading")
    func longPasswords() {
        let longest = String(repeating: "tulip-window-88-harbour ", count: 11).prefix(256)
        #expect(PasswordHasher.weakness(of: String(longest)) == nil)
        #expect(PasswordHasher.weakness(of: String(longest) + "x") == "a password can have at most 256 characters")
        // What a 64 KiB form can hold, each of its word's lengths a divisor: its repeats are looked for in linear time.
        #expect(PasswordHasher.isCommon(String(repeating: "ab", count: 32_000) + "c") == false)
        #expect(PasswordHasher.isCommon(String(repeating: "dragon", count: 10_000)) == true)
    }

    @Test("Common passwords are refused as a whole, with their padding taken off; a password that merely contains a word is not",
          arguments: [
            ("Password123456!", true), ("P@ssw0rd2024!!", true), ("MyPassword2024!", true), ("dragondragondragon", true),
            ("123456789012", true), ("qwertyuiop12", true), ("!!!!1234567890", true), ("Calltrace2026!", true), ("iloveyou12345", true),
            ("Bob-Bell-Solicitor-77", false), ("correct horse battery staple", false), ("Smith & Co Solicitors 1987", false),
            ("tulip-window-88-harbour", false),
          ])
    func commonPasswords(password: String, refused: Bool) {
        #expect((PasswordHasher.weakness(of: password) != nil) == refused, "\(password)")
        #expect(PasswordHasher.commonPasswordList.count > 3000)
    }
}
