import CallTraceProto
import Foundation
import SwiftProtobuf
import Synchronization

/// One call on the server: its inbound messages, its outbound window, its handler task, and
/// the guarantee that exactly one final status is sent.
final class ServerCallIO: Sendable {
    let context: ServerContext
    let inbox: MessageInbox
    let window: SendWindow
    private unowned let owner: ServerConnection
    private let completed = Atomic<Bool>(false)
    private let task = Mutex<Task<Void, Never>?>(nil)
    let startedAt = ContinuousClock.now

    init(context: ServerContext, owner: ServerConnection, windowBytes: Int, peerWindowBytes: Int, maxFrameBytes: Int) {
        self.context = context
        self.owner = owner
        self.window = SendWindow(initialBytes: peerWindowBytes)
        let callID = context.callID
        self.inbox = MessageInbox(windowBytes: windowBytes, maxMessageBytes: maxFrameBytes) { [unowned owner] bytes in
            owner.grantWindow(callID: callID, bytes: bytes)
        }
    }

    var isCompleted: Bool { completed.load(ordering: .acquiring) }

    func attach(_ handler: Task<Void, Never>) {
        task.withLock { $0 = handler }
    }

    /// The one request of a unary or server-streaming call.
    func singleRequest() async throws -> Data {
        guard let request = try await inbox.next() else {
            throw RPCError(.invalidArgument, "call ended without a request message")
        }
        return request
    }

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
        try await window.acquire(message.count)
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
    @discardableResult
    func complete(status error: RPCError?, response: Data? = nil) -> Bool {
        guard completed.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else {
            return false
        }
        var frame = WireFrame(callID: context.callID)
        frame.message = response
        frame.status = error ?? RPCError(.ok, "")
        owner.connection.send(frame)
        let failure = error ?? RPCError(.cancelled, "call ended")
        window.fail(failure)
        inbox.finish(failure)
        owner.callEnded(self, code: error?.code ?? .ok)
        return true
    }

    /// The caller went away (cancel frame or closed connection): stop the handler, send nothing.
    func abandon(_ reason: RPCError) {
        guard completed.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else {
            return
        }
        window.fail(reason)
        inbox.finish(reason)
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
