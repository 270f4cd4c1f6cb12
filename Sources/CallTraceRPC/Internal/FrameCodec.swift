import Foundation

/// `calltrace.rpc.v1.Frame` (proto/calltrace/rpc/v1/frame.proto) as the connection layer
/// handles it, with a hand-written protobuf codec.
///
/// Every call crosses this codec four times. swift-protobuf's general machinery (a heap-backed
/// message, a size pass, a copy to add the length prefix) cost as much per call as the rest of
/// the RPC layer, so the envelope is encoded and decoded here instead; the messages inside stay
/// swift-protobuf's. The generated `Calltrace_Rpc_V1_Frame` remains the reference: a test checks
/// that both codecs agree, byte for byte, on random frames.
///
/// Decoding follows proto3: unknown fields are skipped, the last value of a scalar wins, a
/// sub-message field that appears twice is merged, and, as in swift-protobuf, a known field with
/// an unexpected wire type is skipped like an unknown one. `Status.trailers` is skipped too.
struct WireFrame: Equatable {
    struct Header: Equatable {
        var method = ""
        var metadata: [Metadata.Entry] = []
        var timeoutMs: UInt64 = 0
    }

    struct Settings: Equatable {
        var maxFrameBytes: UInt32 = 0
        var initialWindowBytes: UInt32 = 0
        var maxConcurrentCalls: UInt32 = 0
    }

    var callID: UInt64 = 0
    var header: Header?
    /// The `payload.message` oneof case: present (possibly empty) or absent.
    var message: Data?
    var endStream = false
    var status: RPCError?
    var cancel = false
    var windowUpdateBytes: UInt32 = 0
    var settings: Settings?
    var goaway = false

    init(callID: UInt64 = 0) {
        self.callID = callID
    }
}

// MARK: Encoding

extension WireFrame {
    /// The frame with its 4-byte big-endian length prefix: one allocation, fields in number
    /// order, default values omitted, exactly as swift-protobuf writes them.
    func encodedWithLengthPrefix() -> [UInt8] {
        let sizes = Sizes(self)
        return [UInt8](unsafeUninitializedCapacity: 4 + sizes.frame) { buffer, count in
            var out = WireWriter(UnsafeMutableRawBufferPointer(buffer))
            writeHead(&out, sizes)
            if let message { out.bytes(3, message, always: true) }
            writeTail(&out, sizes)
            precondition(out.index == 4 + sizes.frame, "frame size mismatch")
            count = out.index
        }
    }

    /// The same bytes as `encodedWithLengthPrefix`, less the message's: what comes before them
    /// (the length prefix, the fields before the message, its key and length) and after them.
    /// A large message is written from its own storage between the two, never copied into a
    /// frame buffer first.
    func encodedAroundMessage() -> (head: [UInt8], tail: [UInt8]) {
        let sizes = Sizes(self)
        let messageBytes = message.map { 1 + varintSize(UInt64($0.count)) } ?? 0
        let head = [UInt8](unsafeUninitializedCapacity: 4 + sizes.beforeMessage + messageBytes) { buffer, count in
            var out = WireWriter(UnsafeMutableRawBufferPointer(buffer))
            writeHead(&out, sizes)
            if let message {
                out.key(3, .lengthDelimited)
                out.varint(UInt64(message.count))
            }
            count = out.index
        }
        // Most tails are empty (no end of stream, status or window update after a message), and
        // `Array(unsafeUninitializedCapacity: 0)` stores its count, 0, into the stdlib's one
        // shared empty-array storage: a write racing every other thread's read of an empty
        // array's count, a third of the suite's ThreadSanitizer reports (swiftlang/swift#14778
        // and #21627 fixed the same write elsewhere in the stdlib).
        let tailBytes = sizes.frame - sizes.beforeMessage - sizes.message
        let tail = tailBytes == 0 ? [] : [UInt8](unsafeUninitializedCapacity: tailBytes) { buffer, count in
            var out = WireWriter(UnsafeMutableRawBufferPointer(buffer))
            writeTail(&out, sizes)
            count = out.index
        }
        return (head, tail)
    }

