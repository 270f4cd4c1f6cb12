import CallTraceProto
import SwiftProtobuf

/// Splits a byte stream into ctrpc/1 frames.
///
///     +--------+--------+--------+--------+=====================+
///     |      length (uint32, big-endian)  |  Frame (protobuf)   |
///     +--------+--------+--------+--------+=====================+
///      0                                 4               4+length
///
/// The length is checked against `maxFrameBytes` before anything is allocated for the frame.
struct FrameDecoder {
    enum State: Equatable {
        case waitingForHeader
        case waitingForFrame(length: Int)
    }

    enum Failure: Error, Equatable {
        /// The announced length exceeds the limit.
        case tooLarge(length: UInt32, limit: Int)
        /// The bytes of a frame are not a valid `Frame`.
        case malformed
    }

    let maxFrameBytes: Int
    private(set) var state: State = .waitingForHeader
    private var buffer: [UInt8] = []
    private var readIndex = 0

    init(maxFrameBytes: Int) {
        self.maxFrameBytes = maxFrameBytes
        buffer.reserveCapacity(64 * 1024)
    }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        if readIndex > 0 && readIndex == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            readIndex = 0
        } else if readIndex > 64 * 1024 && readIndex * 2 > buffer.count {
            buffer.removeSubrange(0..<readIndex)
            readIndex = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The next complete frame, or nil when more bytes are needed.
    mutating func next() throws(Failure) -> Calltrace_Rpc_V1_Frame? {
        while true {
            switch state {
            case .waitingForHeader:
                guard buffer.count - readIndex >= 4 else { return nil }
                let length = buffer.withUnsafeBytes { raw in
                    UInt32(bigEndian: raw.loadUnaligned(fromByteOffset: readIndex, as: UInt32.self))
                }
                guard Int(length) <= maxFrameBytes else {
                    throw .tooLarge(length: length, limit: maxFrameBytes)
                }
                readIndex += 4
                state = .waitingForFrame(length: Int(length))
            case .waitingForFrame(let length):
                guard buffer.count - readIndex >= length else {
                    if buffer.capacity < readIndex + length { buffer.reserveCapacity(readIndex + length) }
                    return nil
                }
                let start = readIndex
                readIndex += length
                state = .waitingForHeader
                do {
                    return try buffer.withUnsafeBytes { raw in
                        try Calltrace_Rpc_V1_Frame(serializedBytes: UnsafeRawBufferPointer(rebasing: raw[start..<start + length]))
                    }
                } catch {
                    throw .malformed
                }
            }
        }
    }
}

extension Calltrace_Rpc_V1_Frame {
    /// The frame with its 4-byte length prefix, ready for one write.
    func encodedWithLengthPrefix() -> [UInt8] {
        // Serialising a message with only known fields cannot fail.
        let body: [UInt8] = (try? serializedBytes()) ?? []
        let length = UInt32(body.count).bigEndian
        return [UInt8](unsafeUninitializedCapacity: body.count + 4) { out, count in
            let raw = UnsafeMutableRawBufferPointer(out)
            withUnsafeBytes(of: length) { raw.copyMemory(from: $0) }
            body.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: raw[4...]).copyMemory(from: $0) }
            count = body.count + 4
        }
    }
}
