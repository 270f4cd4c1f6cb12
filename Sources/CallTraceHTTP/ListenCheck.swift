import CallTraceServiceHost
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// What start-up checks of the HTTP address, so a taken port or a live socket is a "cannot start"
/// line, not an error after the service reported itself serving.
public enum ListenCheck {
    public static func check(_ address: HTTPListenAddress) throws {
        switch address {
        case .tcp(let host, let port):
            var hints = addrinfo()
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
            var found: UnsafeMutablePointer<addrinfo>?
            guard getaddrinfo(host, String(port), &hints, &found) == 0, let first = found else {
                throw ConfigurationError("http_listen \(host):\(port): \(host) is not an address of this machine")
            }
            defer { freeaddrinfo(found) }
            let fd = socket(first.pointee.ai_family, first.pointee.ai_socktype, first.pointee.ai_protocol)
            guard fd >= 0 else { throw ConfigurationError("http_listen \(host):\(port): no socket (\(String(cString: strerror(errno))))") }
            defer { close(fd) }
            var yes: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
            guard bind(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 else {
                throw ConfigurationError("http_listen \(host):\(port) cannot be bound: \(String(cString: strerror(errno)))")
            }
        case .unix(let path):
            var info = stat()
            guard lstat(path, &info) == 0 else { return }
            guard (info.st_mode & S_IFMT) == S_IFSOCK else {
                throw ConfigurationError("http_listen unix:\(path): something that is not a socket is there")
            }
            // A socket someone answers on is another instance's: never taken over.
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { return }
            defer { close(fd) }
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            let bytes = Array(path.utf8)
            guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
                throw ConfigurationError("http_listen unix:\(path): the path is too long for a socket")
            }
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                raw.copyBytes(from: bytes)
                raw[bytes.count] = 0
            }
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            if connected == 0 { throw ConfigurationError("http_listen unix:\(path): another process is serving on it") }
        }
    }
}
