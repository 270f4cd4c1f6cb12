import CSndfile
import CallTraceProto
import Foundation

/// Muting a compressed recording (P16) with libsndfile: the file is decoded as it is read
/// (`AudioSource`, virtual I/O over the recording's plaintext, never a file), the samples inside
/// the ranges are set to zero, and the result is encoded as 16-bit FLAC into `AudioSink`.
///
/// A file is decoded only when it starts as its declared format does and libsndfile then finds
/// it to be that format, so a hostile upload reaches only the MP3, Ogg Opus and FLAC decoders,
/// never libsndfile's other parsers. Anything about the file that makes muting it impossible or
/// unsure is `Undecodable`; the caller flags the recording with the reason.
enum CompressedAudio {
    /// Why a file cannot be muted. The reason names what is wrong, never the file's contents.
    struct Undecodable: Error, Sendable {
        let reason: String
    }

    /// What muting produced: the FLAC file's shape and how much of it is the silence written.
    struct Muted: Sendable {
        let frames: UInt64
        let sampleRate: UInt32
        let channels: UInt32
        let mutedFrames: UInt64

        var durationMs: UInt64 { frames * 1000 / UInt64(sampleRate) }
        /// The muted 16-bit samples, in bytes (frames × channels × 2).
        var mutedBytes: UInt64 { mutedFrames * UInt64(channels) * 2 }
    }

    /// The encodings decoded here: how each file starts, and what libsndfile must find it to be.
    enum Kind: Sendable {
        case mp3, opus, flac

        /// Nil for WAV (muted in place, `WAVLayout`) and anything else.
        init?(_ format: AudioFormat) {
            switch format {
            case .mp3: self = .mp3
            case .opus: self = .opus
            case .flac: self = .flac
            default: return nil
            }
        }

        var name: String {
            switch self {
            case .mp3: "MP3"
            case .opus: "Opus"
            case .flac: "FLAC"
            }
        }

        /// MP3: an ID3v2 tag or an MPEG frame sync; Opus: an Ogg page holding only `OpusHead`
        /// (RFC 7845 §3); FLAC: `fLaC`.
        func starts(_ head: [UInt8]) -> Bool {
            switch self {
            case .mp3: head.starts(with: "ID3".utf8) || (head.count >= 2 && head[0] == 0xFF && head[1] & 0xE0 == 0xE0)
            case .opus: head.starts(with: "OggS".utf8) && head.count >= 36 && head[28..<36].elementsEqual("OpusHead".utf8)
            case .flac: head.starts(with: "fLaC".utf8)
            }
        }

        /// Whether libsndfile's reading of the file (`SF_INFO.format`) is this encoding.
        func matches(_ format: Int32) -> Bool {
            let container = Int(format) & Int(SF_FORMAT_TYPEMASK), codec = Int(format) & Int(SF_FORMAT_SUBMASK)
            return switch self {
            case .mp3: container == Int(SF_FORMAT_MPEG)
            case .opus: container == Int(SF_FORMAT_OGG) && codec == Int(SF_FORMAT_OPUS)
            case .flac: container == Int(SF_FORMAT_FLAC)
            }
        }
    }

    /// The longest audio muted (as the rules' ranges: 7 days); longer decodes are refused.
    static let maxDurationMs: UInt64 = 7 * 86_400_000
    /// Frames decoded, muted and encoded at a time.
    static let framesPerBlock = 4096