    /// The encoded sizes of a frame's parts, measured once before it is written.
    private struct Sizes {
        var header: Int?, status: Int?, settings: Int?
        /// Fields 1 and 2.
        var beforeMessage = 0
        /// Field 3, with its key and length.
        var message = 0
        /// The whole frame, without the length prefix.
        var frame = 0

        init(_ frame: WireFrame) {
            header = frame.header.map(WireFrame.size(of:))
            status = frame.status.map(WireFrame.size(of:))
            settings = frame.settings.map(WireFrame.size(of:))
            if frame.callID != 0 { beforeMessage += 1 + varintSize(frame.callID) }
            if let header { beforeMessage += lengthDelimitedSize(header) }
            if let body = frame.message { message = lengthDelimitedSize(body.count) }
            var after = 0
            if frame.endStream { after += 2 }
            if let status { after += lengthDelimitedSize(status) }
            if frame.cancel { after += 2 }
            if frame.windowUpdateBytes != 0 { after += 1 + varintSize(UInt64(frame.windowUpdateBytes)) }
            if let settings { after += lengthDelimitedSize(settings) }
            if frame.goaway { after += 2 }
            self.frame = beforeMessage + message + after
        }
    }

    /// The length prefix and the fields before the message (1, 2).
    private func writeHead(_ out: inout WireWriter, _ sizes: Sizes) {
        out.bigEndian32(UInt32(sizes.frame))
        out.varintField(1, callID)
        if let header, let headerSize = sizes.header {
            out.key(2, .lengthDelimited)
            out.varint(UInt64(headerSize))
            out.string(1, header.method)
            for entry in header.metadata { out.pair(2, size: Self.size(of: entry), entry.key, entry.value) }
            out.varintField(3, header.timeoutMs)
        }
    }

    /// The fields after the message (4 to 9).
    private func writeTail(_ out: inout WireWriter, _ sizes: Sizes) {
        out.varintField(4, endStream ? 1 : 0)
        if let status, let statusSize = sizes.status {
            out.key(5, .lengthDelimited)
            out.varint(UInt64(statusSize))
            out.varintField(1, UInt64(status.code.rawValue))
            out.string(2, status.message)
            for detail in status.details { out.pair(3, size: Self.size(of: detail), detail.typeURL, detail.value) }
        }
        out.varintField(6, cancel ? 1 : 0)
        out.varintField(7, UInt64(windowUpdateBytes))
        if let settings, let settingsSize = sizes.settings {
            out.key(8, .lengthDelimited)
            out.varint(UInt64(settingsSize))
            out.varintField(1, UInt64(settings.maxFrameBytes))
            out.varintField(2, UInt64(settings.initialWindowBytes))
            out.varintField(3, UInt64(settings.maxConcurrentCalls))
        }
        out.varintField(9, goaway ? 1 : 0)
    }

    private static func size(of header: Header) -> Int {
        var size = stringFieldSize(header.method)
        for entry in header.metadata { size += lengthDelimitedSize(self.size(of: entry)) }
        return size + varintFieldSize(header.timeoutMs)
    }

    private static func size(of entry: Metadata.Entry) -> Int {
        stringFieldSize(entry.key) + bytesFieldSize(entry.value.count)
    }

    private static func size(of status: RPCError) -> Int {
        var size = varintFieldSize(UInt64(status.code.rawValue)) + stringFieldSize(status.message)
        for detail in status.details { size += lengthDelimitedSize(self.size(of: detail)) }
        return size
    }

    private static func size(of detail: RPCError.Detail) -> Int {
        stringFieldSize(detail.typeURL) + bytesFieldSize(detail.value.count)
    }

    private static func size(of settings: Settings) -> Int {
        varintFieldSize(UInt64(settings.maxFrameBytes)) + varintFieldSize(UInt64(settings.initialWindowBytes))
            + varintFieldSize(UInt64(settings.maxConcurrentCalls))
    }
}

/// Field sizes for field numbers below 16 (a one-byte key), which is all a Frame has.
private func varintSize(_ value: UInt64) -> Int { value == 0 ? 1 : (64 - value.leadingZeroBitCount + 6) / 7 }
private func lengthDelimitedSize(_ length: Int) -> Int { 1 + varintSize(UInt64(length)) + length }
private func varintFieldSize(_ value: UInt64) -> Int { value == 0 ? 0 : 1 + varintSize(value) }
private func bytesFieldSize(_ length: Int) -> Int { length == 0 ? 0 : lengthDelimitedSize(length) }
private func stringFieldSize(_ string: String) -> Int { bytesFieldSize(string.utf8.count) }

