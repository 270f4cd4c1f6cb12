import CallTraceSync
import Foundation

/// An answer's bytes, from the transfer's thread to one async reader (a download handed on as it
/// arrives: the CLI's streams from the web gateway, a recording from Twilio into media): the
/// transfer waits while more than `capacity` bytes are unread, so a slow reader holds back the
/// download; a reader that stops (cancelled, or done early) cancels, which ends the transfer at
/// its next bytes.
public final class ResponsePieces: HTTPSResponseSink, @unchecked Sendable {
    private struct State {
        var chunks: [Data] = []
        var queued = 0
        var ended = false
        var failure: (any Error)?
        var cancelled = false
        var waiter: CheckedContinuation<Data?, any Error>?
        var producerWaiting = false
        var errorBody = Data()
    }
    private let state = Locked(State())
    private let room = DispatchSemaphore(value: 0)
    /// Unread bytes at most before the transfer waits.
    public let capacity: Int

    public init(capacity: Int = 1 << 20) { self.capacity = capacity }

    /// A failed answer's body (its error), kept whole rather than streamed.
    public var errorBody: Data { state.withLock { $0.errorBody } }

    /// On the transfer's thread.
    public func received(_ data: Data, status: Int) throws {
        if status != 200 {
            state.withLock { if $0.errorBody.count < 64 << 10 { $0.errorBody.append(data) } }
            return
        }
        while true {
            enum Next { case handed(CheckedContinuation<Data?, any Error>), queued, full, cancelled }
            let next = state.withLock { state -> Next in
                if state.cancelled { return .cancelled }
                if let waiter = state.waiter {
                    state.waiter = nil
                    return .handed(waiter)
                }
                if state.queued >= capacity {
                    state.producerWaiting = true
                    return .full
                }
                state.chunks.append(data)
                state.queued += data.count
                return .queued
            }
            switch next {
            case .handed(let waiter): waiter.resume(returning: data); return
            case .queued: return
            case .cancelled: throw CancellationError()
            case .full: room.wait()  // until the reader takes a piece, or cancels
            }
        }
    }

    /// The transfer ended: with `failure`, or whole.
    public func finish(_ failure: (any Error)?) {
        let waiter = state.withLock { state -> CheckedContinuation<Data?, any Error>? in
            state.ended = true
            state.failure = failure
            defer { state.waiter = nil }
            return state.waiter
        }
        if let failure { waiter?.resume(throwing: failure) } else { waiter?.resume(returning: nil) }
    }

    /// The reader stops: the transfer ends at its next bytes, a waiting reader gets CancellationError.
    public func cancel() {
        let (waiter, wake) = state.withLock { state -> (CheckedContinuation<Data?, any Error>?, Bool) in
            state.cancelled = true
            defer { state.waiter = nil; state.producerWaiting = false }
            return (state.waiter, state.producerWaiting)
        }
        if wake { room.signal() }
        waiter?.resume(throwing: CancellationError())
    }

    /// The next bytes; nil at the end. One reader at a time.
    public func next() async throws -> Data? {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                enum Now { case chunk(Data, wake: Bool), end, failed(any Error), wait }
                let now = state.withLock { state -> Now in
                    if !state.chunks.isEmpty {
                        let chunk = state.chunks.removeFirst()
                        state.queued -= chunk.count
                        let wake = state.producerWaiting
                        state.producerWaiting = false
                        return .chunk(chunk, wake: wake)
                    }
                    if state.cancelled { return .failed(CancellationError()) }
                    if state.ended { return state.failure.map(Now.failed) ?? .end }
                    if state.waiter != nil { return .failed(HTTPSError("an answer is read by one reader at a time")) }
                    state.waiter = continuation
                    return .wait
                }
                switch now {
                case .chunk(let data, let wake):
                    if wake { room.signal() }
                    continuation.resume(returning: data)
                case .end: continuation.resume(returning: nil)
                case .failed(let error): continuation.resume(throwing: error)
                case .wait: break
                }
            }
        } onCancel: {
            cancel()
        }
    }
}
