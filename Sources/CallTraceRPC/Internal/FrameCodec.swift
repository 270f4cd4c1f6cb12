import CallTraceProto
import Foundation
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

/// The hot path's frame, `call_id` plus one message, encoded without building a `Frame`:
/// one allocation and one copy of the payload. Byte-identical to swift-protobuf's encoding of
/// `Frame { call_id, message }` (fields in number order), which a test checks.
///
///     [length: 4 bytes BE] [0x08 varint(call_id)] [0x1A varint(payload.count) payload]
func encodeMessageFrame(callID: UInt64, payload: Data) -> [UInt8] {
    let idSize = callID == 0 ? 0 : 1 + varintSize(callID)
    let bodySize = idSize + 1 + varintSize(UInt64(payload.count)) + payload.count
    return [UInt8](unsafeUninitializedCapacity: 4 + bodySize) { out, count in
        var index = 0
        func put(_ byte: UInt8) {
            out[index] = byte
            index += 1
        }
        func putVarint(_ value: UInt64) {
            var value = value
            while value >= 0x80 {
                put(UInt8(truncatingIfNeeded: value) | 0x80)
                value >>= 7
            }
            put(UInt8(value))
        }
        let length = UInt32(bodySize)
        put(UInt8(length >> 24)); put(UInt8(length >> 16 & 0xFF)); put(UInt8(length >> 8 & 0xFF)); put(UInt8(length & 0xFF))
        if callID != 0 {
            put(0x08)
            putVarint(callID)
        }
        put(0x1A)
        putVarint(UInt64(payload.count))
        payload.withUnsafeBytes { source in
            if let base = source.baseAddress, source.count > 0 {
                UnsafeMutableRawPointer(out.baseAddress! + index).copyMemory(from: base, byteCount: source.count)
            }
        }
        count = 4 + bodySize
    }
}

private func varintSize(_ value: UInt64) -> Int {
    value == 0 ? 1 : (64 - value.leadingZeroBitCount + 6) / 7
}
