package import CallTraceRPC

/// How a service is reached and reaches its peers. A process always serves over `.tls`; only
/// tests choose `.inProcess`, through `ServiceInstance.start(_:configuration:logger:clock:blocking:transport:)`
/// at package access — no setting, flag or environment variable reaches it.
package enum ServiceTransport: Sendable {
    /// Its port and mutual TLS; its peers dialled over TCP and TLS.
    case tls
    /// No socket: attached to `network` at its listen address, its peers the servers `network`
    /// has at theirs, each of its calls presenting the identity its certificate names. Peer
    /// policies, admission, limits and deadlines are those of a socket's.
    case inProcess(InProcessNetwork)
}
