import Foundation

/// A request body fed while it is sent: an async producer (media's playback stream) `write`s
/// pieces, the transfer's thread `read`s them, and at most `capacity` bytes wait in between, so
/// a recording goes to a provider as it arrives instead of whole in memory.
///
/// The producer ends with `finish()`, or `fail(_:)` to abort the transfer with its error. When
/// the transfer stops reading (done, refused, broken), `write` returns false: stop producing.
public final class StreamedBody: HTTPSBodySource, @unchecked Sendable {
    public let capacity: Int
    private let ready = NSCondition()  // guards the fields below; signalled when a piece arrives or the producer ends
    private var pieces: [Data] = []
    private var offset = 0             // into pieces[0]
    private var buffered = 0
    private var finished = false
    private var failure: (any Error)?
    private var readerGone = false
    private var spaceWaiter: CheckedContinuation<Void, Never>?

    public init(capacity: Int = 1 << 20) {
        self.capacity = capacity
    }

    /// Adds `piece`, waiting (without a thread) while `capacity` bytes are already waiting.
    /// Returns false once the transfer reads no more.
    public func write(_ piece: Data) async -> Bool {
        while true {
            switch append(piece) {
            case .taken: return true
            case .readerGone: return false
            case .full: await withCheckedContinuation { park($0) }
            }
        }
    }

    private enum Append { case taken, full, readerGone }

    private func append(_ piece: Data) -> Append {
        ready.lock()
        defer { ready.unlock() }
        if readerGone { return .readerGone }
        guard buffered < capacity else { return .full }
        pieces.append(piece)
        buffered += piece.count
        ready.signal()
        return .taken
    }

    /// Keeps `continuation` until the reader makes room or leaves (resumed at once if it has).
    private func park(_ continuation: CheckedContinuation<Void, Never>) {
        ready.lock()
        let resumeNow = readerGone || buffered < capacity
        if !resumeNow { spaceWaiter = continuation }
        ready.unlock()
        if resumeNow { continuation.resume() }
    }

    /// The body is complete: the transfer reads what is left, then its end.
    public func finish() {
        ready.lock()
        finished = true
        ready.signal()
        ready.unlock()
    }

    /// The producer failed: the transfer aborts, and reports `error`.
    public func fail(_ error: any Error) {
        ready.lock()
        failure = error
        ready.signal()
        ready.unlock()
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        ready.lock()
        while pieces.isEmpty && !finished && failure == nil { ready.wait() }
        if let failure {
            ready.unlock()
            throw failure
        }
        guard !pieces.isEmpty else {
            ready.unlock()
            return 0
        }
        let piece = pieces[0]
        let n = min(buffer.count, piece.count - offset)
        piece.withUnsafeBytes { bytes in buffer.baseAddress!.copyMemory(from: bytes.baseAddress! + offset, byteCount: n) }
        offset += n
        if offset == piece.count {
            pieces.removeFirst()
            offset = 0
        }
        buffered -= n
        let waiter = buffered < capacity ? takeWaiter() : nil
        ready.unlock()
        waiter?.resume()
        return n
    }

    public func transferEnded() {
        ready.lock()
        readerGone = true
        let waiter = takeWaiter()
        ready.unlock()
        waiter?.resume()
    }

    /// Lock held.
    private func takeWaiter() -> CheckedContinuation<Void, Never>? {
        defer { spaceWaiter = nil }
        return spaceWaiter
    }
}
