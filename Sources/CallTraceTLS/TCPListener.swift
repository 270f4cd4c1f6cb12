import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A listening TCP socket. Accepting blocks, so it runs on a dedicated thread.
public final class TCPListener: @unchecked Sendable {
    public let fileDescriptor: Int32
    /// The port actually bound (useful when asked for port 0).
    public let port: Int
    public let host: String

    /// Binds and listens on `host:port`.
    ///
    /// - Throws: `TLSError(.socket)`, e.g. "127.0.0.1:7001 is already in use".
    public init(host: String, port: Int, backlog: Int32 = 512) throws {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>? = nil
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let info = list else {
            throw TLSError(.socket, "cannot resolve listen address \(host): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(list) }
        let fd = Glibc.socket(info.pointee.ai_family, info.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TLSError(.socket, "cannot create socket: \(Socket.errnoText())") }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        if Glibc.bind(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) != 0 {
            let reason = errno == EADDRINUSE ? "is already in use" : "cannot be bound: \(Socket.errnoText())"
            Glibc.close(fd)
            throw TLSError(.socket, "\(host):\(port) \(reason)")
        }
        guard Glibc.listen(fd, backlog) == 0 else {
            Glibc.close(fd)
            throw TLSError(.socket, "cannot listen on \(host):\(port): \(Socket.errnoText())")
        }
        var address = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        self.fileDescriptor = fd
        self.host = host
        self.port = Self.port(of: address)
    }

    deinit { Glibc.close(fileDescriptor) }

    /// Waits for the next connection. Returns nil once the listener is shut down.
    public func accept() -> (fd: Int32, address: String)? {
        while true {
            var address = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let fd = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.accept(fileDescriptor, $0, &length)
                }
            }
            if fd >= 0 { return (fd, Self.describe(address)) }
            switch errno {
            case EINTR, ECONNABORTED, EAGAIN: continue
            case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                usleep(10_000)  // out of descriptors: back off instead of spinning
                continue
            default: return nil
            }
        }
    }

    /// Stops accepting; a thread blocked in `accept` returns nil.
    public func shutdown() {
        _ = Glibc.shutdown(fileDescriptor, Int32(SHUT_RDWR))
    }

    private static func port(of address: sockaddr_storage) -> Int {
        var address = address
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
        }
    }

    static func describe(_ address: sockaddr_storage) -> String {
        var address = address
        var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        var service = [CChar](repeating: 0, count: Int(NI_MAXSERV))
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                getnameinfo($0, socklen_t(MemoryLayout<sockaddr_storage>.size), &host, socklen_t(host.count),
                            &service, socklen_t(service.count), NI_NUMERICHOST | NI_NUMERICSERV)
            }
        }
        guard rc == 0 else { return "unknown" }
        func text(_ chars: [CChar]) -> String {
            String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        return "\(text(host)):\(text(service))"
    }
}
