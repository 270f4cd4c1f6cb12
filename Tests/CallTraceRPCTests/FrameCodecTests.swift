import CallTraceProto
@testable import CallTraceRPC
import Foundation
import SwiftProtobuf
import CallTraceTestSupport
import Testing

/// The hand-written envelope codec against swift-protobuf's generated `Calltrace_Rpc_V1_Frame`,
/// the schema's reference implementation.
@Suite("Frame codec")
struct FrameCodecTests {
    @Test("Random frames: our encoding is byte-identical to swift-protobuf's, and each side decodes the other's")
    func agreesWithSwiftProtobuf() throws {
        var generator = SystemRandomNumberGenerator()
        for round in 0..<500 {
            let (ours, reference) = randomFrame(&generator)
            let encoded = ours.encodedWithLengthPrefix()
            let referenceBody: [UInt8] = try reference.serializedBytes()
            #expect(Array(encoded.dropFirst(4)) == referenceBody, "round \(round)")
            #expect(encoded.prefix(4) == [UInt8](withUnsafeBytes(of: UInt32(referenceBody.count).bigEndian, Array.init))[...])
            let decoded = try referenceBody.withUnsafeBytes { try WireFrame(decoding: $0) }
            #expect(decoded == ours, "round \(round)")
            #expect(try Calltrace_Rpc_V1_Frame(serializedBytes: Array(encoded.dropFirst(4))) == reference, "round \(round)")
            // Written around a large message's own storage, the frame is the same bytes.
            let (head, tail) = ours.encodedAroundMessage()
            #expect(head + Array(ours.message ?? Data()) + tail == encoded, "round \(round)")
        }
    }

    @Test("Unknown fields of every wire type are skipped, a repeated sub-message merges, the last scalar wins")
    func followsProto3Decoding() throws {
        var first = Calltrace_Rpc_V1_Frame()
        first.callID = 7
        first.header.method = "/a.v1.AService/One"
        first.header.metadata = [.with { $0.key = "x-a"; $0.value = Data("1".utf8) }]
        var second = Calltrace_Rpc_V1_Frame()
        second.callID = 9
        second.header.metadata = [.with { $0.key = "x-b"; $0.value = Data("2".utf8) }]
        second.header.timeoutMs = 50
        var unknown: [UInt8] = [
            0x58, 0x96, 0x01,                   // field 11, varint
            0x61, 1, 2, 3, 4, 5, 6, 7, 8,       // field 12, fixed64
            0x6A, 0x02, 0xAA, 0xBB,             // field 13, bytes
            0x75, 1, 2, 3, 4,                   // field 14, fixed32
            0x7B, 0x08, 0x01, 0x7C,             // field 15, a group holding a varint
            0x4A, 0x00,                         // goaway (9) with the wrong wire type: skipped
        ]
        unknown = try first.serializedBytes() + unknown + (try second.serializedBytes() as [UInt8])
        let ours = try unknown.withUnsafeBytes { try WireFrame(decoding: $0) }
        let reference = try Calltrace_Rpc_V1_Frame(serializedBytes: unknown)
        #expect(ours.callID == reference.callID)
        #expect(ours.header?.method == reference.header.method)
        #expect(ours.header?.metadata.map(\.key) == reference.header.metadata.map(\.key))
        #expect(ours.header?.timeoutMs == 50)
        #expect(!ours.goaway && !reference.goaway)
    }

    @Test("Malformed bodies are refused, as swift-protobuf refuses them", arguments: [
        [0x08],                          // a varint cut short
        [0x1A, 0x05, 0x01],              // bytes longer than the frame
        [0x12, 0x02, 0x0A, 0x05],        // a header whose string runs past its end
        [0x12, 0x03, 0x0A, 0x01, 0xFF],  // a method name that is not UTF-8
        [0x00, 0x01],                    // field number 0
        [0x7B, 0x08, 0x01],              // an unterminated group
        [0x0F],                          // wire type 7
        [0x08] + [UInt8](repeating: 0xFF, count: 10) + [0x01],  // an eleven-byte varint
    ] as [[UInt8]])
    func refusesMalformed(body: [UInt8]) {
        #expect(throws: WireFrame.Malformed.self) { try body.withUnsafeBytes { try WireFrame(decoding: $0) } }
        #expect(throws: (any Error).self) { try Calltrace_Rpc_V1_Frame(serializedBytes: body) }
    }