enum WireType: UInt64 {
    case varint = 0, fixed64 = 1, lengthDelimited = 2, startGroup = 3, endGroup = 4, fixed32 = 5
}

/// Writes into a buffer sized exactly beforehand.
private struct WireWriter {
    let buffer: UnsafeMutableRawBufferPointer
    var index = 0

    init(_ buffer: UnsafeMutableRawBufferPointer) { self.buffer = buffer }

    mutating func byte(_ value: UInt8) {
        buffer[index] = value
        index += 1
    }

    mutating func bigEndian32(_ value: UInt32) {
        for shift in stride(from: 24, through: 0, by: -8) { byte(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
    }

    mutating func varint(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            byte(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        byte(UInt8(value))
    }

    mutating func key(_ field: UInt64, _ type: WireType) { varint(field << 3 | type.rawValue) }

    mutating func varintField(_ field: UInt64, _ value: UInt64) {
        guard value != 0 else { return }
        key(field, .varint)
        varint(value)
    }

    mutating func raw(_ field: UInt64, _ bytes: UnsafeRawBufferPointer, always: Bool) {
        guard always || bytes.count > 0 else { return }
        key(field, .lengthDelimited)
        varint(UInt64(bytes.count))
        if let base = bytes.baseAddress, bytes.count > 0 {
            (buffer.baseAddress! + index).copyMemory(from: base, byteCount: bytes.count)
            index += bytes.count
        }
    }

    mutating func bytes(_ field: UInt64, _ data: Data, always: Bool = false) {
        data.withUnsafeBytes { raw(field, $0, always: always) }
    }

    mutating func string(_ field: UInt64, _ string: String) {
        var string = string
        string.withUTF8 { raw(field, UnsafeRawBufferPointer($0), always: false) }
    }

    /// A sub-message of a string (1) and bytes (2) whose size is `size`: a metadata entry, a
    /// status detail.
    mutating func pair(_ field: UInt64, size: Int, _ text: String, _ data: Data) {
        key(field, .lengthDelimited)
        varint(UInt64(size))
        string(1, text)
        bytes(2, data)
    }
}

// MARK: Decoding

extension WireFrame {
    struct Malformed: Error {}

    /// Decodes one frame body (without its length prefix).
    ///
    /// - Parameter storage: the buffer `bytes` lie in, when the frame was read into one of its
    ///   own (`FrameDecoder`): the message is then that buffer's bytes, not a copy of them.
    init(decoding bytes: UnsafeRawBufferPointer, in storage: FrameStorage? = nil) throws(Malformed) {
        var reader = WireReader(bytes)
        while let (field, type) = try reader.nextKey() {
            switch (field, type) {
            case (1, .varint): callID = try reader.varint()
            case (2, .lengthDelimited):
                var header = self.header ?? Header()
                try header.merge(try reader.lengthDelimited())
                self.header = header
            case (3, .lengthDelimited):
                let bytes = try reader.lengthDelimited()
                message = storage?.data(bytes) ?? Data(bytes)
            case (4, .varint): endStream = try reader.varint() != 0
            case (5, .lengthDelimited):
                var status = self.status ?? RPCError(.ok, "")
                try status.merge(try reader.lengthDelimited())
                self.status = status
            case (6, .varint): cancel = try reader.varint() != 0
            case (7, .varint): windowUpdateBytes = UInt32(truncatingIfNeeded: try reader.varint())
            case (8, .lengthDelimited):
                var settings = self.settings ?? Settings()
                try settings.merge(try reader.lengthDelimited())
                self.settings = settings
            case (9, .varint): goaway = try reader.varint() != 0
            default: try reader.skip(field: field, type)
            }
        }
    }
}

extension WireFrame.Header {
    fileprivate mutating func merge(_ bytes: UnsafeRawBufferPointer) throws(WireFrame.Malformed) {
        var reader = WireReader(bytes)
        while let (field, type) = try reader.nextKey() {
            switch (field, type) {
            case (1, .lengthDelimited): method = try reader.string()
            case (2, .lengthDelimited):
                var entry = WireReader(try reader.lengthDelimited())
                var key = "", value = Data()
                while let (field, type) = try entry.nextKey() {
                    switch (field, type) {
                    case (1, .lengthDelimited): key = try entry.string()
                    case (2, .lengthDelimited): value = Data(try entry.lengthDelimited())
                    default: try entry.skip(field: field, type)
                    }
                }
                metadata.append(Metadata.Entry(key: key, value: value))
            case (3, .varint): timeoutMs = try reader.varint()
            default: try reader.skip(field: field, type)
            }
        }
    }
}

extension RPCError {
    fileprivate mutating func merge(_ bytes: UnsafeRawBufferPointer) throws(WireFrame.Malformed) {
        var reader = WireReader(bytes)
        while let (field, type) = try reader.nextKey() {
            switch (field, type) {
            case (1, .varint): code = StatusCode(wireValue: UInt32(truncatingIfNeeded: try reader.varint()))
            case (2, .lengthDelimited): message = try reader.string()
            case (3, .lengthDelimited):
                var entry = WireReader(try reader.lengthDelimited())
                var detail = Detail(typeURL: "", value: Data())
                while let (field, type) = try entry.nextKey() {
                    switch (field, type) {
                    case (1, .lengthDelimited): detail.typeURL = try entry.string()
                    case (2, .lengthDelimited): detail.value = Data(try entry.lengthDelimited())
                    default: try entry.skip(field: field, type)
                    }
                }
                details.append(detail)
            default: try reader.skip(field: field, type)  // trailers (4) included: none are sent today
            }
        }
    }
}

extension WireFrame.Settings {
    fileprivate mutating func merge(_ bytes: UnsafeRawBufferPointer) throws(WireFrame.Malformed) {
        var reader = WireReader(bytes)
        while let (field, type) = try reader.nextKey() {
            switch (field, type) {
            case (1, .varint): maxFrameBytes = UInt32(truncatingIfNeeded: try reader.varint())
            case (2, .varint): initialWindowBytes = UInt32(truncatingIfNeeded: try reader.varint())
            case (3, .varint): maxConcurrentCalls = UInt32(truncatingIfNeeded: try reader.varint())
            default: try reader.skip(field: field, type)
            }
        }
    }
}

/// Reads protobuf wire format from a buffer, refusing anything truncated or malformed.
struct WireReader {
    let bytes: UnsafeRawBufferPointer
    var index = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    mutating func varint() throws(WireFrame.Malformed) -> UInt64 {
        var value: UInt64 = 0
        for shift in stride(from: UInt64(0), to: 70, by: 7) {
            guard index < bytes.count else { throw WireFrame.Malformed() }
            let byte = bytes[index]
            index += 1
            value |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 { return value }
        }
        throw WireFrame.Malformed()  // more than ten bytes
    }

    /// The next field's number and wire type; nil at the end.
    mutating func nextKey() throws(WireFrame.Malformed) -> (UInt64, WireType)? {
        guard index < bytes.count else { return nil }
        let key = try varint()
        guard key >> 3 > 0, key >> 3 <= 0x1FFF_FFFF, let type = WireType(rawValue: key & 7) else {
            throw WireFrame.Malformed()
        }
        return (key >> 3, type)
    }

    mutating func lengthDelimited() throws(WireFrame.Malformed) -> UnsafeRawBufferPointer {
        let length = try varint()
        guard length <= UInt64(bytes.count - index) else { throw WireFrame.Malformed() }
        defer { index += Int(length) }
        return UnsafeRawBufferPointer(rebasing: bytes[index..<index + Int(length)])
    }

    mutating func string() throws(WireFrame.Malformed) -> String {
        let raw = try lengthDelimited()
        // Method names and metadata keys are ASCII, which needs no validating decoder.
        if !raw.contains(where: { $0 >= 0x80 }) { return String(decoding: raw, as: UTF8.self) }
        guard let string = String(validating: raw, as: UTF8.self) else { throw WireFrame.Malformed() }
        return string
    }

    /// Groups nest at most this deep, as in swift-protobuf (its default recursion limit).
    static let maxGroupDepth = 100

    /// Skips an unknown field's value, groups included.
    ///
    /// Groups are skipped iteratively with an explicit stack of open field numbers: a peer's
    /// nesting can never grow this thread's stack, deeper than `maxGroupDepth` is refused, and
    /// every end-group must name the field of the group it closes.
    mutating func skip(field: UInt64, _ type: WireType) throws(WireFrame.Malformed) {
        guard type == .startGroup else { return try skipScalar(type) }
        var open: [UInt64] = [field]
        while let innermost = open.last {
            guard let (inner, innerType) = try nextKey() else { throw WireFrame.Malformed() }  // unterminated
            switch innerType {
            case .endGroup:
                guard inner == innermost else { throw WireFrame.Malformed() }
                open.removeLast()
            case .startGroup:
                guard open.count < Self.maxGroupDepth else { throw WireFrame.Malformed() }
                open.append(inner)
            default:
                try skipScalar(innerType)
            }
        }
    }

    /// Skips a value that is not a group.
    private mutating func skipScalar(_ type: WireType) throws(WireFrame.Malformed) {
        switch type {
        case .varint: _ = try varint()
        case .fixed64: try advance(8)
        case .fixed32: try advance(4)
        case .lengthDelimited: _ = try lengthDelimited()
        case .startGroup, .endGroup: throw WireFrame.Malformed()  // groups are handled by `skip(field:_:)`
        }
    }

    private mutating func advance(_ count: Int) throws(WireFrame.Malformed) {
        guard bytes.count - index >= count else { throw WireFrame.Malformed() }
        index += count
    }
}

// MARK: Framing

/// Splits a byte stream into ctrpc/1 frames.
///
///     +--------+--------+--------+--------+=====================+
///     |      length (uint32, big-endian)  |  Frame (protobuf)   |
///     +--------+--------+--------+--------+=====================+
///      0                                 4               4+length
///
/// The length is checked against `maxFrameBytes` before anything is allocated for the frame.
///
/// The connection reads into the decoder's own buffer (`read`), and frames are decoded where
/// their bytes landed. A frame larger than one TLS record (a streamed chunk) is read into
/// storage of its own instead, whose bytes its message then keeps: such a byte is copied by no
/// one between OpenSSL and the handler's decoding. A small frame's message is copied once, out
/// of the shared buffer. (The connection used to read into a buffer of its own, append that
/// here and copy each message out: every byte copied twice, 64 KiB per streamed message.)
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
    /// Received bytes not yet decoded are `storage[readIndex..<writeIndex]`; reads land after them.
    private var storage: [UInt8]
    private var readIndex = 0
    private var writeIndex = 0
    /// The frame being received into storage of its own (see `largeFrameBytes`), and how much of
    /// it has arrived.
    private var large: (storage: FrameStorage, filled: Int)?

    /// The least room offered to a read: one TLS record's plaintext (16 KiB), which is what
    /// OpenSSL hands out per read at the most.
    static let minimumReadBytes = 16 * 1024
    /// Frames longer than this are read into storage of their own: more than one TLS record,
    /// so most of their bytes arrive after their length is known.
    static let largeFrameBytes = minimumReadBytes

    init(maxFrameBytes: Int) {
        self.maxFrameBytes = maxFrameBytes
        storage = [UInt8](repeating: 0, count: 64 * 1024)
    }

    /// The shared buffer's size (its memory), for tests.
    var bufferBytes: Int { storage.count }

    /// Lets `body` write received bytes straight into the buffer, after those not yet decoded;
    /// it returns how many it wrote. The room it gets holds one TLS record and at least the rest
    /// of the frame being received, so a frame lies in one piece; a large frame's room is
    /// exactly the rest of it, in its own storage.
    /// Once a large frame is whole (and not yet taken by `next`), what follows it is read into
    /// the shared buffer.
    mutating func read(_ body: (UnsafeMutableRawBufferPointer) throws -> Int) rethrows {
        if let (frame, filled) = large, filled < frame.bytes.count {
            let room = UnsafeMutableRawBufferPointer(rebasing: frame.bytes[filled...])
            let written = try body(room)
            precondition(written >= 0 && written <= room.count, "read past the room given")
            large = (frame, filled + written)
            return
        }
        makeRoom()
        let start = writeIndex
        let written = try storage.withUnsafeMutableBytes { raw in
            try body(UnsafeMutableRawBufferPointer(rebasing: raw[start...]))
        }
        precondition(written >= 0 && written <= storage.count - start, "read past the room given")
        writeIndex += written
    }

    /// Appends `bytes` (tests and the fuzzer; connections `read`).
    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        var offset = 0
        while offset < bytes.count {
            read { room in
                let count = min(room.count, bytes.count - offset)
                room.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + count]))
                offset += count
                return count
            }
        }
    }

    /// Makes room after the undecoded bytes for the next read. Decoded bytes are dropped
    /// first; the undecoded ones move to the front only when the room after them is too
    /// small, which is rare: each frame's first record usually starts a read at the front,
    /// since the frames before it are decoded by then. The frames read here are at most one
    /// record long, so the buffer keeps its size; it would grow only for undecoded bytes that
    /// fill it, and keep that size.
    private mutating func makeRoom() {
        if readIndex == writeIndex {
            readIndex = 0
            writeIndex = 0
        }
        let pending = writeIndex - readIndex
        var wanted = Self.minimumReadBytes
        if case .waitingForFrame(let length) = state, large == nil { wanted = max(wanted, length - pending) }
        guard storage.count - writeIndex < wanted else { return }
        let from = readIndex
        if pending + wanted > storage.count {
            var grown = [UInt8](repeating: 0, count: max(storage.count * 2, pending + wanted))
            grown.withUnsafeMutableBytes { to in
                storage.withUnsafeBytes { to.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[from..<from + pending])) }
            }
            storage = grown
        } else {
            storage.withUnsafeMutableBytes { raw in
                guard let base = raw.baseAddress else { return }
                memmove(base, base + from, pending)
            }
        }
        readIndex = 0
        writeIndex = pending
    }

    /// The next complete frame, or nil when more bytes are needed.
    mutating func next() throws(Failure) -> WireFrame? {
        while true {
            switch state {
            case .waitingForHeader:
                guard writeIndex - readIndex >= 4 else { return nil }
                let length = storage.withUnsafeBytes { raw in
                    UInt32(bigEndian: raw.loadUnaligned(fromByteOffset: readIndex, as: UInt32.self))
                }
                guard Int(length) <= maxFrameBytes else {
                    throw .tooLarge(length: length, limit: maxFrameBytes)
                }
                readIndex += 4
                state = .waitingForFrame(length: Int(length))
                if Int(length) > Self.largeFrameBytes {
                    // What of it arrived with the header moves over; the rest is read there.
                    let frame = FrameStorage(count: Int(length))
                    let arrived = min(writeIndex - readIndex, Int(length))
                    let from = readIndex
                    storage.withUnsafeBytes { frame.bytes.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[from..<from + arrived])) }
                    readIndex += arrived
                    large = (frame, arrived)
                }
            case .waitingForFrame(let length):
                if let (frame, filled) = large {
                    guard filled == length else { return nil }
                    large = nil
                    state = .waitingForHeader
                    do {
                        return try WireFrame(decoding: UnsafeRawBufferPointer(frame.bytes), in: frame)
                    } catch {
                        throw .malformed
                    }
                }
                guard writeIndex - readIndex >= length else { return nil }
                let start = readIndex
                readIndex += length
                state = .waitingForHeader
                do {
                    return try storage.withUnsafeBytes { raw throws(WireFrame.Malformed) in
                        try WireFrame(decoding: UnsafeRawBufferPointer(rebasing: raw[start..<start + length]))
                    }
                } catch {
                    throw .malformed
                }
            }
        }
    }
}

/// The bytes of one large frame, read into them by `FrameDecoder`. Its message is handed out
/// as a `Data` over them (no copy), which keeps them until the last such `Data` is gone.
final class FrameStorage: @unchecked Sendable {
    let bytes: UnsafeMutableRawBufferPointer

    init(count: Int) {
        bytes = .allocate(byteCount: count, alignment: 16)
    }

    deinit { bytes.deallocate() }

    /// `slice` (a part of `bytes`) as a `Data` that keeps this storage alive.
    func data(_ slice: UnsafeRawBufferPointer) -> Data {
        guard let base = slice.baseAddress, slice.count > 0 else { return Data() }
        return Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: base), count: slice.count,
                    deallocator: .custom { _, _ in withExtendedLifetime(self) {} })
    }
}
