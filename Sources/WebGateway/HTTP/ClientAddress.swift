import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The address of the person behind a request, which identity needs for the organisation's IP
/// allow-list and for lockout: the connection's own address, unless the connection comes from a
/// trusted proxy (nginx), in which case the proxy's `X-Forwarded-For` is read from the right,
/// skipping trusted proxies, so a client cannot claim an address by sending the header itself.
enum ClientAddress {
    /// - Parameters:
    ///   - peer: the connection's remote IP address; nil on a Unix socket (only nginx can reach
    ///     it, by the socket's permissions, so the header is believed).
    ///   - forwardedFor: every `X-Forwarded-For` header's value, in order.
    ///   - trustedProxies: addresses whose header is believed.
    /// - Returns: nil when no address can be told (a Unix socket without the header, a peer or
    ///   a header entry that is not an IP address); otherwise an IP address, canonical.
    static func resolve(peer: String?, forwardedFor: [String], trustedProxies: Set<String>) -> String? {
        if let peer {
            guard isIPAddress(peer) else { return nil }
            if !trustedProxies.contains(canonical(peer)) { return canonical(peer) }
        }
        let hops = forwardedFor.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
        // From the nearest hop back: the first address that is not one of our proxies is the client's.
        for hop in hops.reversed() {
            guard isIPAddress(hop) else { return nil }
            if !trustedProxies.contains(canonical(hop)) { return canonical(hop) }
        }
        return hops.first.map(canonical) ?? peer.map(canonical)
    }

    /// True for a literal IPv4 or IPv6 address.
    static func isIPAddress(_ text: String) -> Bool {
        // inet_pton reads a C string: a NUL byte would hide whatever follows it (found by `make fuzz`).
        guard !text.utf8.contains(0) else { return false }
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }

    /// One spelling per address: IPv4 as written, IPv6 compressed in lower case, and an
    /// IPv4-mapped IPv6 address (`::ffff:1.2.3.4`, however spelt) as its IPv4 address; anything
    /// else unchanged. (Stripping a `::ffff:` prefix from the text turned the address
    /// `::ffff:19:ffff:198.51.100.2` into `19:ffff:198.51.100.2`, which is none: found by `make fuzz`.)
    static func canonical(_ text: String) -> String {
        guard !text.utf8.contains(0) else { return text }
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return text }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, text, &v6) == 1 else { return text }
        let mapped = withUnsafeBytes(of: &v6) { bytes -> in_addr? in
            guard bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF else { return nil }
            var address = in_addr()
            withUnsafeMutableBytes(of: &address) { $0.copyBytes(from: bytes[12..<16]) }
            return address
        }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let written = if var mapped { inet_ntop(AF_INET, &mapped, &buffer, socklen_t(buffer.count)) }
                      else { inet_ntop(AF_INET6, &v6, &buffer, socklen_t(buffer.count)) }
        guard written != nil else { return text }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
