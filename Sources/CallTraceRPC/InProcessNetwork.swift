import CallTraceSync
import Synchronization

/// The servers of this process that in-process clients reach by address, without a socket: what
/// a test deployment's services, their peers and the test's own clients share when they run over
/// the in-process transport. A client of the network (`RPCClient(inProcess:target:as:)`) looks
/// up its target's `host:port` each time it connects, so a service may name a peer that starts
/// after it, or starts again; while none serves there, or the one there has stopped, it is
/// refused as by a closed port.
public final class InProcessNetwork: Sendable {
    private let servers = Locked<[String: ServerCore]>([:])

    public init() {}

    /// Serves `server` at `address` (`host:port`) from now on, in place of any before it.
    public func attach(_ server: RPCServer, at address: String) {
        servers.withLock { $0[address] = server.core }
    }

    /// The server at `address`, unless it has stopped.
    func server(at address: String) -> ServerCore? {
        servers.withLock { servers in
            guard let server = servers[address] else { return nil }
            guard !server.closed.load(ordering: .sequentiallyConsistent) else {
                servers[address] = nil
                return nil
            }
            return server
        }
    }
}
