import CallTraceStorage
import Foundation

/// Failed-login counting for the lockout: per account and per client address, in a fixed window.
///
/// An attempt is counted *before* its password is checked (`reserve`), in the same transaction
/// as the check of the limit, so concurrent attempts cannot all read a count under the limit
/// while the first is still inside scrypt. A success clears the account's count and gives the
/// address back the attempt it took (`succeeded`), so an office behind one address is not
/// locked out by its own good logins.
enum LoginAttempts {
    /// One counter: a hashed key (never an e-mail or address in clear) and its limit.
    struct Subject {
        let key: Data
        let limit: Int
    }

    /// Counts one attempt for every subject and returns true; or, when any subject already
    /// reached its limit within the window, counts nothing and returns false.
    static func reserve(_ subjects: [Subject], now: Int64, window: Int64, in db: Connection) throws -> Bool {
        let since = now - window
        for subject in subjects {
            if let row = try db.query("SELECT failures, window_started_at_unix_ms FROM login_failures WHERE subject = ?", subject.key).first,
               (row.int("window_started_at_unix_ms") ?? 0) > since, Int(row.int("failures") ?? 0) >= subject.limit {
                return false
            }
        }
        for subject in subjects {
            let counted = try db.execute("""
                UPDATE login_failures SET
                    failures = CASE WHEN window_started_at_unix_ms > ? THEN failures + 1 ELSE 1 END,
                    window_started_at_unix_ms = CASE WHEN window_started_at_unix_ms > ? THEN window_started_at_unix_ms ELSE ? END
                WHERE subject = ?
                """, since, since, now, subject.key)
            if counted == 0 {
                try db.execute("INSERT INTO login_failures (subject, failures, window_started_at_unix_ms) VALUES (?, 1, ?)",
                               subject.key, now)
            }
        }
        return true
    }

    /// After a successful login: the account starts afresh; the address gets its attempt back.
    static func succeeded(account: Subject, address: Subject, in db: Connection) throws {
        try db.execute("DELETE FROM login_failures WHERE subject = ?", account.key)
        try db.execute("UPDATE login_failures SET failures = failures - 1 WHERE subject = ? AND failures > 0", address.key)
    }

    /// The lockout bucket of a client address: an IPv4 address as it is, an IPv6 address by its
    /// /64 (one customer's network; an attacker holds a whole /64, not one address of it), an
    /// IPv4-mapped IPv6 address as its IPv4 address. Nil for anything that is not an IP address.
    static func bucket(of address: String) -> String? {
        guard var bytes = AddressRange.bytes(of: address) else { return nil }
        if bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF {
            bytes = Array(bytes[12...])
        }
        if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") }
        return bytes[0..<8].map { String($0, radix: 16) }.joined(separator: ":") + "::/64"
    }
}
