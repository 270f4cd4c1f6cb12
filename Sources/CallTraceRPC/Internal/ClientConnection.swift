import CallTraceProto
import CallTraceSync
import CallTraceTLS
import Foundation
import Synchronization

/// The client's view of one connection: calls in flight by id, their deadlines, and the
/// server's settings.
final class ClientConnection: FrameConnectionDelegate, @unchecked Sendable {
    let connection: FrameConnection
    let serverSettings: WireFrame.Settings
    let localWindowBytes: Int

    private struct State {
        var nextCallID: UInt64 = 1
        var calls: [UInt64: ClientCall] = [:]
        var deadlines = DeadlineQueue()
    }
    private let state = Locked(State())
    /// Set by goaway or close: no new calls. Set and checked under `state`'s lock when calls
    /// are added or failed; read without it by callers choosing a connection.
    private let unusable = Atomic<Bool>(false)
    /// Why the server ended the connection, when it said (a goaway with a status).
    private let refusal = Locked<RPCError?>(nil)
    private let onClose: @Sendable (ClientConnection) -> Void

    init(connection: FrameConnection, serverSettings: WireFrame.Settings, localWindowBytes: Int,
         onClose: @escaping @Sendable (ClientConnection) -> Void) {
        self.connection = connection
        self.serverSettings = serverSettings
        self.localWindowBytes = localWindowBytes
        self.onClose = onClose
    }

    var isUsable: Bool { !unusable.load(ordering: .acquiring) }

    /// The status the server closed the connection with, if it gave one (e.g. RESOURCE_EXHAUSTED
    /// from a full server).
    var closingStatus: RPCError? { refusal.withLock { $0 } }

    /// Registers a new call; nil when the connection takes no new calls.
    func register(deadline: ContinuousClock.Instant?, make: (UInt64) -> ClientCall) -> ClientCall? {
        let call = state.withLock { state -> ClientCall? in
            guard !unusable.load(ordering: .acquiring) else { return nil }
            let id = state.nextCallID
            state.nextCallID += 1
            let call = make(id)
            state.calls[id] = call
            if let deadline { state.deadlines.insert(id, at: deadline) }
            return call
        }
        if let deadline, call != nil { connection.wakeUp(at: deadline) }
        return call
    }

    func remove(_ callID: UInt64) {
        state.withLock { state in
            state.calls[callID] = nil
            state.deadlines.remove(callID)
        }
    }

    // MARK: FrameConnectionDelegate (I/O thread)

    func connection(_ connection: FrameConnection, received frame: WireFrame) -> RPCError? {
        if frame.callID == 0 {
            if frame.goaway { unusable.store(true, ordering: .releasing) }
            if let status = frame.status {
                refusal.withLock { $0 = status }
                // The server ends the whole connection, e.g. after a frame it could not accept.
                failAll(status)
            }
            return nil
        }
        guard let call = state.withLock({ $0.calls[frame.callID] }) else { return nil }
        if frame.windowUpdateBytes > 0 { call.window?.grant(Int(frame.windowUpdateBytes)) }
        let pushed: MessageInbox.Push
        if let status = frame.status {
            remove(frame.callID)
            pushed = call.finish(status: status, last: frame.message)
        } else if let message = frame.message {
            pushed = call.inbox.push(message)
        } else {
            pushed = .accepted
        }
        return pushed == .overflow ? RPCError(.resourceExhausted, "server sent beyond the flow-control window") : nil
    }

    func connectionTick(_ connection: FrameConnection, now: ContinuousClock.Instant) {
        let (expired, next) = state.withLock { state -> ([ClientCall], ContinuousClock.Instant?) in
            let expired = state.deadlines.popExpired(now: now).compactMap { state.calls.removeValue(forKey: $0) }
            return (expired, state.deadlines.next())
        }
        for call in expired {
            call.sendCancel()
            call.finish(status: RPCError(.deadlineExceeded, "deadline exceeded"))
        }
        if let next { connection.wakeUp(at: next) }
    }

