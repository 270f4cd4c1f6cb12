import CallTraceRPC
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Where a webhook goes: an `https://` URL without userinfo or fragment, whose host resolves to
/// public addresses only — not loopback, private, link-local, shared (CGNAT), multicast or
/// unspecified — unless `webhook_allow_private_addresses` is on (SSRF: a firm admin must not
/// make the gateway reach the machines beside it). Checked when the subscription is made and
/// again before every delivery (an address may change).
struct WebhookAddress: Sendable, Equatable {
    let url: String
    let host: String

    /// At most this long.
    static let maxLength = 2000

    /// The URL as typed, checked for its form; `RPCError(.invalidArgument)` naming what is wrong
    /// (never repeating the URL: its query may hold a key).
    init(_ text: String) throws {
        let text = text.trimmingCharacters(in: .whitespaces)
        guard !text.isEmpty, text.count <= Self.maxLength, let parts = URLComponents(string: text) else {
            throw RPCError(.invalidArgument, "enter the receiver's address as a URL (https://…), at most \(Self.maxLength) characters")
        }
        guard parts.scheme?.lowercased() == "https" else { throw RPCError(.invalidArgument, "a webhook's address must start with https://") }
        guard parts.user == nil, parts.password == nil else {
            throw RPCError(.invalidArgument, "a webhook's address may not hold a user name or password (user@host): the signature proves who sends")
        }
        guard parts.fragment == nil else { throw RPCError(.invalidArgument, "a webhook's address may not have a #fragment") }
        guard let host = parts.host, !host.isEmpty else { throw RPCError(.invalidArgument, "a webhook's address names a host") }
        self.url = text
        self.host = host.lowercased()
    }

    /// Resolves the host (blocking: call it off the I/O threads) and refuses it when any of its
    /// addresses is not public, unless `allowPrivate`.
    func checkReachable(allowPrivate: Bool) throws {
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var found: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(bare, "443", &hints, &found) == 0, let first = found else {
            throw RPCError(.failedPrecondition, "the webhook's host \(host) cannot be found")
        }
        defer { freeaddrinfo(first) }
        guard !allowPrivate else { return }
        var next: UnsafeMutablePointer<addrinfo>? = first
        while let entry = next {
            if let address = entry.pointee.ai_addr, !Self.isPublic(address) {
                throw RPCError(.invalidArgument, "the webhook's host \(host) is on a private, loopback or link-local network: it must be reachable on the internet")
            }
            next = entry.pointee.ai_next
        }
    }

    /// Whether the socket address is a public unicast one.
    static func isPublic(_ address: UnsafeMutablePointer<sockaddr>) -> Bool {
        switch Int32(address.pointee.sa_family) {
        case AF_INET:
            let v4 = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr.s_addr }
            let bytes = withUnsafeBytes(of: v4) { Array($0) }  // network order
            return isPublic(v4: bytes)
        case AF_INET6:
            let bytes = address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                withUnsafeBytes(of: pointer.pointee.sin6_addr) { Array($0) }
            }
            return isPublic(v6: bytes)
        default:
            return false
        }
    }

    static func isPublic(v4 b: [UInt8]) -> Bool {
        guard b.count == 4 else { return false }
        switch (b[0], b[1]) {
        case (0, _), (10, _), (127, _): return false                  // this network, private, loopback
        case (100, 64...127): return false                            // shared address space (CGNAT)
        case (169, 254): return false                                 // link-local (cloud metadata)
        case (172, 16...31), (192, 168): return false                 // private
        case (192, 0) where b[2] == 0 || b[2] == 2: return false       // IETF protocol assignments, documentation
        case (198, 18...19): return false                             // benchmarking
        case (198, 51) where b[2] == 100, (203, 0) where b[2] == 113: return false  // documentation
        case (224...255, _): return false                             // multicast, reserved, broadcast
        default: return true
        }
    }

    static func isPublic(v6 b: [UInt8]) -> Bool {
        guard b.count == 16 else { return false }
        if b[0..<10].allSatisfy({ $0 == 0 }) && b[10] == 0xff && b[11] == 0xff { return isPublic(v4: Array(b[12..<16])) }  // v4-mapped
        if b[0..<15].allSatisfy({ $0 == 0 }) { return false }         // :: and ::1
        if b[0] & 0xfe == 0xfc { return false }                       // unique local fc00::/7
        if b[0] == 0xfe && b[1] & 0xc0 == 0x80 { return false }       // link-local fe80::/10
        if b[0] == 0xff { return false }                              // multicast
        if b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8 { return false }  // documentation
        if b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b { return isPublic(v4: Array(b[12..<16])) }  // NAT64
        return true
    }
}
