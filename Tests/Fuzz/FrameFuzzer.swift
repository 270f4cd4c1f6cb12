// libFuzzer harness for the hand-written envelope codec (Sources/CallTraceRPC/Internal/FrameCodec.swift),
// compiled together with it by `make fuzz` / `make fuzz-smoke` (not part of the Swift package).
//
// Whatever the bytes, decoding returns a frame or throws, never crashes or recurses without
// bound; a frame that decodes encodes again to bytes that decode to the same frame; a stream of
// the bytes, cut anywhere, never makes the frame splitter misbehave (nor loop for ever: a whole
// large frame not yet taken, with bytes after it in the same piece, once did).
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFrame(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    if let frame = try? WireFrame(decoding: bytes) {
        let encoded = frame.encodedWithLengthPrefix()
        let decoded = try? encoded.dropFirst(4).withUnsafeBytes { try WireFrame(decoding: $0) }
        precondition(decoded == frame, "a decoded frame did not survive re-encoding")
    }
    var splitter = FrameDecoder(maxFrameBytes: 1 << 16)
    let half = size / 2
    splitter.append(UnsafeRawBufferPointer(rebasing: bytes[..<half]))
    while (try? splitter.next()) != nil {}
    splitter.append(UnsafeRawBufferPointer(rebasing: bytes[half...]))
    while (try? splitter.next()) != nil {}
    return 0
}
