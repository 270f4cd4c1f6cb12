import NIOCore
import NIOHTTPTypes

/// Closes a connection whose next request's head (request line and headers) has not arrived in
/// full within `limit` of the server asking for it: once the connection opened, or the previous
/// response ended, the first read the server's side asks for starts the clock. (Not the opening
/// itself: a server whose tasks are busy reads late, and that delay is not the client's. Under
/// ThreadSanitizer's slowdown a request sent at once waited over 3 s to be read.) A client
/// that connects and says nothing (an idle-connection flood), or dribbles a request a byte at a
/// time (slowloris), is shed after `limit` and holds no descriptor longer; a request that has
/// begun its body, or a response still being written, is not timed. (Hummingbird's own idle
/// timeout counts any byte as activity, so a slowloris would hold it open for ever.) nginx in
/// front does the same for browsers (`client_header_timeout`); this holds for the listener alone.
final class RequestHeadDeadline: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let limit: TimeAmount
    private var deadline: Scheduled<Void>?
    /// Requests whose head arrived and whose answer has not ended (more than one when a client
    /// pipelines): the clock runs only when there are none.
    private var unanswered = 0
    /// Whether the server's side asks for the next head: set when the connection opens and when
    /// an answer ends, cleared by the read that starts the clock (later reads, a slowloris's
    /// dribble among them, do not start it again).
    private var awaitingHead = true
    /// A read the server's side asked for that no bytes have answered yet.
    private var readOutstanding = false

    init(limit: TimeAmount) {
        self.limit = limit
    }

    func read(context: ChannelHandlerContext) {
        readOutstanding = true
        if awaitingHead && unanswered == 0 && context.channel.isActive {
            awaitingHead = false
            arm(context)
        }
        context.read()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        readOutstanding = false
        context.fireChannelReadComplete()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head = unwrapInboundIn(data) {
            unanswered += 1
            awaitingHead = false
            disarm()
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            unanswered = max(0, unanswered - 1)
            // The next head is awaited from the next read the server asks for, or now if it
            // already asked.
            if unanswered == 0 {
                if readOutstanding { arm(context) } else { awaitingHead = true }
            }
        }
        context.write(data, promise: promise)
    }

    func channelInactive(context: ChannelHandlerContext) {
        disarm()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        disarm()
    }

    private func arm(_ context: ChannelHandlerContext) {
        disarm()
        deadline = context.eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(in: limit) {
            context.close(promise: nil)
        }
    }

    private func disarm() {
        deadline?.cancel()
        deadline = nil
    }
}

@available(*, unavailable)
extension RequestHeadDeadline: Sendable {}