    /// Decodes `source` as `kind`, sets the frames in `ranges` (milliseconds, [start, end)) to
    /// zero, and writes the whole as 16-bit FLAC (the decoded rate and channels) to `sink`.
    ///
    /// - Throws: `Undecodable` when the file cannot be muted (not `kind`, not decodable, decoding
    ///   to a length other than its header's: truncated or damaged, so the ranges' places are
    ///   unsure); the source's or sink's own error (a damaged chunk, a full disk) as it is.
    /// - Important: CPU-bound and blocking: run it on the blocking pool.
    static func mute(_ kind: Kind, ranges: [(start: UInt64, end: UInt64)], source: AudioSource, into sink: AudioSink) throws -> Muted {
        guard kind.starts(try source.head(36)) else {
            throw Undecodable(reason: "the file does not start as \(kind.name) does")
        }
        // libsndfile skips an ID3v2 tag and then guesses the format afresh: an MPEG frame must
        // follow the tag, so that no other of its parsers (WAV, AIFF, …) is handed the bytes.
        let framed = try kind != .mp3 || source.mpegFrameAfterTag()
        guard framed else {
            throw Undecodable(reason: "no MPEG audio frame follows the file's ID3 tag")
        }
        return try withExtendedLifetime((source, sink)) {
            var info = SF_INFO()
            var sourceIO = AudioSource.io
            guard let input = sf_open_virtual(&sourceIO, Int32(SFM_READ), &info, Unmanaged.passUnretained(source).toOpaque()) else {
                if let failure = source.failure { throw failure }
                throw Undecodable(reason: Self.unreadable(kind, error: sf_error(nil)))
            }
            defer { sf_close(input) }
            guard kind.matches(info.format) else {
                throw Undecodable(reason: "libsndfile reads it as another encoding than \(kind.name) (format 0x\(String(info.format, radix: 16)))")
            }
            guard (1...2).contains(info.channels), (8000...192_000).contains(info.samplerate) else {
                throw Undecodable(reason: "it decodes to \(info.channels) channel(s) at \(info.samplerate) Hz; recordings have 1 or 2 channels at 8 to 192 kHz")
            }
            let rate = UInt64(info.samplerate), channels = Int(info.channels)
            let mutes = Self.frames(of: ranges, rate: rate)
            let maxFrames = maxDurationMs * rate / 1000

            var output = SF_INFO()
            output.samplerate = info.samplerate
            output.channels = info.channels
            output.format = Int32(SF_FORMAT_FLAC) | Int32(SF_FORMAT_PCM_16)
            var sinkIO = AudioSink.io
            guard let encoder = sf_open_virtual(&sinkIO, Int32(SFM_WRITE), &output, Unmanaged.passUnretained(sink).toOpaque()) else {
                if let failure = sink.failure { throw failure }
                throw EncoderFailure("libsndfile cannot start a FLAC file (\(Self.message(sf_error(nil))))")
            }
            var open = true
            defer { if open { sf_close(encoder) } }
            // A decoder's overshoot past full scale is clipped, never wrapped round.
            sf_command(encoder, Int32(SFC_SET_CLIPPING), nil, Int32(SF_TRUE))

            var block = [Float](repeating: 0, count: framesPerBlock * channels)
            var position: UInt64 = 0, muted: UInt64 = 0
            var next = 0  // the first of the sorted, merged ranges not yet passed
            while true {
                let got = block.withUnsafeMutableBufferPointer { sf_readf_float(input, $0.baseAddress, sf_count_t(framesPerBlock)) }
                if let failure = source.failure { throw failure }
                guard got > 0 else { break }
                let end = position + UInt64(got)
                guard end <= maxFrames else {
                    throw Undecodable(reason: "it decodes to more than \(maxDurationMs / 86_400_000) days of audio")
                }
                while next < mutes.count, mutes[next].upperBound <= position { next += 1 }
                for range in mutes[next...].prefix(while: { $0.lowerBound < end }) {
                    let from = Int(max(range.lowerBound, position) - position), to = Int(min(range.upperBound, end) - position)
                    block.withUnsafeMutableBufferPointer { samples in
                        for index in (from * channels)..<(to * channels) { samples[index] = 0 }
                    }
                    muted += UInt64(to - from)
                }
                let written = block.withUnsafeBufferPointer { sf_writef_float(encoder, $0.baseAddress, got) }
                if let failure = sink.failure { throw failure }
                guard written == got else { throw EncoderFailure("the FLAC encoder stopped (\(Self.message(sf_error(encoder))))") }
                position = end
            }
            let decodeError = sf_error(input)
            guard decodeError == 0 else { throw Undecodable(reason: "decoding stopped (\(Self.message(decodeError)))") }
            guard position > 0 else { throw Undecodable(reason: "no audio could be decoded from it") }
            // The header's length (an MP3's Xing/Info frame count, Opus's last granule position,
            // FLAC's STREAMINFO) against what decoded: a file cut short or with frames skipped
            // would put later ranges on the wrong audio.
            if info.frames > 0 && info.frames < Int64.max {
                let declared = UInt64(info.frames)
                let difference = declared > position ? declared - position : position - declared
                guard difference <= max(declared / 100, rate / 10) else {
                    throw Undecodable(reason: "it decodes to \(position * 1000 / rate) ms of audio where its header declares \(declared * 1000 / rate) ms "
                                      + "(truncated or damaged: where the ranges fall is unsure)")
                }
            }
            open = false
            let closed = sf_close(encoder)  // the FLAC encoder's last frame and STREAMINFO are written now
            if let failure = sink.failure { throw failure }
            guard closed == 0 else { throw EncoderFailure("the FLAC file could not be finished (\(Self.message(closed)))") }
            return Muted(frames: position, sampleRate: UInt32(info.samplerate), channels: UInt32(info.channels), mutedFrames: muted)
        }
    }

