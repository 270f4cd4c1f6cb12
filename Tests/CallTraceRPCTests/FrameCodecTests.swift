import CallTraceProto
@testable import CallTraceRPC
import Foundation
import Testing

@Suite("Frame codec")
struct FrameCodecTests {
    @Test("The hand-encoded message frame is byte-identical to swift-protobuf's", arguments: [
        (UInt64(0), 0), (1, 0), (1, 100), (127, 127), (128, 128), (300, 16_384), (UInt64.max, 70_000),
    ])
    func messageFrameMatchesProtobuf(callID: UInt64, size: Int) throws {
        let payload = Data((0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        var frame = Calltrace_Rpc_V1_Frame()
        frame.callID = callID
        frame.message = payload
        #expect(encodeMessageFrame(callID: callID, payload: payload) == frame.encodedWithLengthPrefix())
    }

    @Test("The decoder waits for whole frames, across any split of the bytes")
    func splitsAnywhere() throws {
        var frames: [Calltrace_Rpc_V1_Frame] = []
        var bytes: [UInt8] = []
        for index in 1...5 {
            var frame = Calltrace_Rpc_V1_Frame()
            frame.callID = UInt64(index)
            frame.message = Data(repeating: UInt8(index), count: index * 1000)
            frames.append(frame)
            bytes += frame.encodedWithLengthPrefix()
        }
        for chunk in [1, 3, 4, 5, 999, 4096] {
            var decoder = FrameDecoder(maxFrameBytes: 1 << 20)
            var decoded: [Calltrace_Rpc_V1_Frame] = []
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

    @Test("A length over the limit is refused before any of the frame arrives")
    func refusesLargeLengthEarly() {
        var decoder = FrameDecoder(maxFrameBytes: 1024)
        [UInt8]([0, 0, 4, 1]).withUnsafeBytes { decoder.append($0) }
        #expect(throws: FrameDecoder.Failure.tooLarge(length: 1025, limit: 1024)) { try decoder.next() }
    }
}
