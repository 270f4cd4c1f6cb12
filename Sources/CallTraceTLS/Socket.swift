import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Plain TCP plumbing under TLS: non-blocking sockets, `TCP_NODELAY`, waiting with deadlines.
enum Socket {
    /// Opens a non-blocking TCP connection to `host:port` before `deadline`.
    static func connect(host: String, port: Int, deadline: ContinuousClock.Instant) throws -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>? = nil
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let first = list else {
            throw TLSError(.socket, "cannot resolve \(host): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(list) }
        var lastError = "no address"
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let info = entry {
            entry = info.pointee.ai_next
            let fd = Glibc.socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
            if fd < 0 { lastError = errnoText(); continue }
            do {
                try prepare(fd)
            } catch {
                Glibc.close(fd)
                throw error
            }
            if Glibc.connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 { return fd }
            if errno == EINPROGRESS {
                if wait(fd, events: Int16(POLLOUT), until: deadline) {
                    var soError: Int32 = 0
                    var length = socklen_t(MemoryLayout<Int32>.size)
                    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &length)
                    if soError == 0 { return fd }
                    lastError = String(cString: strerror(soError))
                } else {
                    lastError = "timed out"
                }
            } else {
                lastError = errnoText()
            }
            Glibc.close(fd)
        }
        throw TLSError(.socket, "cannot connect to \(host):\(port): \(lastError)")
    }

    /// Makes `fd` non-blocking, close-on-exec, with `TCP_NODELAY`.
    static func prepare(_ fd: Int32) throws {
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0, fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0 else {
            throw TLSError(.socket, "cannot make socket non-blocking: \(errnoText())")
        }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    /// Waits until `fd` is ready for `events`; false if `deadline` passed first.
    static func wait(_ fd: Int32, events: Int16, until deadline: ContinuousClock.Instant) -> Bool {
        while true {
            let remaining = ContinuousClock.now.duration(to: deadline)
            if remaining <= .zero { return false }
            let (seconds, attoseconds) = remaining.components
            let milliseconds = Int32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000 + 1)
            var pfd = pollfd(fd: fd, events: events, revents: 0)
            let rc = poll(&pfd, 1, milliseconds)
            if rc > 0 { return true }
            if rc < 0 && errno != EINTR { return true }  // let the caller's next call report it
        }
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }
}
