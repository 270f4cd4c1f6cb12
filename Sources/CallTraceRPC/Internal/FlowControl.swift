import CallTraceSync
import Foundation

// The waiters below are `UnsafeContinuation`s: each is taken out of its state under the lock
// and resumed exactly once, and the checked kind costs an allocation on every call.

/// The sender's side of one call direction's window: how many more message bytes the peer
/// will buffer for us. A message may be sent while the window is positive (it may go
/// negative by one message); otherwise the sender waits for the peer's window update.
final class SendWindow: Sendable {
    private struct State {
        var available: Int
        var failure: RPCError?
        var waiter: UnsafeContinuation<Void, any Error>?
    }
    private let state: Locked<State>

    init(initialBytes: Int) {
        state = Locked(State(available: initialBytes))
    }

    /// Waits until a message may be sent, then takes `bytes` from the window.
    func acquire(_ bytes: Int) async throws {
        while true {
            let ready = try state.withLock { state -> Bool in
                if let failure = state.failure { throw failure }
                guard state.available > 0 else { return false }
                state.available -= bytes
                return true
            }
            if ready { return }
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
                let resumeNow = state.withLock { state -> Result<Void, any Error>? in
                    if let failure = state.failure { return .failure(failure) }
                    if state.available > 0 { return .success(()) }
                    state.waiter = continuation
                    return nil
                }
                if let resumeNow { continuation.resume(with: resumeNow) }
            }
        }
    }

    /// The peer granted `bytes` more.
    func grant(_ bytes: Int) {
        let waiter = state.withLock { state -> UnsafeContinuation<Void, any Error>? in
            state.available += bytes
            defer { state.waiter = nil }
            return state.available > 0 ? state.waiter : nil
        }
        waiter?.resume()
    }

    /// The call ended: a waiting sender fails with `error`.
    func fail(_ error: RPCError) {
        let waiter = state.withLock { state -> UnsafeContinuation<Void, any Error>? in
            if state.failure == nil { state.failure = error }
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(throwing: error)
    }
}

/// The receiver's side of one call direction: messages buffered until the application takes
/// them, bounded by the window we granted. Taking messages grants the window back to the peer.
final class MessageInbox: Sendable {
    enum Push: Equatable {
        case accepted
        /// The peer sent more than the window allows.
        case overflow
        /// The inbox already finished; the message is dropped.
        case finished
    }

    private struct State {
        var messages: [Data] = []
        var head = 0
        var bufferedBytes = 0
        var consumedSinceUpdate = 0
        /// nil while open; `.success` after end of stream, `.failure` when the call failed.
        var end: Result<Void, RPCError>?
        var waiter: UnsafeContinuation<Data?, any Error>?
    }
    private let state = Locked(State())
    private let windowBytes: Int
    private let limitBytes: Int
    /// Called (on the consumer's thread) with bytes to grant back to the peer.
    private let grant: @Sendable (Int) -> Void

    init(windowBytes: Int, maxMessageBytes: Int, grant: @escaping @Sendable (Int) -> Void) {
        self.windowBytes = windowBytes
        self.limitBytes = windowBytes + maxMessageBytes
        self.grant = grant
    }

    /// Adds a message from the peer (I/O thread).
    func push(_ message: Data) -> Push {
        let (result, waiter) = state.withLock { state -> (Push, UnsafeContinuation<Data?, any Error>?) in
            guard state.end == nil else { return (.finished, nil) }
            if let waiter = state.waiter {
                state.waiter = nil
                state.consumedSinceUpdate += message.count
                return (.accepted, waiter)
            }
            guard state.bufferedBytes + message.count <= limitBytes else { return (.overflow, nil) }
            state.messages.append(message)
            state.bufferedBytes += message.count
            return (.accepted, nil)
        }
        if let waiter {
            waiter.resume(returning: message)
            grantIfDue()
        }
        return result
    }

    /// No more messages: `nil` for a clean end of stream, else the call's failure. On a clean
    /// end, `last` is the stream's final message (a unary response arrives with its status):
    /// one step, so a waiting consumer is resumed once for both.
    @discardableResult
    func finish(_ failure: RPCError? = nil, last: Data? = nil) -> Push {
        let (result, waiter, handOver) = state.withLock { state -> (Push, UnsafeContinuation<Data?, any Error>?, Data??) in
            guard state.end == nil else { return (.finished, nil, nil) }
            state.end = failure.map { .failure($0) } ?? .success(())
            var result = Push.accepted
            if failure != nil {
                state.messages.removeAll()
                state.head = 0
            } else if let last {
                if state.waiter != nil {
                    state.consumedSinceUpdate += last.count
                    defer { state.waiter = nil }
                    return (.accepted, state.waiter, .some(last))
                }
                if state.bufferedBytes + last.count <= limitBytes {
                    state.messages.append(last)
                    state.bufferedBytes += last.count
                } else {
                    result = .overflow
                }
            }
            defer { state.waiter = nil }
            return (result, state.waiter, failure == nil ? .some(nil) : nil)
        }
        if let waiter {
            if let failure { waiter.resume(throwing: failure) } else { waiter.resume(returning: handOver ?? nil) }
        }
        return result
    }

    /// The next message, or nil at the end of the stream. One consumer at a time.
    func next() async throws -> Data? {
        let immediate = try state.withLock { state -> Data?? in
            try Self.take(&state)
        }
        if let immediate {
            grantIfDue()
            return immediate
        }
        let message = try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Data?, any Error>) in
            let resolved = state.withLock { state -> Result<Data?, any Error>? in
                do {
                    if let ready = try Self.take(&state) { return .success(ready) }
                } catch {
                    return .failure(error)
                }
                state.waiter = continuation
                return nil
            }
            if let resolved { continuation.resume(with: resolved) }
        }
        grantIfDue()
        return message
    }

    /// A buffered message (`.some`), the end (`.some(nil)`), or nothing yet (`nil`).
    private static func take(_ state: inout State) throws -> Data?? {
        if state.head < state.messages.count {
            let message = state.messages[state.head]
            state.head += 1
            if state.head == state.messages.count {
                state.messages.removeAll(keepingCapacity: true)
                state.head = 0
            }
            state.bufferedBytes -= message.count
            state.consumedSinceUpdate += message.count
            return .some(message)
        }
        switch state.end {
        case nil: return nil
        case .success: return .some(nil)
        case .failure(let error): throw error
        }
    }

    private func grantIfDue() {
        let due = state.withLock { state -> Int in
            guard state.end == nil, state.consumedSinceUpdate >= windowBytes / 2 else { return 0 }
            defer { state.consumedSinceUpdate = 0 }
            return state.consumedSinceUpdate
        }
        if due > 0 { grant(due) }
    }
}
