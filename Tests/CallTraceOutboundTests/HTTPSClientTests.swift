import CallTraceOutbound
import CallTraceTestSupport
import Foundation
import Testing

@Suite("Outbound: HTTPS to sub-processors, through libcurl")
struct HTTPSClientTests {
    static let provider = TemporaryPKI.identity("service", "provider")

    @Test("A request arrives as sent — method, path and query, headers, body — and the answer comes back with its status, lower-cased headers and body")
    func roundTrip() async throws {
        let pki = try TemporaryPKI()
        let server = try FakeHTTPSServer(credentials: try pki.credentials(for: Self.provider)) { request in
            .init(status: 201, headers: ["Content-Type": "application/json", "X-Request-Id": "req-7"], body: Data("{\"ok\":true,\"got\":\(request.body.count)}".utf8))
        }
        defer { server.stop() }
        let body = Data((0..<70_000).map { UInt8(truncatingIfNeeded: $0) })
        let response = try await CurlHTTPS(caFile: pki.caPath).send(HTTPSRequest(
            url: "\(server.url)/v1/listen?model=nova-2&language=en-GB", headers: [("Authorization", "Token dg-key"), ("Content-Type", "audio/wav")],
            body: body))
        #expect(response.status == 201)
        #expect(response.headers["content-type"] == "application/json" && response.headers["x-request-id"] == "req-7")
        #expect(response.body == Data("{\"ok\":true,\"got\":70000}".utf8))
        let request = try #require(server.requests.first)
        #expect(request.method == "POST" && request.path == "/v1/listen" && request.query == ["model": "nova-2", "language": "en-GB"])
        #expect(request.headers["authorization"] == "Token dg-key" && request.headers["content-type"] == "audio/wav")
        #expect(request.headers["content-length"] == "70000" && request.headers["expect"] == nil, "no 100-continue round trip")
        #expect(request.body == body)

        var get = HTTPSRequest(url: "\(server.url)/v1/models", headers: [], body: Data())
        get.method = "GET"
        _ = try await CurlHTTPS(caFile: pki.caPath).send(get)
        #expect(server.requests.last?.method == "GET" && server.requests.last?.path == "/v1/models")
    }

    @Test("Only https://: a plain-HTTP URL is refused before any connection, naming its host")
    func httpsOnly() async throws {
        let error = await #expect(throws: HTTPSError.self) {
            _ = try await CurlHTTPS().send(HTTPSRequest(url: "http://api.provider.example/v1", headers: [("x-api-key", "sk-secret")], body: Data()))
        }
        #expect(error?.description == "api.provider.example: only https:// URLs are used")
    }

    @Test("A server whose certificate another CA signed gets nothing; the error names the host and curl's reason, never a header")
    func foreignServer() async throws {
        let pki = try TemporaryPKI(), other = try TemporaryPKI()
        let server = try FakeHTTPSServer(credentials: try other.credentials(for: Self.provider)) { _ in .json("{}") }
        defer { server.stop() }
        let error = await #expect(throws: HTTPSError.self) {
            _ = try await CurlHTTPS(caFile: pki.caPath).send(HTTPSRequest(url: "\(server.url)/v1", headers: [("x-api-key", "sk-secret")], body: Data("b".utf8)))
        }
        let text = error?.description ?? ""
        #expect(text.hasPrefix("localhost: ") && !text.contains("sk-secret"), "\(text)")
        #expect(server.requests.isEmpty)
    }

    @Test("An answer larger than the limit is cut off and reported as such, not returned in part")
    func answerTooLarge() async throws {
        let pki = try TemporaryPKI()
        let server = try FakeHTTPSServer(credentials: try pki.credentials(for: Self.provider)) { _ in .init(body: Data(count: (1 << 20) + 1)) }
        defer { server.stop() }
        let error = await #expect(throws: HTTPSError.self) {
            _ = try await CurlHTTPS(caFile: pki.caPath, maxResponseBytes: 1 << 20).send(HTTPSRequest(url: "\(server.url)/big", headers: [], body: Data()))
        }
        #expect(error?.description == "localhost answered with more than 1 MiB")
        let exact = try FakeHTTPSServer(credentials: try pki.credentials(for: Self.provider)) { _ in .init(body: Data(count: 1 << 20)) }
        defer { exact.stop() }
        #expect(try await CurlHTTPS(caFile: pki.caPath, maxResponseBytes: 1 << 20).send(HTTPSRequest(url: "\(exact.url)/big", headers: [], body: Data()))
            .body.count == 1 << 20, "the limit itself is allowed")
    }
}

