import CallTraceStorage
import Foundation

/// Failed-login counting for the lockout: per account and per client address, in a fixed window.
///
/// An attempt is counted *before* its password is checked (`reserveLoginAttempts`), in the same
/// transaction as the check of the limit, so concurrent attempts cannot all read a count under
/// the limit while the first is still inside scrypt. A success clears the account's count and
/// gives the address back the attempt it took (`loginSucceeded`), so an office behind one
/// address is not locked out by its own good logins.
enum LoginAttempts {
    /// One counter: a hashed key (never an e-mail or address in clear) and its limit.
    struct Subject {
        let key: Data
        let limit: Int
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
