import CallTraceSync
import CallTraceTLS
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// What a `FrameConnection` reports, on its I/O thread. Implementations must not block.
protocol FrameConnectionDelegate: AnyObject, Sendable {
    /// A frame arrived. Return an error to close the connection after telling the peer.
    func connection(_ connection: FrameConnection, received frame: WireFrame) -> RPCError?
    /// Called about once a second, and when a deadline registered with `wakeUp(at:)` is due.
    func connectionTick(_ connection: FrameConnection, now: ContinuousClock.Instant)
    /// The connection is closed; called exactly once, last.
    func connectionClosed(_ connection: FrameConnection, error: RPCError?)
}

/// One ctrpc/1 connection: a byte stream (TLS, or the in-process pipe), a frame decoder, and one
/// I/O thread.
///
/// The I/O thread owns reading: it polls the socket and a wake-up pipe, decodes frames and
/// hands them to the delegate. It is also a task executor: the server runs a connection's
/// handlers on it, so a request is read, handled and answered without a thread hop.
///
/// Writers call `send` from any thread. On the I/O thread a frame joins the outbound queue,
/// which is flushed once per loop turn (many answers, one write). Elsewhere, while nothing is
/// queued, the frame is written at once on the caller's thread, outside the queue's lock;
/// frames sent meanwhile by other threads join the queue, and that writer writes them too
/// before it returns (one write for many callers, and no caller waits on a lock held across a
/// system call). Frames are never interleaved. Memory is bounded by the per-call flow-control
/// windows above.
final class FrameConnection: @unchecked Sendable {
    let stream: any ByteStream
    let maxFrameBytes: Int
    /// Past this many queued outbound bytes the I/O thread stops reading until they drain, so a
    /// peer that sends requests but never reads the answers cannot grow our memory.
    let maxOutboundBytes: Int
    /// A self-pipe: writing a byte to `wakeWriteFD` wakes the I/O thread's `poll`.
    private let wakeFD: Int32
    private let wakeWriteFD: Int32
    private var decoder: FrameDecoder
    /// Held strongly while the I/O thread runs (calls in flight live in it), released at close.
    private var delegate: (any FrameConnectionDelegate)?

    private struct Outbound {
        var pending: [UInt8] = []
        var offset = 0
        /// A thread other than the I/O thread is writing, outside the lock: it also writes what
        /// is queued meanwhile, and the I/O thread leaves the queue to it.
        var writing = false
        var closing = false
        var closeError: RPCError?
        var nextWake: ContinuousClock.Instant?
        var hasPending: Bool { offset < pending.count }
        var pendingBytes: Int { pending.count - offset }
    }
    private let outbound = Locked(Outbound())

    /// Jobs of tasks that prefer this connection's executor, run by the I/O thread between reads.
    private let jobs = Locked<[UnownedJob]>([])
    /// The I/O thread while it runs (0 otherwise); read on every send.
    private let ioThread = Atomic<UInt>(0)
    /// Runs tasks on this connection's I/O thread (see `ConnectionExecutor`).
    let executor = ConnectionExecutor()
    /// Set by a stream without a descriptor when it may have become readable or writable
    /// (`ByteStream.onReady`): the I/O thread then tries both, as it would on a poll event.
    private let streamReady = Atomic<Bool>(false)

