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
    /// - Returns: nil when no address can be told (a Unix socket without the header, or a
    ///   header whose entry is not an IP address).
    static func resolve(peer: String?, forwardedFor: [String], trustedProxies: Set<String>) -> String? {
        if let peer, !trustedProxies.contains(canonical(peer)) { return canonical(peer) }
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

    /// One spelling per address (`::ffff:1.2.3.4` is `1.2.3.4`; IPv6 compressed, lower case).
    static func canonical(_ text: String) -> String {
        var v6 = in6_addr()
        guard !text.contains("."), inet_pton(AF_INET6, text, &v6) == 1 else {
            if text.hasPrefix("::ffff:") { return String(text.dropFirst(7)) }
            return text
        }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        guard inet_ntop(AF_INET6, &v6, &buffer, socklen_t(buffer.count)) != nil else { return text }
        return String(cString: buffer)
    }
}
