import Hummingbird
import NIOCore

/// What one request carries through the gateway: the browser's address (as `ClientAddress`
/// resolved it) and the session its cookie opened, if any.
struct WebContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    /// The connection's own IP address; nil on a Unix socket.
    let peerAddress: String?
    /// The person's address, for identity; set by `PageGuard`.
    var clientAddress: String?
    /// Set by `PageGuard` when the session cookie opened.
    var session: WebSession?

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        peerAddress = source.channel.remoteAddress?.ipAddress
    }

    /// Forms are small: 64 KiB is more than any of ours.
    var maxUploadSize: Int { 64 * 1024 }

    /// Calls to the services for this request: with the person's token when signed in.
    var caller: Caller { Caller(token: session?.token, clientAddress: clientAddress) }
}