    /// - Throws: `TLSError(.socket)` when the process is out of descriptors for the wake-up
    ///   pipe: a connection error, never a crash.
    init(stream: any ByteStream, maxFrameBytes: Int, maxOutboundBytes: Int = 16 << 20) throws {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else {
            throw TLSError(.socket, "cannot create a wake-up pipe for the connection: \(String(cString: strerror(errno)))")
        }
        self.stream = stream
        self.maxFrameBytes = maxFrameBytes
        self.maxOutboundBytes = maxOutboundBytes
        self.decoder = FrameDecoder(maxFrameBytes: maxFrameBytes)
        for fd in fds {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        self.wakeFD = fds[0]
        self.wakeWriteFD = fds[1]
        stream.onReady { [weak self] in
            self?.streamReady.store(true, ordering: .releasing)
            self?.wake()
        }
    }

    deinit {
        Glibc.close(wakeFD)
        Glibc.close(wakeWriteFD)
    }

    // MARK: Opening

    /// Sends our settings and waits for the peer's, before the I/O thread starts. On TLS 1.3
    /// this is where a client learns that the server refused its certificate. A peer that opens
    /// with anything else, or sends nothing in time, is told why (a goaway with a status) before
    /// the connection closes.
    func exchangeSettings(_ local: WireFrame.Settings, deadline: ContinuousClock.Instant) throws -> WireFrame.Settings {
        var frame = WireFrame()
        frame.settings = local
        let bytes = frame.encodedWithLengthPrefix()
        var written = 0
        while written < bytes.count {
            let result = try bytes.withUnsafeBytes { try stream.write(UnsafeRawBufferPointer(rebasing: $0[written...])) }
            switch result {
            case .wrote(let n): written += n
            case .wouldBlock:
                guard wait(events: POLLOUT | POLLIN, until: deadline) else { throw TLSError(.handshake, "peer sent no settings in time") }
            }
        }
        /// Tells the peer, then gives up on the connection.
        func fail(_ error: RPCError) -> TLSError {
            refuse(error)
            return TLSError(.handshake, "peer \(error.message)")
        }
        while true {
            let first: WireFrame?
            do {
                first = try decoder.next()
            } catch .tooLarge(let length, let limit) {
                throw fail(RPCError(.resourceExhausted, "sent a frame of \(length) bytes, over the limit of \(limit) bytes"))
            } catch {
                throw fail(RPCError(.invalidArgument, "sent a malformed first frame"))
            }
            if let first {
                guard first.callID == 0, let settings = first.settings else {
                    throw fail(RPCError(.invalidArgument, "did not open with settings"))
                }
                return settings
            }
            switch try readIntoDecoder() {
            case .bytes: break
            case .closed: throw TLSError(.handshake, "peer closed the connection during settings")
            case .wouldBlock:
                guard wait(events: POLLIN, until: deadline) else {
                    throw fail(RPCError(.unavailable, "sent no settings in time"))
                }
            }
        }
    }

    /// Reads what the stream has straight into the decoder's buffer (I/O thread, or the
    /// settings exchange before it starts).
    private func readIntoDecoder() throws -> TLSStream.ReadResult {
        var result = TLSStream.ReadResult.wouldBlock
        try decoder.read { room in
            result = try stream.read(into: room)
            guard case .bytes(let count) = result else { return 0 }
            return count
        }
        return result
    }

    /// Waits for the stream (outside the I/O loop) until `deadline`; false if it passed. The
    /// wake-up pipe counts too: a stream without a descriptor signals readiness through it.
    private func wait(events: Int32, until deadline: ContinuousClock.Instant) -> Bool {
        let remaining = ContinuousClock.now.duration(to: deadline)
        guard remaining > .zero else { return false }
        var fds = [pollfd(fd: stream.fileDescriptor, events: Int16(events), revents: 0), pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)]
        let ready = poll(&fds, 2, Int32(clamping: remaining.components.seconds * 1000 + 1))
        if fds[1].revents != 0 { drainWakePipe() }
        return ready > 0
    }

    /// Empties the wake-up pipe; a short read means it is empty, so one read per wake-up.
    private func drainWakePipe() {
        var drain = [UInt8](repeating: 0, count: 64)
        while Glibc.read(wakeFD, &drain, drain.count) == drain.count {}
    }

