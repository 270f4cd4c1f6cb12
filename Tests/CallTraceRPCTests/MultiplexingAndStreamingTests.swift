import CallTraceProto
import CallTraceRPC
import CallTraceTestSupport
import Foundation
import Testing

@Suite("Multiplexing, streaming and flow control")
struct MultiplexingAndStreamingTests {
    @Test("200 concurrent calls on one connection each get their own answer")
    func concurrentCalls() async throws {
        let fixture = try EchoFixture()
        let client = try fixture.client()
        let mismatches = try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<200 {
                group.addTask {
                    var request = Calltrace_Testing_V1_EchoRequest()
                    request.payload = Data("call-\(index)".utf8)
                    request.delayMs = UInt32(index % 7) * 5  // finish out of order
                    let response = try await client.unary(Calltrace_Testing_V1_EchoService.echo, request)
                    return response.payload == request.payload
                }
            }
            return try await group.reduce(0) { $0 + ($1 ? 0 : 1) }
        }
        #expect(mismatches == 0)
    }

    @Test("64 MiB streamed from client to server arrives whole and in order")
    func upload64MiB() async throws {
        let fixture = try EchoFixture()
        let client = try fixture.client()
        let chunkSize = 64 * 1024, chunks = 1024
        var expected: UInt64 = 0xcbf2_9ce4_8422_2325
        var chunkMessages: [Calltrace_Testing_V1_UploadRequest] = []
        for index in 0..<4 {
            var message = Calltrace_Testing_V1_UploadRequest()
            message.chunk = Data((0..<chunkSize).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ index) })
            chunkMessages.append(message)
        }
        for index in 0..<chunks { expected = fnv1a(chunkMessages[index % 4].chunk, seed: expected) }
        let response = try await client.clientStreaming(Calltrace_Testing_V1_EchoService.upload) { writer in
            for index in 0..<chunks { try await writer.send(chunkMessages[index % 4]) }
        }
        #expect(response.receivedBytes == UInt64(chunkSize * chunks))
        #expect(response.receivedMessages == UInt64(chunks))
        #expect(response.checksum == expected)
    }

    @Test("Uploads and calls from many tasks at once share one connection's writes: each upload arrives whole and in order, each call gets its answer")
    func interleavedWriters() async throws {
        let fixture = try EchoFixture()
        let client = try fixture.client()
        let chunkSize = 64 * 1024, chunks = 64  // 4 MiB each, 16 at once: the socket fills while other writers queue
        let mismatches = try await withThrowingTaskGroup(of: Int.self) { group in
            for upload in 0..<16 {
                group.addTask {
                    let pieces = (0..<3).map { piece in
                        Calltrace_Testing_V1_UploadRequest.with {
                            $0.chunk = Data((0..<chunkSize).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ upload &* 13 &+ piece) })
                        }
                    }
                    var expected: UInt64 = 0xcbf2_9ce4_8422_2325
                    for index in 0..<chunks { expected = fnv1a(pieces[index % 3].chunk, seed: expected) }
                    let response = try await client.clientStreaming(Calltrace_Testing_V1_EchoService.upload) { writer in
                        for index in 0..<chunks { try await writer.send(pieces[index % 3]) }
                    }
                    return response.checksum == expected && response.receivedMessages == UInt64(chunks) ? 0 : 1
                }
            }
            for index in 0..<100 {
                group.addTask {
                    let request = Calltrace_Testing_V1_EchoRequest.with { $0.payload = Data("beside-\(index)".utf8) }
                    return try await client.unary(Calltrace_Testing_V1_EchoService.echo, request).payload == request.payload ? 0 : 1
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(mismatches == 0)
    }

    @Test("64 MiB streamed from server to client arrives whole")
    func download64MiB() async throws {
        let fixture = try EchoFixture()
        let client = try fixture.client()
        var request = Calltrace_Testing_V1_DownloadRequest()
        request.chunkSizeBytes = 64 * 1024
        request.chunkCount = 1024
        let expectedChunk = Data((0..<(64 * 1024)).map { UInt8(truncatingIfNeeded: $0) })
        let (bytes, intact) = try await client.serverStreaming(Calltrace_Testing_V1_EchoService.download, request) { responses in
            var bytes = 0, intact = true
            for try await response in responses {
                bytes += response.chunk.count
                intact = intact && response.chunk == expectedChunk
            }
            return (bytes, intact)
        }
        #expect(bytes == 64 << 20)
        #expect(intact)
    }

    @Test("A receiver that stops reading holds the sender at its window: memory stays bounded")
    func backpressure() async throws {
        let fixture = try EchoFixture()
        let client = try fixture.client()
        var request = Calltrace_Testing_V1_DownloadRequest()
        request.chunkSizeBytes = 64 * 1024
        request.chunkCount = 512  // 32 MiB offered
        request.tag = "bounded"
        let total = try await client.serverStreaming(Calltrace_Testing_V1_EchoService.download, request) { responses in
            var iterator = responses.makeAsyncIterator()
            _ = try await iterator.next()
            // 1 MiB window / 64 KiB chunks = 16 in flight, plus the one read and one over the window.
            // Wait until the sender has filled the window, give it a moment to overrun (a
            // pause can only hide an overrun, never invent one), then count.
            #expect(await eventually { (fixture.echo.observations.chunksSent["bounded"] ?? 0) >= 16 })
            try await Task.sleep(for: .milliseconds(200))
            let sentWhileStalled = fixture.echo.observations.chunksSent["bounded"] ?? 0
            #expect(sentWhileStalled <= 18, "server sent \(sentWhileStalled) chunks to a stalled reader")
            var count = 1
            while try await iterator.next() != nil { count += 1 }
            return count
        }
        #expect(total == 512)
    }
}