    @Test("Groups: an end-group must close the group it ends; nesting deeper than 100 is refused without recursion")
    func groupsAreBoundedAndMatched() throws {
        // field 15 opened, field 14 closed: swift-protobuf refuses it too.
        let mismatched: [UInt8] = [0x7B, 0x08, 0x01, 0x74]
        #expect(throws: WireFrame.Malformed.self) { try mismatched.withUnsafeBytes { try WireFrame(decoding: $0) } }
        #expect(throws: (any Error).self) { try Calltrace_Rpc_V1_Frame(serializedBytes: mismatched) }

        func nested(_ depth: Int) -> [UInt8] {
            [UInt8](repeating: 0x7B, count: depth) + [0x08, 0x01] + [UInt8](repeating: 0x7C, count: depth)
        }
        let allowed = try nested(WireReader.maxGroupDepth).withUnsafeBytes { try WireFrame(decoding: $0) }
        #expect(allowed == WireFrame())
        #expect(throws: WireFrame.Malformed.self) {
            try nested(WireReader.maxGroupDepth + 1).withUnsafeBytes { try WireFrame(decoding: $0) }
        }
        // The review's crash: ~60 KB of start-groups in one frame once overflowed the connection
        // thread's stack. It is refused at depth 101, here and inside a header and a settings frame.
        let flood = [UInt8](repeating: 0x7B, count: 60_000)
        #expect(throws: WireFrame.Malformed.self) { try flood.withUnsafeBytes { try WireFrame(decoding: $0) } }
        for field: UInt8 in [0x12, 0x42] {  // header (2) and settings (8), length-delimited
            let inner = [UInt8](repeating: 0x7B, count: 60_000)
            var body: [UInt8] = [field]
            var length = UInt64(inner.count)
            while length >= 0x80 { body.append(UInt8(truncatingIfNeeded: length) | 0x80); length >>= 7 }
            body.append(UInt8(length))
            body += inner
            #expect(throws: WireFrame.Malformed.self) { try body.withUnsafeBytes { try WireFrame(decoding: $0) } }
        }
    }

    @Test("A frame of nested groups from a peer closes that connection only; the server keeps serving")
    func groupFloodOverTheWire() async throws {
        let fixture = try EchoFixture()
        let raw = try RawTLSClient(certificate: try fixture.pki.credentials(for: TemporaryPKI.identity("gateway", "web")),
                                   caPath: fixture.pki.caPath)
        _ = try raw.connect(port: fixture.server.port)
        try raw.sendSettings()
        let body = [UInt8](repeating: 0x7B, count: 60_000)
        let length = UInt32(body.count)
        try raw.write([UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)] + body)
        let goaway = try await onThread { try raw.readFrame() }
        #expect(goaway?.goaway == true)
        #expect(goaway?.status.code == StatusCode.invalidArgument.rawValue)
        let reply = try await fixture.client().unary(Calltrace_Testing_V1_EchoService.echo, .with { $0.payload = Data("still here".utf8) })
        #expect(reply.payload == Data("still here".utf8))
    }

    @Test("The decoder waits for whole frames, across any split of the bytes")
    func splitsAnywhere() throws {
        var frames: [WireFrame] = []
        var bytes: [UInt8] = []
        for index in 1...5 {
            var frame = WireFrame(callID: UInt64(index))
            frame.message = Data(repeating: UInt8(index), count: index * 1000)
            frames.append(frame)
            bytes += frame.encodedWithLengthPrefix()
        }
        for chunk in [1, 3, 4, 5, 999, 4096] {
            var decoder = FrameDecoder(maxFrameBytes: 1 << 20)
            var decoded: [WireFrame] = []
            var offset = 0
            while offset < bytes.count {
                let end = min(offset + chunk, bytes.count)
                bytes[offset..<end].withUnsafeBytes { decoder.append($0) }
                while let frame = try decoder.next() { decoded.append(frame) }
                offset = end
            }
            #expect(decoded == frames, "chunk size \(chunk)")
            #expect(decoder.state == .waitingForHeader)
        }
    }

    @Test("Reads land in the decoder's buffer with room for the rest of the frame: whole frames through reads of any size")
    func readsIntoTheDecoder() throws {
        var frames: [WireFrame] = []
        var bytes: [UInt8] = []
        var starts: [Int] = []
        for (index, size) in [0, 100, 70_000, 16_384, 300_000, 5].enumerated() {
            var frame = WireFrame(callID: UInt64(index + 1))
            frame.message = Data((0..<size).map { UInt8(truncatingIfNeeded: $0 &+ index) })
            frames.append(frame)
            starts.append(bytes.count)
            bytes += frame.encodedWithLengthPrefix()
        }
        for chunk in [1, 7, 4096, 16_384, 100_000] {
            var decoder = FrameDecoder(maxFrameBytes: 1 << 20)
            var decoded: [WireFrame] = []
            var offset = 0
            while offset < bytes.count {
                // The room holds a TLS record, and the rest of a frame whose length is known; a
                // large frame's room is exactly its rest.
                var wanted = FrameDecoder.minimumReadBytes
                var exact = false
                if case .waitingForFrame(let length) = decoder.state {
                    let rest = length - (offset - starts[decoded.count] - 4)
                    exact = length > FrameDecoder.largeFrameBytes
                    wanted = exact ? rest : max(wanted, rest)
                }
                decoder.read { room in
                    #expect(exact ? room.count == wanted : room.count >= wanted, "reads of \(chunk) bytes, at byte \(offset)")
                    let count = min(chunk, room.count, bytes.count - offset)
                    bytes[offset..<offset + count].withUnsafeBytes { room.copyMemory(from: $0) }
                    offset += count
                    return count
                }
                while let frame = try decoder.next() { decoded.append(frame) }
            }
            #expect(decoded == frames, "reads of \(chunk) bytes")
            #expect(decoder.state == .waitingForHeader)
        }
    }

    @Test("A large frame is read into storage its message keeps: no byte copied between the read and the message")
    func largeMessageKeepsTheReadBytes() throws {
        var frame = WireFrame(callID: 5)
        frame.message = Data((0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        let bytes = frame.encodedWithLengthPrefix()
        var decoder = FrameDecoder(maxFrameBytes: 1 << 20)
        var rooms: [UnsafeMutableRawBufferPointer] = []
        var offset = 0
        var decoded: WireFrame?
        while decoded == nil {
            decoder.read { room in
                rooms.append(room)
                let count = min(16_384, room.count, bytes.count - offset)
                bytes[offset..<offset + count].withUnsafeBytes { room.copyMemory(from: $0) }
                offset += count
                return count
            }
            decoded = try decoder.next()
        }
        #expect(decoded == frame)
        // The message's bytes are those the last read wrote: the storage it was read into.
        let last = try #require(rooms.last?.baseAddress)
        decoded?.message?.withUnsafeBytes { message in
            let end = message.baseAddress! + message.count
            #expect(end == UnsafeRawPointer(last + rooms.last!.count))
        }
        #expect(decoder.bufferBytes == 64 * 1024)
    }

    @Test("A stream of 64 KiB messages read a TLS record at a time keeps one 64 KiB buffer")
    func streamKeepsOneBuffer() throws {
        var frame = WireFrame(callID: 3)
        frame.message = Data(repeating: 1, count: 64 * 1024)
        let one = frame.encodedWithLengthPrefix()
        let bytes = Array((0..<50).map { _ in one }.joined())
        var decoder = FrameDecoder(maxFrameBytes: 4 << 20)
        var decoded = 0
        var offset = 0
        while offset < bytes.count {
            decoder.read { room in
                let count = min(16_384, room.count, bytes.count - offset)
                bytes[offset..<offset + count].withUnsafeBytes { room.copyMemory(from: $0) }
                offset += count
                return count
            }
            while let frame = try decoder.next() {
                #expect(frame.message?.count == 64 * 1024)
                decoded += 1
            }
        }
        #expect(decoded == 50)
        #expect(decoder.bufferBytes == 64 * 1024)
    }

    @Test("Bytes that follow a whole large frame not yet taken are kept for the frames after it (an endless loop of append, found by make fuzz)")
    func bytesAfterAWholeLargeFrame() throws {
        var large = WireFrame(callID: 7)
        large.message = Data(repeating: 9, count: 40_000)
        var small = WireFrame(callID: 8)
        small.message = Data("after".utf8)
        let bytes = large.encodedWithLengthPrefix() + small.encodedWithLengthPrefix()
        var decoder = FrameDecoder(maxFrameBytes: 1 << 20)
        // The header first, so the large frame gets storage of its own; then all the rest at once.
        bytes.prefix(8).withUnsafeBytes { decoder.append($0) }
        #expect(try decoder.next() == nil)
        bytes.dropFirst(8).withUnsafeBytes { decoder.append($0) }
        #expect(try decoder.next() == large)
        #expect(try decoder.next() == small)
        #expect(try decoder.next() == nil)
        #expect(decoder.bufferBytes == 64 * 1024, "the shared buffer did not grow to the large frame's size")
    }

    @Test("A length over the limit is refused before any of the frame arrives")
    func refusesLargeLengthEarly() {
        var decoder = FrameDecoder(maxFrameBytes: 1024)
        [UInt8]([0, 0, 4, 1]).withUnsafeBytes { decoder.append($0) }
        #expect(throws: FrameDecoder.Failure.tooLarge(length: 1025, limit: 1024)) { try decoder.next() }
    }

    /// The same random frame in both representations. Each field is present about half the time,
    /// with values around the varint size boundaries.
    private func randomFrame(_ generator: inout some RandomNumberGenerator) -> (WireFrame, Calltrace_Rpc_V1_Frame) {
        func coin() -> Bool { Bool.random(using: &generator) }
        func number() -> UInt64 {
            [0, 1, 127, 128, 16_383, 16_384, UInt64(UInt32.max), UInt64.max, UInt64.random(in: 0...UInt64.max, using: &generator)]
                .randomElement(using: &generator)!
        }
        func bytes() -> Data { Data((0..<[0, 1, 200, 3_000].randomElement(using: &generator)!).map { _ in UInt8.random(in: 0...255, using: &generator) }) }
        func text() -> String { ["", "x", "/calltrace.media.v1.MediaService/Upload", "é€😀", String(repeating: "k", count: 300)].randomElement(using: &generator)! }

        var ours = WireFrame()
        var reference = Calltrace_Rpc_V1_Frame()
        if coin() { ours.callID = number(); reference.callID = ours.callID }
        if coin() {
            var header = WireFrame.Header(method: text())
            for _ in 0..<Int.random(in: 0...3, using: &generator) {
                header.metadata.append(Metadata.Entry(key: text(), value: bytes()))
            }
            if coin() { header.timeoutMs = number() }
            ours.header = header
            reference.header.method = header.method
            reference.header.metadata = header.metadata.map { entry in .with { $0.key = entry.key; $0.value = entry.value } }
            reference.header.timeoutMs = header.timeoutMs
        }
        if coin() { ours.message = bytes(); reference.message = ours.message! }
        if coin() { ours.endStream = true; reference.endStream = true }
        if coin() {
            var status = RPCError(StatusCode(rawValue: UInt32.random(in: 0...16, using: &generator))!, text())
            for _ in 0..<Int.random(in: 0...2, using: &generator) { status.details.append(.init(typeURL: text(), value: bytes())) }
            ours.status = status
            reference.status.code = status.code.rawValue
            reference.status.message = status.message
            reference.status.details = status.details.map { detail in .with { $0.typeURL = detail.typeURL; $0.value = detail.value } }
        }
        if coin() { ours.cancel = true; reference.cancel = true }
        if coin() { ours.windowUpdateBytes = UInt32(truncatingIfNeeded: number()); reference.windowUpdateBytes = ours.windowUpdateBytes }
        if coin() {
            let settings = WireFrame.Settings(maxFrameBytes: UInt32(truncatingIfNeeded: number()),
                                              initialWindowBytes: UInt32(truncatingIfNeeded: number()),
                                              maxConcurrentCalls: UInt32(truncatingIfNeeded: number()))
            ours.settings = settings
            reference.settings.maxFrameBytes = settings.maxFrameBytes
            reference.settings.initialWindowBytes = settings.initialWindowBytes
            reference.settings.maxConcurrentCalls = settings.maxConcurrentCalls
        }
        if coin() { ours.goaway = true; reference.goaway = true }
        return (ours, reference)
    }
}