    /// Starts the I/O thread, which keeps `delegate` alive until the connection has closed.
    func start(delegate: any FrameConnectionDelegate, name: String) {
        self.delegate = delegate
        executor.attach(self)
        let thread = Thread { [self] in
            Self.nameThread(name)
            self.runLoop()
        }
        thread.name = name
        thread.stackSize = 512 * 1024
        thread.start()
    }

    /// Gives the calling thread `name` where the kernel shows it (`top -H`, perf, /proc: the
    /// benchmark's per-thread CPU): Foundation keeps `Thread.name` to itself on Linux, and
    /// Glibc's `pthread_setname_np` does not reach Swift, so it is written to /proc.
    private static func nameThread(_ name: String) {
        let fd = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = name.withCString { Glibc.write(fd, $0, strlen($0)) }
        Glibc.close(fd)
    }

    /// Refuses a connection whose I/O thread never started (a full server): one goaway frame
    /// carrying `error`, given a moment to leave, then the socket shuts.
    func refuse(_ error: RPCError) {
        var frame = WireFrame()
        frame.goaway = true
        frame.status = error
        send(frame)
        let giveUp = ContinuousClock.now + .milliseconds(500)
        while outbound.withLock({ $0.hasPending }) && flush() && ContinuousClock.now < giveUp {
            _ = wait(events: POLLOUT, until: giveUp)
        }
        stream.shutdown()
    }

    // MARK: Writing

    /// Messages at least this large are written from their own storage, between the frame's
    /// other bytes (`WireFrame.encodedAroundMessage`): a streaming sender spent a sixth of its
    /// CPU copying each 64 KiB message into a frame buffer, and queued frames were copied twice.
    static let directMessageBytes = 16 * 1024

    /// Queues `frame` for the peer, writing it at once when nothing is queued before it.
    /// Returns false when the connection is closing.
    @discardableResult
    func send(_ frame: WireFrame) -> Bool {
        if let message = frame.message, message.count >= Self.directMessageBytes {
            let (head, tail) = frame.encodedAroundMessage()
            return send(Outgoing(head: head, message: message, tail: tail))
        }
        return send(Outgoing(head: frame.encodedWithLengthPrefix()))
    }

    /// One length-prefixed frame on its way out: its bytes (`head`), or for a large message the
    /// bytes before and after it, and the message in its own storage.
    private struct Outgoing {
        var head: [UInt8]
        var message = Data()
        var tail: [UInt8] = []

        var count: Int { head.count + message.count + tail.count }

        /// Runs `body` over the frame's bytes, in order, in up to three pieces.
        func withPieces<R>(_ body: ([UnsafeRawBufferPointer]) throws -> R) rethrows -> R {
            guard !message.isEmpty || !tail.isEmpty else { return try head.withUnsafeBytes { try body([$0]) } }
            return try head.withUnsafeBytes { head in
                try message.withUnsafeBytes { message in try tail.withUnsafeBytes { tail in try body([head, message, tail]) } }
            }
        }

