import CallTraceProto
import CallTraceSync
import Foundation
import SwiftProtobuf
import Synchronization

/// One call on the server: its request or request stream, its outbound window, its handler
/// task, and the guarantee that exactly one final status is sent.
final class ServerCallIO: Sendable {
    let context: ServerContext
    /// The one request of a unary or server-streaming call, which the opening frame carries.
    private let request: Data?
    /// The requests of a client-streaming call.
    private let inbox: MessageInbox?
    /// The client's window for a server-streaming call's responses. (A unary response always
    /// goes out with the status.)
    let window: SendWindow?
    private unowned let owner: ServerConnection
    /// What this call counts against its connection's request budget: its request, or the
    /// window a request stream may fill.
    let requestBytes: Int
    private let completed = Atomic<Bool>(false)
    private let task = Locked<Task<Void, Never>?>(nil)
    let startedAt = ContinuousClock.now

    init(context: ServerContext, request: Data?, requestBytes: Int, owner: ServerConnection, windowBytes: Int, peerWindowBytes: Int,
         maxFrameBytes: Int) {
        self.context = context
        self.request = request
        self.owner = owner
        self.requestBytes = requestBytes
        let kind = context.method.kind
        self.window = kind == .serverStreaming ? SendWindow(initialBytes: peerWindowBytes) : nil
        let callID = context.callID
        self.inbox = kind == .clientStreaming
            ? MessageInbox(windowBytes: windowBytes, maxMessageBytes: maxFrameBytes) { [unowned owner] bytes in
                owner.grantWindow(callID: callID, bytes: bytes)
            }
            : nil
    }

    var isCompleted: Bool { completed.load(ordering: .acquiring) }

    func attach(_ handler: Task<Void, Never>) {
        task.withLock { $0 = handler }
    }

    /// The one request of a unary or server-streaming call.
    var singleRequest: Data {
        guard let request else { preconditionFailure("\(context.method.fullName) has a request stream") }
        return request
    }

    /// The requests of a client-streaming call.
    var requests: MessageInbox {
        guard let inbox else { preconditionFailure("\(context.method.fullName) has a single request") }
        return inbox
    }

    /// A request message after the opening frame (client-streaming calls only). Returns false
    /// if the peer overran its window.
    func receive(_ message: Data) -> Bool {
        guard let inbox else {
            terminate(RPCError(.invalidArgument, "\(context.method.fullName) takes one request, in the opening frame"))
            return true
        }
        return inbox.push(message) != .overflow
    }

    /// The client sent its last request (client-streaming calls).
    func endOfRequests() { inbox?.finish() }

    func decode<M: SwiftProtobuf.Message>(_ data: Data) throws -> M {
        do {
            return try M(serializedBytes: data)
        } catch {
            throw RPCError(.invalidArgument, "request is not a valid \(M.protoMessageName)")
        }
    }

    func encode<M: SwiftProtobuf.Message>(_ message: M) throws -> Data {
        do {
            return try message.serializedBytes()
        } catch {
            throw RPCError(.internal, "internal error")
        }
    }

    /// Sends one streamed response, waiting for window.
    func send(_ message: Data) async throws {
        try await window?.acquire(message.count)
        guard !isCompleted else { throw RPCError(.cancelled, "call ended") }
        var frame = WireFrame(callID: context.callID)
        frame.message = message
        guard owner.connection.send(frame) else {
            throw RPCError(.unavailable, "connection closed")
        }
    }

    /// Ends the call with OK, carrying the unary response if there is one.
    func finish(response: Data?) {
        complete(status: nil, response: response)
    }

    /// Ends the call with `error`, unless it ended already. Returns true if this call ended it.
    ///
    /// An answer that comes after the caller's deadline is never sent: the caller gets
    /// DEADLINE_EXCEEDED, even when the handler kept its thread busy past the deadline, so the
    /// connection's timer could not end the call in time.
    @discardableResult
    func complete(status error: RPCError?, response: Data? = nil) -> Bool {
        guard completed.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else {
            return false
        }
        var error = error, response = response
        if let deadline = context.deadline, error?.code != .deadlineExceeded, ContinuousClock.now >= deadline {
            error = RPCError(.deadlineExceeded, "deadline exceeded")
            response = nil
        }
        var frame = WireFrame(callID: context.callID)
        frame.message = response
        frame.status = error ?? RPCError(.ok, "")
        owner.connection.send(frame)
        if window != nil || inbox != nil {
            let failure = error ?? RPCError(.cancelled, "call ended")
            window?.fail(failure)
            inbox?.finish(failure)
        }
        owner.callEnded(self, code: error?.code ?? .ok)
        return true
    }

    /// The caller went away (cancel frame or closed connection): stop the handler, send nothing.
    func abandon(_ reason: RPCError) {
        guard completed.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else {
            return
        }
        window?.fail(reason)
        inbox?.finish(reason)
        task.withLock { $0?.cancel() }
        owner.callEnded(self, code: reason.code)
    }

    /// Ends the call with `error` from outside the handler (deadline, shutdown) and stops the handler.
    func terminate(_ error: RPCError) {
        if complete(status: error) {
            task.withLock { $0?.cancel() }
        }
    }
}
