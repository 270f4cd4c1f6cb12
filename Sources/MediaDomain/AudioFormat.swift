import CallTraceProto
import CallTraceRPC
import Foundation

/// What the uploader declares about a file, and the check of a WAV file's own header against it.
struct DeclaredAudio: Sendable {
    let format: Calltrace_Media_V1_AudioFormat
    let sampleRate: UInt32
    let channels: UInt32

    var isWAV: Bool { [.wavPcm16, .wavMulaw, .wavAlaw].contains(format) }

    /// The header fields on their own.
    init(_ header: Calltrace_Media_V1_RecordingHeader) throws {
        switch header.format {
        case .wavPcm16, .wavMulaw, .wavAlaw, .mp3, .opus: break
        default: throw RPCError(.invalidArgument, "format must be one of WAV_PCM16, WAV_MULAW, WAV_ALAW, MP3, OPUS")
        }
        format = header.format
        sampleRate = header.sampleRateHz
        channels = header.channels
        guard channels == 1 || channels == 2 else { throw RPCError(.invalidArgument, "channels must be 1 (mono) or 2 (one per party)") }
        if isWAV {
            guard (8000...192_000).contains(sampleRate) else {
                throw RPCError(.invalidArgument, "sample_rate_hz must be from 8000 to 192000 for WAV")
            }
        }
    }

    /// How many leading bytes `check(wavPrefix:)` needs at most to find the `fmt ` chunk.
    static let wavPrefixBytes = 4096

    /// Checks a WAV file's `fmt ` chunk against the declaration; `prefix` is the file's first
    /// `wavPrefixBytes` bytes (or the whole file, when shorter).
    func check(wavPrefix prefix: Data) throws {
        let bytes = [UInt8](prefix)
        func le32(_ at: Int) -> UInt32 { UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24 }
        func le16(_ at: Int) -> UInt16 { UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8 }
        guard bytes.count >= 12, bytes[0..<4].elementsEqual("RIFF".utf8), bytes[8..<12].elementsEqual("WAVE".utf8) else {
            throw RPCError(.invalidArgument, "the file is not a WAV file (no RIFF/WAVE header), but the header says \(format)")
        }
        var at = 12
        while at + 8 <= bytes.count {
            let size = Int(le32(at + 4))
            if bytes[at..<(at + 4)].elementsEqual("fmt ".utf8) {
                guard size >= 16, at + 8 + 16 <= bytes.count else { break }
                let body = at + 8
                let (code, channels, rate, bits) = (le16(body), UInt32(le16(body + 2)), le32(body + 4), le16(body + 14))
                let actual: Calltrace_Media_V1_AudioFormat? = switch (code, bits) {
                case (1, 16): .wavPcm16
                case (7, 8): .wavMulaw
                case (6, 8): .wavAlaw
                default: nil
                }
                guard let actual else {
                    throw RPCError(.invalidArgument, "the WAV file's encoding (format \(code), \(bits)-bit) is not PCM16, μ-law or A-law")
                }
                guard actual == format, channels == self.channels, rate == sampleRate else {
                    throw RPCError(.invalidArgument, "the WAV header says \(actual), \(channels) channel(s), \(rate) Hz; the upload header says \(format), \(self.channels), \(sampleRate) Hz")
                }
                return
            }
            at += 8 + size + (size & 1)
        }
        throw RPCError(.invalidArgument, "the WAV file has no fmt chunk in its first \(Self.wavPrefixBytes) bytes")
    }
}
