import CallTraceSync
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The connections still in their TLS handshake or settings exchange: unauthenticated, so they
/// get a small budget of their own, apart from the established connections.
///
/// At most `limit` are pending at once, and at most `perAddressLimit` from one source address.
/// When either is full, the *oldest* pending connection (of that address, or of all) is cut to
/// make room: a legitimate client completes its handshake in milliseconds, so a flood of idle
/// connections only ever evicts itself, and the newest caller — the real one — gets through.
///
/// The gate holds a duplicate of each socket's descriptor, so cutting one (`shutdown`) can never
/// reach a descriptor number the kernel has since given to another connection.
final class HandshakeGate: Sendable {
    private struct Pending {
        let id: UInt64
        let address: String
        let cutter: Int32
    }
    private struct State {
        var nextID: UInt64 = 1
        var pending: [Pending] = []
    }
    private let state = Locked(State())
    let limit: Int
    let perAddressLimit: Int

    init(limit: Int, perAddressLimit: Int) {
        self.limit = max(1, limit)
        self.perAddressLimit = max(1, perAddressLimit)
    }

    /// Admits a freshly accepted socket from `address` (its host, without the port); returns the
    /// ticket to give back with `finish`, or nil when not even a descriptor for the gate is left
    /// (the caller then closes the socket).
    func admit(fd: Int32, address: String) -> UInt64? {
        let cutter = fcntl(fd, F_DUPFD_CLOEXEC, 0)
        guard cutter >= 0 else { return nil }
        return state.withLock { state in
            if state.pending.filter({ $0.address == address }).count >= perAddressLimit,
               let oldest = state.pending.firstIndex(where: { $0.address == address }) {
                Self.cut(state.pending.remove(at: oldest))
            }
            if state.pending.count >= limit { Self.cut(state.pending.removeFirst()) }
            let id = state.nextID
            state.nextID += 1
            state.pending.append(Pending(id: id, address: address, cutter: cutter))
            return id
        }
    }

    /// The connection finished its handshake and settings (or failed them): it leaves the gate.
    func finish(_ id: UInt64) {
        state.withLock { state in
            if let index = state.pending.firstIndex(where: { $0.id == id }) {
                Glibc.close(state.pending.remove(at: index).cutter)
            }
        }
    }

    /// Cuts an evicted connection: its handshake thread wakes, fails and cleans up.
    private static func cut(_ pending: Pending) {
        _ = Glibc.shutdown(pending.cutter, Int32(SHUT_RDWR))
        Glibc.close(pending.cutter)
    }

    /// The host part of `host:port` (IPv6 hosts keep their colons).
    static func host(of address: String) -> String {
        guard let colon = address.lastIndex(of: ":") else { return address }
        return String(address[..<colon])
    }
}