    /// The ranges as frame ranges, sorted and merged (so no frame is counted twice).
    static func frames(of ranges: [(start: UInt64, end: UInt64)], rate: UInt64) -> [Range<UInt64>] {
        ranges.map { ($0.start * rate / 1000)..<(($0.end * rate + 999) / 1000) }.merged()
    }

    /// Why libsndfile could not open a file, from its error number: its public ones in words,
    /// its internal ones by number (their texts speak of files on disk, misleading here).
    static func unreadable(_ kind: Kind, error: Int32) -> String {
        switch Int(error) {
        case Int(SF_ERR_UNRECOGNISED_FORMAT): "libsndfile does not recognise it as audio"
        case Int(SF_ERR_MALFORMED_FILE): "it is malformed \(kind.name)"
        case Int(SF_ERR_UNSUPPORTED_ENCODING): "its encoding is not one libsndfile decodes"
        default: "the \(kind.name) decoder found no audio it could read (libsndfile error \(error))"
        }
    }

    /// libsndfile's text for an error number (static strings: no file's contents).
    static func message(_ error: Int32) -> String { String(cString: sf_error_number(error)) }

    /// The encoder failing on sound audio: a fault of this machine (internal), not of the file.
    struct EncoderFailure: Error, CustomStringConvertible, Sendable {
        let description: String
        init(_ description: String) { self.description = description }
    }
}

/// A recording's plaintext as libsndfile reads it (`sf_open_virtual`): byte ranges are asked of
/// `read` (the sealed store's reader) one chunk at a time, so only one chunk is in memory.
final class AudioSource {
    let length: UInt64
    private let chunkBytes: UInt64
    private let read: (UInt64, UInt64) throws -> Data
    private var position: UInt64 = 0
    private var cached: (start: UInt64, bytes: Data) = (0, Data())
    /// The reader's error (a damaged chunk): libsndfile saw the file end there; it is thrown instead.
    private(set) var failure: (any Error)?

    init(length: UInt64, chunkBytes: Int, read: @escaping (UInt64, UInt64) throws -> Data) {
        self.length = length
        self.chunkBytes = UInt64(max(chunkBytes, 1))
        self.read = read
    }

    /// The first `count` bytes (fewer when the file is shorter).
    func head(_ count: Int) throws -> [UInt8] { [UInt8](try read(0, min(UInt64(count), length))) }

    /// True unless the file starts with an ID3v2 tag (ID3v2.4 §3.1: a 10-byte header, a
    /// synchsafe size, a 10-byte footer when flagged) that is not followed by an MPEG frame sync.
    func mpegFrameAfterTag() throws -> Bool {
        let tag = try head(10)
        guard tag.starts(with: "ID3".utf8) else { return true }
        guard tag.count == 10, tag[6...9].allSatisfy({ $0 < 0x80 }) else { return false }
        let size = tag[6...9].reduce(UInt64(0)) { $0 << 7 | UInt64($1) } + 10 + (tag[5] & 0x10 != 0 ? 10 : 0)
        guard size + 2 <= length else { return false }
        let sync = [UInt8](try read(size, size + 2))
        return sync.count == 2 && sync[0] == 0xFF && sync[1] & 0xE0 == 0xE0
    }

    static var io: SF_VIRTUAL_IO {
        SF_VIRTUAL_IO(
            get_filelen: { user in sf_count_t(AudioSource.from(user).length) },
            seek: { offset, whence, user in AudioSource.from(user).seek(offset, whence) },
            read: { pointer, count, user in AudioSource.from(user).copy(into: pointer, count: count) },
            write: { _, _, _ in 0 },
            tell: { user in sf_count_t(AudioSource.from(user).position) })
    }

    private static func from(_ user: UnsafeMutableRawPointer?) -> AudioSource {
        Unmanaged<AudioSource>.fromOpaque(user!).takeUnretainedValue()
    }

    private func seek(_ offset: sf_count_t, _ whence: Int32) -> sf_count_t {
        let base: Int64 = switch whence {
        case SEEK_CUR: Int64(position)
        case SEEK_END: Int64(length)
        default: 0
        }
        let (target, overflow) = base.addingReportingOverflow(offset)
        guard !overflow, target >= 0 else { return -1 }
        position = UInt64(target)
        return target
    }