        /// Adds the frame's bytes from `offset` on to `bytes`.
        func append(from offset: Int = 0, to bytes: inout [UInt8]) {
            guard !message.isEmpty || !tail.isEmpty else { return bytes.append(contentsOf: head[offset...]) }
            withPieces { pieces in
                var skip = offset
                for piece in pieces {
                    if skip < piece.count { bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: piece[skip...])) }
                    skip = max(0, skip - piece.count)
                }
            }
        }
    }

    /// Queues bytes that are exactly one length-prefixed frame.
    private func send(_ frame: Outgoing) -> Bool {
        let onIOThread = isIOThread
        enum Plan { case refused, queued, write }
        let plan = outbound.withLock { out -> Plan in
            guard !out.closing else { return .refused }
            if onIOThread || out.writing || out.hasPending {
                if !out.hasPending {
                    out.pending.removeAll(keepingCapacity: true)
                    out.offset = 0
                }
                frame.append(to: &out.pending)
                return .queued  // the I/O thread's flush, or the writer at work, writes it
            }
            out.writing = true
            return .write
        }
        switch plan {
        case .refused: return false
        case .queued: return true
        case .write: return write(frame)
        }
    }

    /// Writes `first`, then whatever other threads queued meanwhile, until nothing is queued or
    /// the socket is full (the I/O thread then writes the rest when it can). Called with
    /// `writing` set; clears it.
    private func write(_ first: Outgoing) -> Bool {
        var frame = first
        while true {
            var written = 0
            var broken = false
            do {
                try frame.withPieces { pieces in
                    var start = 0
                    writing: for piece in pieces {
                        while written - start < piece.count {
                            let offset = written - start
                            switch try stream.write(UnsafeRawBufferPointer(rebasing: piece[offset...])) {
                            case .wrote(let n): written += n
                            case .wouldBlock: break writing
                            }
                        }
                        start += piece.count
                    }
                }
            } catch {
                broken = true
            }
            enum Next { case more([UInt8]), done, wake, failed }
            let next = outbound.withLock { out -> Next in
                if broken {
                    out.writing = false
                    out.closing = true
                    out.closeError = RPCError(.unavailable, "connection to \(stream.peerAddress) broke")
                    return .failed
                }
                if written < frame.count {
                    // The socket is full: what is left goes ahead of what others queued.
                    var rest: [UInt8] = []
                    rest.reserveCapacity(frame.count - written + out.pendingBytes)
                    frame.append(from: written, to: &rest)
                    rest.append(contentsOf: out.pending[out.offset...])
                    out.pending = rest
                    out.offset = 0
                    out.writing = false
                    return .wake
                }
                guard out.hasPending else {
                    out.writing = false
                    return .done
                }
                let more = Array(out.pending[out.offset...])
                out.pending.removeAll(keepingCapacity: true)
                out.offset = 0
                return .more(more)
            }
            switch next {
            case .more(let more): frame = Outgoing(head: more)
            case .done: return true
            case .wake:
                wake()
                return true
            case .failed:
                wake()
                return false
            }
        }
    }

    /// Closes the connection: queued frames get a short chance to go out, then the socket shuts.
    func close(error: RPCError? = nil) {
        outbound.withLock { out in
            if !out.closing {
                out.closing = true
                out.closeError = error
            }
        }
        wake()
    }

    /// Asks the I/O thread to call `connectionTick` at `instant` (or earlier).
    func wakeUp(at instant: ContinuousClock.Instant) {
        let needsWake = outbound.withLock { out -> Bool in
            if let planned = out.nextWake, planned <= instant { return false }
            out.nextWake = instant
            return true
        }
        if needsWake { wake() }
    }

    var isClosing: Bool { outbound.withLock { $0.closing } }

    private func wake() {
        var one: UInt8 = 1
        _ = Glibc.write(wakeWriteFD, &one, 1)  // a full pipe already means "wake up"
    }

    /// Writes queued bytes until done or the socket is full. Returns false if the stream broke.
    private func flush() -> Bool {
        outbound.withLock { out in
            guard !out.writing else { return true }  // the writer at work writes the queue
            do {
                while out.hasPending {
                    let offset = out.offset
                    let result = try out.pending.withUnsafeBytes { try stream.write(UnsafeRawBufferPointer(rebasing: $0[offset...])) }
                    switch result {
                    case .wrote(let n): out.offset += n
                    case .wouldBlock: return true
                    }
                }
                out.pending.removeAll(keepingCapacity: out.pending.capacity <= 1 << 20)
                out.offset = 0
                return true
            } catch {
                return false
            }
        }
    }

    private var isIOThread: Bool {
        let thread = ioThread.load(ordering: .acquiring)
        return thread != 0 && pthread_equal(thread, pthread_self()) != 0
    }

    /// Queues a job for the I/O thread, waking it when called from elsewhere.
    func enqueue(_ job: UnownedJob) {
        let wasEmpty = jobs.withLock { queue -> Bool in
            queue.append(job)
            return queue.count == 1
        }
        if wasEmpty && !isIOThread { wake() }
    }

    /// Runs queued jobs; jobs they enqueue run in the same turn, up to a bound that keeps
    /// reading and timers going. Returns true if jobs remain.
    private func runJobs() -> Bool {
        for _ in 0..<64 {
            let batch = jobs.withLock { queue -> [UnownedJob] in
                defer { queue.removeAll(keepingCapacity: true) }
                return queue
            }
            if batch.isEmpty { return false }
            for job in batch { job.runSynchronously(on: executor.asUnownedTaskExecutor()) }
        }
        return jobs.withLock { !$0.isEmpty }
    }

    // MARK: The I/O thread

    private func runLoop() {
        ioThread.store(pthread_self(), ordering: .releasing)
        var fds = [pollfd](repeating: pollfd(), count: 2)
        var jobsPending = false
        var closeError: RPCError?
        var nextTick = ContinuousClock.now + .seconds(1)
        // With read-ahead, OpenSSL may already hold records (e.g. read together with the
        // peer's settings) that the socket will never announce again. Only reading changes
        // that, so it is asked after each read, not on every turn: asking takes the stream's
        // lock, which a caller writing its next request holds just then (a client's I/O thread
        // spun on it after every answer it delivered).
        var streamHoldsInput = stream.hasBufferedInput
        loop: while true {
            // Frames already decoded during the settings exchange are delivered first.
            if let error = deliverFrames() {
                closeError = error
                break loop
            }
            let (closing, requested, pendingBytes, plannedWake) = outbound.withLock { out in
                (out.closing, out.closeError, out.writing ? 0 : out.pendingBytes, out.nextWake)
            }
            let hasPending = pendingBytes > 0
            // Backpressure: while too much waits for the peer, read nothing more from it.
            let reading = pendingBytes <= maxOutboundBytes
            if closing {
                closeError = requested
                break loop
            }
            let buffered = reading && streamHoldsInput
            // Jobs queued on this thread outside `runJobs` (by a tick, by frames delivered above).
            jobsPending = jobsPending || jobs.withLock { !$0.isEmpty }
            let now = ContinuousClock.now
            let untilWake = now.duration(to: min(nextTick, plannedWake ?? nextTick)).components
            let timeoutMS = jobsPending || buffered
                ? 0 : max(0, Int32(clamping: untilWake.seconds * 1000 + untilWake.attoseconds / 1_000_000_000_000_000 + 1))
            fds[0] = pollfd(fd: stream.fileDescriptor, events: Int16((reading ? POLLIN : 0) | (hasPending ? POLLOUT : 0)), revents: 0)
            fds[1] = pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)
            let ready = poll(&fds, 2, timeoutMS)
            if ready < 0 && errno != EINTR { closeError = RPCError(.unavailable, "poll failed"); break loop }
            if fds[1].revents != 0 { drainWakePipe() }
            // A stream without a descriptor (in process) says itself that it may be readable.
            let streamReady = self.streamReady.exchange(false, ordering: .acquiringAndReleasing)
            if !flush() {
                closeError = RPCError(.unavailable, "connection to \(stream.peerAddress) broke")
                break loop
            }
            if reading && (fds[0].revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 || buffered || streamReady) {
                // Read a bounded amount per turn so queued writes and timers are not starved.
                for _ in 0..<16 {
                    let result: TLSStream.ReadResult
                    do {
                        result = try readIntoDecoder()
                    } catch {
                        closeError = RPCError(.unavailable, "connection to \(stream.peerAddress) broke")
                        break loop
                    }
                    switch result {
                    case .bytes:
                        // Asked before the frames are delivered, while no caller they resume
                        // is writing yet.
                        streamHoldsInput = stream.hasBufferedInput
                        if let error = deliverFrames() {
                            closeError = error
                            break loop
                        }
                        // Read again only if OpenSSL holds more; otherwise poll says when.
                        if streamHoldsInput { continue }
                    case .wouldBlock:
                        streamHoldsInput = false
                    case .closed:
                        closeError = RPCError(.unavailable, "peer \(stream.peerAddress) closed the connection")
                        break loop
                    }
                    break
                }
            }
            jobsPending = runJobs()
            let after = ContinuousClock.now
            let timerDue = outbound.withLock { out -> Bool in
                guard let planned = out.nextWake, planned <= after else { return false }
                out.nextWake = nil
                return true
            }
            if timerDue || after >= nextTick {
                nextTick = after + .seconds(1)
                delegate?.connectionTick(self, now: after)
            }
            // Write last in the turn, after jobs and timers, so what they queued goes out too.
            if !flush() {
                closeError = RPCError(.unavailable, "connection to \(stream.peerAddress) broke")
                break loop
            }
        }
        outbound.withLock { $0.closing = true }
        // Frames already queued (a last large response, a final status, a goaway) leave while
        // the peer keeps reading: up to 10 s in all, cut after 500 ms without progress.
        let giveUp = ContinuousClock.now + .seconds(10)
        var stallDeadline = ContinuousClock.now + .milliseconds(500)
        var remaining = outbound.withLock { $0.pending.count - $0.offset }
        while remaining > 0 && ContinuousClock.now < min(giveUp, stallDeadline) {
            guard flush() else { break }
            let left = outbound.withLock { $0.pending.count - $0.offset }
            if left < remaining { stallDeadline = ContinuousClock.now + .milliseconds(500) }
            remaining = left
            if remaining > 0 { _ = wait(events: POLLOUT, until: min(giveUp, stallDeadline)) }
        }
        stream.shutdown()
        delegate?.connectionClosed(self, error: closeError)
        delegate = nil
        // Tasks bound to this executor still need a thread to finish on (they see cancellation).
        ioThread.store(0, ordering: .releasing)
        executor.detach()
        while runJobs() {}
    }

    /// Hands every complete frame to the delegate; an error means "tell the peer and close".
    private func deliverFrames() -> RPCError? {
        while true {
            let frame: WireFrame?
            do {
                frame = try decoder.next()
            } catch .tooLarge(let length, let limit) {
                return failConnection(RPCError(.resourceExhausted, "frame of \(length) bytes exceeds the limit of \(limit) bytes"))
            } catch {
                return failConnection(RPCError(.invalidArgument, "malformed frame"))
            }
            guard let frame else { return nil }
            if let error = delegate?.connection(self, received: frame) {
                return failConnection(error)
            }
        }
    }

    /// Tells the peer why the connection ends (a connection-level status and goaway).
    private func failConnection(_ error: RPCError) -> RPCError {
        var frame = WireFrame()
        frame.goaway = true
        frame.status = error
        let bytes = frame.encodedWithLengthPrefix()
        outbound.withLock { out in
            if !out.hasPending {
                out.pending.removeAll(keepingCapacity: true)
                out.offset = 0
            }
            out.pending.append(contentsOf: bytes)
        }
        return error
    }
}

/// Runs tasks on a connection's I/O thread while it runs; after the connection closes, on the
/// global concurrent executor, so late tasks still finish.
final class ConnectionExecutor: TaskExecutor, @unchecked Sendable {
    /// Strong while the I/O thread runs; cleared by `detach` when it ends.
    private let connection = Locked<FrameConnection?>(nil)

    func attach(_ connection: FrameConnection) { self.connection.withLock { $0 = connection } }

    /// After this returns no job reaches the connection's queue any more.
    func detach() { connection.withLock { $0 = nil } }

    func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        let queued = connection.withLock { connection -> Bool in
            guard let connection else { return false }
            connection.enqueue(unowned)
            return true
        }
        if !queued { globalConcurrentExecutor.enqueue(unowned) }
    }
}
