import CallTraceSync
import CallTraceTLS
import Foundation

/// What a `FrameConnection` reads frames from and writes them to: a TLS stream over a socket, or
/// one end of an in-process pipe (`InProcessStream`). Both are non-blocking: `read` and `write`
/// never wait, and the connection waits for readiness in its poll.
protocol ByteStream: AnyObject, Sendable {
    /// The descriptor the connection polls for readiness; -1 for a stream that reports its
    /// readiness through `onReady` instead.
    var fileDescriptor: Int32 { get }
    /// The peer's address, for logs and `ServerContext.peerAddress`.
    var peerAddress: String { get }
    /// What secures the stream, e.g. `TLSv1.3` (`ServerContext.tlsVersion`).
    var protocolVersion: String { get }
    /// True when `read` has bytes without the descriptor becoming readable again.
    var hasBufferedInput: Bool { get }
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> TLSStream.ReadResult
    /// After `.wouldBlock` or a short write, the next write starts with the bytes not written.
    func write(_ bytes: UnsafeRawBufferPointer) throws -> TLSStream.WriteResult
    /// Ends the stream both ways; the peer reads what was written, then `.closed`.
    func shutdown()
    /// For a stream without a descriptor: `ready` is called whenever it may have become
    /// readable or writable (or closed). A socket's readiness is polled instead.
    func onReady(_ ready: @escaping @Sendable () -> Void)
}

extension TLSStream: ByteStream {
    func onReady(_ ready: @escaping @Sendable () -> Void) {}
}

/// One end of a byte pipe between a client and a server in the same process: the in-process
/// transport (`RPCClient(inProcess:as:)`). Frames, settings, flow control and admission are
/// exactly those of a socket; only TCP and TLS are left out.
final class InProcessStream: ByteStream {
    let peerAddress: String
    var protocolVersion: String { "in-process" }
    var fileDescriptor: Int32 { -1 }
    private let inbound: ByteChannel
    private let outbound: ByteChannel

    private init(peerAddress: String, inbound: ByteChannel, outbound: ByteChannel) {
        self.peerAddress = peerAddress
        self.inbound = inbound
        self.outbound = outbound
    }

    /// Two connected ends: what one writes, the other reads.
    static func pair() -> (client: InProcessStream, server: InProcessStream) {
        let toServer = ByteChannel(), toClient = ByteChannel()
        return (InProcessStream(peerAddress: "in-process:server", inbound: toClient, outbound: toServer),
                InProcessStream(peerAddress: "in-process:client", inbound: toServer, outbound: toClient))
    }

    var hasBufferedInput: Bool { inbound.hasBytes }
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> TLSStream.ReadResult { inbound.read(into: buffer) }
    func write(_ bytes: UnsafeRawBufferPointer) throws -> TLSStream.WriteResult { try outbound.write(bytes) }

    func shutdown() {
        outbound.close()
        inbound.close()
    }

    func onReady(_ ready: @escaping @Sendable () -> Void) {
        inbound.onReadable(ready)
        outbound.onWritable(ready)
    }
}

/// Bytes one way between two `InProcessStream`s, bounded like a socket's buffers: a writer past
/// `capacity` is told to wait (the connection's backpressure then works as over TCP), and is
/// woken once the reader makes room.
private final class ByteChannel: Sendable {
    static let capacity = 1 << 20

    private struct State {
        var bytes: [UInt8] = []
        var offset = 0
        var closed = false
        /// A write found the channel full: the writer is woken by the next read.
        var writerWaiting = false
        var readable: (@Sendable () -> Void)?
        var writable: (@Sendable () -> Void)?
        var count: Int { bytes.count - offset }
    }
    private let state = Locked(State())

    var hasBytes: Bool { state.withLock { $0.count > 0 } }

    func onReadable(_ wake: @escaping @Sendable () -> Void) { state.withLock { $0.readable = wake } }
    func onWritable(_ wake: @escaping @Sendable () -> Void) { state.withLock { $0.writable = wake } }

    func write(_ bytes: UnsafeRawBufferPointer) throws -> TLSStream.WriteResult {
        let (result, wake) = try state.withLock { state throws -> (TLSStream.WriteResult, (@Sendable () -> Void)?) in
            guard !state.closed else { throw TLSError(.io, "the in-process peer closed the connection") }
            let room = Self.capacity - state.count
            guard room > 0 else {
                state.writerWaiting = true
                return (.wouldBlock, nil)
            }
            let count = min(room, bytes.count)
            if state.offset == state.bytes.count {
                state.bytes.removeAll(keepingCapacity: true)
                state.offset = 0
            }
            state.bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[..<count]))
            return (.wrote(count), state.readable)
        }
        wake?()
        return result
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) -> TLSStream.ReadResult {
        let (result, wake) = state.withLock { state -> (TLSStream.ReadResult, (@Sendable () -> Void)?) in
            guard state.count > 0 else { return (state.closed ? .closed : .wouldBlock, nil) }
            let count = min(state.count, buffer.count)
            let offset = state.offset
            state.bytes.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[offset..<offset + count])) }
            state.offset += count
            if state.offset > Self.capacity / 2 {
                state.bytes.removeSubrange(..<state.offset)
                state.offset = 0
            }
            defer { state.writerWaiting = false }
            return (.bytes(count), state.writerWaiting ? state.writable : nil)
        }
        wake?()
        return result
    }

    /// No more bytes: the reader gets what is left, then `.closed`; writes fail.
    func close() {
        let wakes = state.withLock { state -> [@Sendable () -> Void] in
            state.closed = true
            return [state.readable, state.writable].compactMap { $0 }
        }
        for wake in wakes { wake() }
    }
}