    private func copy(into pointer: UnsafeMutableRawPointer?, count: sf_count_t) -> sf_count_t {
        guard let pointer, count > 0, failure == nil, position < length else { return 0 }
        let wanted = Int(min(UInt64(count), length - position))
        var copied = 0
        while copied < wanted {
            let start = position / chunkBytes * chunkBytes
            if cached.start != start || cached.bytes.isEmpty {
                do { cached = (start, try read(start, min(length, start + chunkBytes))) } catch {
                    failure = error
                    break
                }
            }
            let offset = Int(position - start)
            let n = min(wanted - copied, cached.bytes.count - offset)
            guard n > 0 else { break }
            cached.bytes.withUnsafeBytes { bytes in
                (pointer + copied).copyMemory(from: bytes.baseAddress! + offset, byteCount: n)
            }
            copied += n
            position += UInt64(n)
        }
        return sf_count_t(copied)
    }
}

/// Where libsndfile writes the FLAC file: bytes written at the end go on to `append` (a sealer)
/// at once; bytes written over earlier ones (the FLAC encoder's STREAMINFO, rewritten when it
/// finishes) are kept as patches, laid over the file when it is copied (`patch(_:at:)`).
final class AudioSink {
    /// At most this many bytes of patches (the FLAC encoder rewrites about 30).
    static let maxPatchBytes = 64 << 10

    private let append: (Data) throws -> Void
    private(set) var length: UInt64 = 0
    private var position: UInt64 = 0
    private var patches: [(at: UInt64, bytes: Data)] = []
    private var patchBytes = 0
    /// `append`'s error, or a write the sink cannot take: thrown instead of libsndfile's.
    private(set) var failure: (any Error)?

    init(append: @escaping (Data) throws -> Void) { self.append = append }

    static var io: SF_VIRTUAL_IO {
        SF_VIRTUAL_IO(
            get_filelen: { user in sf_count_t(AudioSink.from(user).length) },
            seek: { offset, whence, user in AudioSink.from(user).seek(offset, whence) },
            read: { _, _, _ in 0 },
            write: { pointer, count, user in AudioSink.from(user).write(pointer, count: count) },
            tell: { user in sf_count_t(AudioSink.from(user).position) })
    }

    private static func from(_ user: UnsafeMutableRawPointer?) -> AudioSink {
        Unmanaged<AudioSink>.fromOpaque(user!).takeUnretainedValue()
    }

    /// Lays the patches that fall in `bytes` (the file's bytes from `start`) over them, in the order written.
    func patch(_ bytes: inout Data, at start: UInt64) {
        let end = start + UInt64(bytes.count)
        for patch in patches where patch.at < end && patch.at + UInt64(patch.bytes.count) > start {
            let from = max(patch.at, start), to = min(patch.at + UInt64(patch.bytes.count), end)
            let source = patch.bytes.startIndex + Int(from - patch.at)
            bytes.replaceSubrange(Int(from - start)..<Int(to - start), with: patch.bytes[source..<(source + Int(to - from))])
        }
    }

    private func seek(_ offset: sf_count_t, _ whence: Int32) -> sf_count_t {
        let base: Int64 = switch whence {
        case SEEK_CUR: Int64(position)
        case SEEK_END: Int64(length)
        default: 0
        }
        let (target, overflow) = base.addingReportingOverflow(offset)
        guard !overflow, target >= 0, UInt64(target) <= length else { return -1 }
        position = UInt64(target)
        return target
    }

    private func write(_ pointer: UnsafeRawPointer?, count: sf_count_t) -> sf_count_t {
        guard let pointer, count > 0, failure == nil else { return 0 }
        let bytes = Data(bytes: pointer, count: Int(count))
        var rest = bytes[...]
        if position < length {
            let n = Int(min(UInt64(rest.count), length - position))
            guard patchBytes + n <= Self.maxPatchBytes else {
                failure = CompressedAudio.EncoderFailure("the encoder rewrote more than \(Self.maxPatchBytes) bytes of its output")
                return 0
            }
            patches.append((position, Data(rest.prefix(n))))
            patchBytes += n
            position += UInt64(n)
            rest = rest.dropFirst(n)
        }
        if !rest.isEmpty {
            // A small hostile file can decode to hours of audio: the muted file is a recording
            // like any other, held to the same size (so the disk holds at most two of them).
            guard position + UInt64(rest.count) <= RecordingRules.maxRecordingBytes else {
                failure = CompressedAudio.EncoderFailure("the muted file would exceed \(RecordingRules.maxRecordingBytes >> 20) MiB, the most a recording holds")
                return 0
            }
            do { try append(Data(rest)) } catch {
                failure = error
                return 0
            }
            position += UInt64(rest.count)
            length = position
        }
        return count
    }
}
