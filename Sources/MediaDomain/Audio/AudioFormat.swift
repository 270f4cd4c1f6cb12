import CallTraceServiceHost
import Foundation

/// How a recording's audio is encoded, as media stores it (the number is the row's `format`,
/// the same as `calltrace.media.v1.AudioFormat`'s).
enum AudioFormat: Int, Sendable {
    /// Not said, or not one media knows.
    case unspecified = 0
    /// WAV, linear PCM, 16-bit.
    case wavPcm16 = 1
    /// WAV, G.711 μ-law, 8-bit.
    case wavMulaw = 2
    /// WAV, G.711 A-law, 8-bit.
    case wavAlaw = 3
    case mp3 = 4
    /// Opus in Ogg.
    case opus = 5
    /// FLAC, 16-bit: a muted MP3 or Opus recording.
    case flac = 6

    /// From its number, a stored row's or the wire's: `unspecified` for one media does not know.
    init(number: Int) { self = AudioFormat(rawValue: number) ?? .unspecified }
}

/// What the uploader declares about a file, and the check of a WAV file's own header against it.
struct DeclaredAudio: Sendable {
    let format: AudioFormat
    let sampleRate: UInt32
    let channels: UInt32

    var isWAV: Bool { [.wavPcm16, .wavMulaw, .wavAlaw].contains(format) }

    /// The declared fields on their own.
    init(_ header: RecordingUpload) throws {
        switch header.format {
        case .wavPcm16, .wavMulaw, .wavAlaw, .mp3, .opus: break
        default: throw DomainError.invalid("format must be one of WAV_PCM16, WAV_MULAW, WAV_ALAW, MP3, OPUS")
        }
        format = header.format
        sampleRate = header.sampleRate
        channels = header.channels
        guard channels == 1 || channels == 2 else { throw DomainError.invalid("channels must be 1 (mono) or 2 (one per party)") }
        if isWAV {
            guard (8000...192_000).contains(sampleRate) else {
                throw DomainError.invalid("sample_rate_hz must be from 8000 to 192000 for WAV")
            }
        }
    }

    /// How many leading bytes `check(wavPrefix:)` needs at most to find the `fmt ` chunk.
    static let wavPrefixBytes = 4096

    /// Checks a WAV file's `fmt ` chunk against the declaration; `prefix` is the file's first
    /// `wavPrefixBytes` bytes (or the whole file, when shorter).
    func check(wavPrefix prefix: Data) throws {
        let header = try WAVHeader(prefix, declared: format)
        guard header.format == format, header.channels == channels, header.sampleRate == sampleRate else {
            throw DomainError.invalid("the WAV header says \(header.format), \(header.channels) channel(s), \(header.sampleRate) Hz; the upload header says \(format), \(channels), \(sampleRate) Hz")
        }
    }
}

/// A WAV file's header, read from its first bytes: its one `fmt ` chunk, checked to describe an
/// encoding we store (PCM16, μ-law, A-law) with a block size that follows from it, and where its
/// `data` chunk starts when that is within the bytes given.
///
/// ```
/// "RIFF" size "WAVE" { id(4) size(4, LE) body(size, padded to even) }*
/// fmt  body: code(2) channels(2) rate(4) byteRate(4) blockAlign(2) bits(2) ...
/// ```
/// A second `fmt ` chunk before the samples is refused: the upload check and redaction must
/// read the same one.
struct WAVHeader {
    let format: AudioFormat
    let channels: UInt32
    let sampleRate: UInt32
    let blockAlign: UInt32
    /// Where the `data` chunk's samples start and its declared size; nil when the bytes given end first.
    let data: (start: UInt64, size: UInt64)?