    func connectionClosed(_ connection: FrameConnection, error: RPCError?) {
        failAll(error ?? RPCError(.unavailable, "connection closed"))
        onClose(self)
    }

    private func failAll(_ error: RPCError) {
        let calls = state.withLock { state -> [ClientCall] in
            unusable.store(true, ordering: .releasing)
            defer { state.calls.removeAll() }
            return Array(state.calls.values)
        }
        // The call may have run on the server, so only idempotent methods get retried.
        let failure = error.code == .ok ? RPCError(.unavailable, "connection closed") : error
        for call in calls { call.finish(status: failure) }
    }
}

/// One call from the client's side: responses arrive in `inbox`, the final status ends it.
final class ClientCall: Sendable {
    let id: UInt64
    let inbox: MessageInbox
    /// The server's window for our requests, for client-streaming calls. (A single request
    /// always fits, since a fresh window is positive.)
    let window: SendWindow?
    private unowned let owner: ClientConnection
    private let status = Locked<RPCError?>(nil)

    init(id: UInt64, owner: ClientConnection, streamsRequests: Bool) {
        self.id = id
        self.owner = owner
        self.window = streamsRequests ? SendWindow(initialBytes: Int(owner.serverSettings.initialWindowBytes)) : nil
        self.inbox = MessageInbox(windowBytes: owner.localWindowBytes,
                                  maxMessageBytes: owner.connection.maxFrameBytes) { [unowned owner] bytes in
            var frame = WireFrame(callID: id)
            frame.windowUpdateBytes = UInt32(clamping: bytes)
            owner.connection.send(frame)
        }
    }

    /// The final status, once it arrived.
    var finalStatus: RPCError? { status.withLock { $0 } }

    /// Records the final status: messages already received, and `last`, stay readable, then
    /// the inbox ends cleanly on OK or with the error otherwise.
    @discardableResult
    func finish(status final: RPCError, last: Data? = nil) -> MessageInbox.Push {
        let first = status.withLock { current -> Bool in
            guard current == nil else { return false }
            current = final
            return true
        }
        guard first else { return .finished }
        if final.code == .ok {
            window?.fail(RPCError(.failedPrecondition, "call already ended"))
            return inbox.finish(last: last)
        } else {
            window?.fail(final)
            return inbox.finish(final)
        }
    }

    /// Refuses, before sending, a frame larger than the server accepts.
    func checkSize(of frame: WireFrame) throws {
        let limit = Int(owner.serverSettings.maxFrameBytes)
        // Header and metadata are small: only a message near the limit is measured exactly.
        guard limit > 0, let message = frame.message, message.count > limit / 2 else { return }
        let size = frame.encodedWithLengthPrefix().count - 4
        if size > limit { throw frameTooLarge(size, limit: limit) }
    }

    private func frameTooLarge(_ size: Int, limit: Int) -> RPCError {
        owner.remove(id)
        return RPCError(.resourceExhausted, "message of \(size) bytes exceeds the server's frame limit of \(limit) bytes")
    }

    /// Sends one streamed request message.
    func sendMessage(_ message: Data) throws {
        let limit = Int(owner.serverSettings.maxFrameBytes)
        if limit > 0 && message.count + 32 > limit { throw frameTooLarge(message.count + 32, limit: limit) }
        var frame = WireFrame(callID: id)
        frame.message = message
        try send(frame)
    }

    func send(_ frame: WireFrame) throws {
        guard owner.connection.send(frame) else { throw RPCError(.unavailable, "connection closed") }
    }

    /// Tells the server to stop working on this call.
    func sendCancel() {
        var frame = WireFrame(callID: id)
        frame.cancel = true
        owner.connection.send(frame)
    }

    /// The caller gave up (task cancelled): tell the server and end the call locally.
    func cancel() {
        guard finalStatus == nil else { return }
        owner.remove(id)
        sendCancel()
        finish(status: RPCError(.cancelled, "call cancelled by the caller"))
    }
}
