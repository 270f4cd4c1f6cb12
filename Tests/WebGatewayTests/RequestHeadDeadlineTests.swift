import CallTraceHTTP
import CallTraceTestSupport
import Foundation
import Hummingbird
import Logging
import Testing

/// A gateway's HTTP listener sheds a connection that has not sent its request's head within the
/// limit: one that says nothing, one that dribbles a request a byte at a time (which an idle
/// timeout would never cut), one left open after its answer. A request sent in time is answered.
@Suite("The HTTP listener closes connections whose request head does not arrive in time (idle floods, slowloris)")
struct RequestHeadDeadlineTests {
    /// A listener with one route and a limit (300 ms unless said), on a free port; `body` gets the port.
    private func withListener(headTimeout: Duration = .milliseconds(300), _ body: (Int) async throws -> Void) async throws {
        let listener = HTTPListener(address: .tcp(host: "127.0.0.1", port: 0), serving: "test", logger: Logger(label: "test"),
                                    headTimeout: headTimeout) {
            let router = Router()
            router.get("/") { _, _ in "ok" }
            return router
        }
        let running = Task { try await listener.run() }
        defer { running.cancel() }
        let port = try #require(await listener.port())
        try await body(port)
    }

    /// How a read to the end finished: the listener closed the connection, the wait ran out
    /// with it still open, or the socket failed (errno).
    private enum Ending: Equatable, CustomStringConvertible {
        case closed, stillOpen(after: Int), failed(errno: Int32)
        var description: String {
            switch self {
            case .closed: "closed by the listener"
            case .stillOpen(let seconds): "still open after \(seconds) s"
            case .failed(let code): "read failed (errno \(code))"
            }
        }
    }

    /// Reads until the listener closes the connection or `seconds` pass: what it sent, and how
    /// the read ended. The reads block, so they run on a thread of their own: on the cooperative
    /// pool (two threads here) they could hold the very threads the listener needs to answer.
    private static func readToClose(_ fd: Int32, waitingAtMost seconds: Int = 5) async throws -> (text: String, ending: Ending) {
        try await onThread { readingToClose(fd, waitingAtMost: seconds) }
    }

    private static func readingToClose(_ fd: Int32, waitingAtMost seconds: Int) -> (text: String, ending: Ending) {
        var timeout = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var received = Data(), buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let got = recv(fd, &buffer, buffer.count, 0)
            if got > 0 { received.append(contentsOf: buffer[0..<got]); continue }
            let text = String(decoding: received, as: UTF8.self)
            if got == 0 { return (text, .closed) }
            let code = errno
            return (text, code == EAGAIN || code == EWOULDBLOCK ? .stillOpen(after: seconds) : .failed(errno: code))
        }
    }

    private func send(_ fd: Int32, _ text: String) -> Bool {
        text.utf8CString.withUnsafeBufferPointer { Glibc.send(fd, $0.baseAddress, $0.count - 1, Int32(MSG_NOSIGNAL)) == $0.count - 1 }
    }

    @Test("A connection that never speaks is closed")
    func silent() async throws {
        try await withListener { port in
            let fd = try RawTLSClient.plainTCP(port: port)
            defer { close(fd) }
            // Closed, not timed out: the read gives up after 5 s, so a close seen is the listener's doing.
            let (text, ending) = try await Self.readToClose(fd)
            #expect(ending == .closed && text.isEmpty, "\(ending)")
        }
    }

    @Test("A request dribbled a byte at a time is closed, though bytes keep coming")
    func slowloris() async throws {
        try await withListener { port in
            let fd = try RawTLSClient.plainTCP(port: port)
            defer { close(fd) }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            let request = Array("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + String(repeating: "a", count: 200))
            var closed = false
            for byte in request {
                // One byte every 20 ms: the slowloris's pace, far inside any idle timeout.
                try await Task.sleep(for: .milliseconds(20))
                var buffer = [UInt8](repeating: 0, count: 64)
                let got = recv(fd, &buffer, buffer.count, 0)
                if got == 0 || !send(fd, String(byte)) { closed = true; break }
            }
            #expect(closed, "the listener held a request whose head took \(request.count * 20) ms")
        }
    }

    @Test("A request sent in time is answered; the connection is closed once idle past the limit")
    func answeredThenIdle() async throws {
        // The limit runs from the server's first read; 3 s leaves room for a loaded machine's
        // delay between that read and the answer. The wait is long (30 s) so that a failure
        // says which went wrong: no close (the idle limit not kept) or no answer.
        try await withListener(headTimeout: .seconds(3)) { port in
            let fd = try RawTLSClient.plainTCP(port: port)
            defer { close(fd) }
            #expect(send(fd, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"))
            let (text, ending) = try await Self.readToClose(fd, waitingAtMost: 30)
            #expect(text.hasPrefix("HTTP/1.1 200") && text.hasSuffix("ok"), "answer: \(text.isEmpty ? "none" : text), \(ending)")
            #expect(ending == .closed, "\(ending), answer: \(text.isEmpty ? "none" : text)")
        }
    }
}