    init(_ prefix: Data, declared: AudioFormat) throws {
        let bytes = [UInt8](prefix)
        func le32(_ at: Int) -> UInt32 { UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24 }
        func le16(_ at: Int) -> UInt16 { UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8 }
        guard bytes.count >= 12, bytes[0..<4].elementsEqual("RIFF".utf8), bytes[8..<12].elementsEqual("WAVE".utf8) else {
            throw DomainError.invalid("the file is not a WAV file (no RIFF/WAVE header), but the header says \(declared)")
        }
        var at = 12
        var fmt: (format: AudioFormat, channels: UInt32, rate: UInt32, blockAlign: UInt32)?
        var data: (start: UInt64, size: UInt64)?
        while at + 8 <= bytes.count {
            let size = Int(le32(at + 4))
            let id = bytes[at..<(at + 4)]
            if id.elementsEqual("fmt ".utf8) {
                guard fmt == nil else { throw DomainError.invalid("the WAV file has more than one fmt chunk") }
                guard size >= 16, at + 8 + 16 <= bytes.count else { break }
                let body = at + 8
                let (code, channels, rate, align, bits) = (le16(body), UInt32(le16(body + 2)), le32(body + 4), UInt32(le16(body + 12)), le16(body + 14))
                let actual: AudioFormat? = switch (code, bits) {
                case (1, 16): .wavPcm16
                case (7, 8): .wavMulaw
                case (6, 8): .wavAlaw
                default: nil
                }
                guard let actual else {
                    throw DomainError.invalid("the WAV file's encoding (format \(code), \(bits)-bit) is not PCM16, μ-law or A-law")
                }
                guard (1...2).contains(channels), (8000...192_000).contains(rate), align == channels * UInt32(bits / 8) else {
                    throw DomainError.invalid("the WAV file's fmt chunk is inconsistent (\(channels) channel(s), \(rate) Hz, \(align)-byte blocks of \(bits)-bit samples)")
                }
                fmt = (actual, channels, rate, align)
            } else if id.elementsEqual("data".utf8) {
                data = (UInt64(at + 8), UInt64(size))
                break
            }
            at += 8 + size + (size & 1)
        }
        guard let fmt else {
            throw DomainError.invalid("the WAV file has no fmt chunk before its samples in its first \(DeclaredAudio.wavPrefixBytes) bytes")
        }
        (format, channels, sampleRate, blockAlign) = fmt
        self.data = data
    }
}

/// Where a WAV file's samples are, to mute time ranges of it.
struct WAVLayout {
    let dataStart: UInt64
    let dataEnd: UInt64
    let blockAlign: UInt64
    let sampleRate: UInt64

    /// The byte that is silence in each WAV encoding: PCM16's zero is 0x00 0x00; G.711's zero
    /// level is 0xFF (μ-law) and 0xD5 (A-law). Nil for formats stored as given.
    static func silence(of format: Int) -> UInt8? {
        switch AudioFormat(rawValue: format) {
        case .wavPcm16: 0x00
        case .wavMulaw: 0xFF
        case .wavAlaw: 0xD5
        default: nil
        }
    }

    /// From the file's first bytes (the same reading as the upload check's); `fileSize` is the whole file's.
    init(_ prefix: Data, format: AudioFormat, size fileSize: UInt64) throws {
        let header: WAVHeader
        do { header = try WAVHeader(prefix, declared: format) } catch let error as DomainError {
            throw DomainError.wrongState("\(error.message); it cannot be redacted")
        }
        guard let data = header.data else {
            throw DomainError.wrongState("the WAV file's data chunk was not found in its first bytes; it cannot be redacted")
        }
        blockAlign = UInt64(header.blockAlign)
        sampleRate = UInt64(header.sampleRate)
        dataStart = data.start
        dataEnd = max(dataStart, min(dataStart + data.size, fileSize))
    }

    /// The bytes of samples in [start, end) milliseconds, within the data; nil when none.
    /// The range's ends are at most 7 days (the rules refuse more), the rate at most 192 kHz and
    /// a block at most 4 bytes (`WAVHeader` refuses more): the products fit in 64 bits.
    func bytes(of range: (start: UInt64, end: UInt64)) -> Range<UInt64>? {
        let first = dataStart + range.start * sampleRate / 1000 * blockAlign
        let last = dataStart + (range.end * sampleRate + 999) / 1000 * blockAlign
        let from = min(first, dataEnd), to = min(last, dataEnd)
        return from < to ? from..<to : nil
    }
}