/// A producer's failure, as media's playback stream would throw it.
struct ProducerFailed: Error, CustomStringConvertible {
    var description: String { "the recording could not be read" }
}

@Suite("Outbound: a request body streamed while it is sent", .timeLimit(.minutes(2)))
struct StreamedBodyTests {
    static let provider = TemporaryPKI.identity("service", "provider")

    /// `count` pieces of `size` bytes, each filled with its number.
    static func pieces(_ count: Int, of size: Int) -> [Data] { (0..<count).map { Data(repeating: UInt8(truncatingIfNeeded: $0), count: size) } }

    @Test("Pieces written by an async producer reach the server whole and in order, never more than the capacity waiting in between")
    func streamed() async throws {
        let pki = try TemporaryPKI()
        let server = try FakeHTTPSServer(credentials: try pki.credentials(for: Self.provider)) { request in .json("{\"got\":\(request.body.count)}") }
        defer { server.stop() }
        let pieces = Self.pieces(48, of: 64 << 10)  // 3 MiB through a 256 KiB buffer
        let body = StreamedBody(capacity: 256 << 10)
        let producer = Task { () -> [Bool] in
            var taken: [Bool] = []
            for piece in pieces { taken.append(await body.write(piece)) }
            body.finish()
            return taken
        }
        let response = try await CurlHTTPS(caFile: pki.caPath).send(HTTPSRequest(url: "\(server.url)/v1/listen", headers: [],
                                                                                 body: .stream(length: 3 << 20, body)))
        let taken = await producer.value
        #expect(response.status == 200 && response.body == Data("{\"got\":3145728}".utf8))
        #expect(server.requests.first?.body == pieces.reduce(Data(), +))
        #expect(taken == Array(repeating: true, count: 48))
    }

    @Test("A producer that fails aborts the transfer with its own error; one the server stopped reading learns it from write")
    func failures() async throws {
        let pki = try TemporaryPKI()
        let server = try FakeHTTPSServer(credentials: try pki.credentials(for: Self.provider)) { _ in .json("{}") }
        defer { server.stop() }
        let failing = StreamedBody(capacity: 64 << 10)
        let producer = Task {
            for piece in Self.pieces(4, of: 16 << 10) { _ = await failing.write(piece) }
            failing.fail(ProducerFailed())
        }
        let error = await #expect(throws: ProducerFailed.self) {
            _ = try await CurlHTTPS(caFile: pki.caPath).send(HTTPSRequest(url: "\(server.url)/v1", headers: [], body: .stream(length: 1 << 20, failing)))
        }
        #expect(error?.description == "the recording could not be read")
        await producer.value

        // The server answers before reading the body (as one refusing an upload does): the
        // transfer ends, and the producer's next write says to stop instead of waiting for ever.
        server.answerBeforeReadingBodies(.json("{\"err\":\"too large\"}", status: 413))
        let refused = StreamedBody(capacity: 64 << 10)
        let stopped = Task { () -> Int in
            var written = 0
            for piece in Self.pieces(1024, of: 16 << 10) {
                guard await refused.write(piece) else { return written }
                written += 1
            }
            refused.finish()
            return written
        }
        let answer = try? await CurlHTTPS(caFile: pki.caPath).send(HTTPSRequest(url: "\(server.url)/v1", headers: [], body: .stream(length: 16 << 20, refused)))
        #expect(answer == nil || answer?.status == 413)
        #expect(await stopped.value < 1024, "the producer stopped before writing all 16 MiB")
    }
}
