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

    /// Reads until the listener closes the connection or 5 s pass: what it sent, and whether it
    /// closed. The reads block, so they run on a thread of their own: on the cooperative pool
    /// (two threads here) they could hold the very threads the listener needs to answer.
    private static func readToClose(_ fd: Int32) async throws -> (text: String, closed: Bool) {
        try await onThread { readingToClose(fd) }
    }

    private static func readingToClose(_ fd: Int32) -> (text: String, closed: Bool) {
        var received = Data(), buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let got = recv(fd, &buffer, buffer.count, 0)
            if got > 0 { received.append(contentsOf: buffer[0..<got]); continue }
            return (String(decoding: received, as: UTF8.self), got == 0)
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
            let (text, closed) = try await Self.readToClose(fd)
            #expect(closed && text.isEmpty)
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
        // The limit runs from the connection's opening, so it must outlast a loaded machine's
        // delay in reading a request sent at once (300 ms did not, under ThreadSanitizer).
        try await withListener(headTimeout: .seconds(3)) { port in
            let fd = try RawTLSClient.plainTCP(port: port)
            defer { close(fd) }
            #expect(send(fd, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"))
            let (text, closed) = try await Self.readToClose(fd)
            #expect(text.hasPrefix("HTTP/1.1 200") && text.hasSuffix("ok") && closed, "\(text)")
        }
    }
}
