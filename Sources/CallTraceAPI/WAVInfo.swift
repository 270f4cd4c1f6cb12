public import CallTraceProto
public import Foundation

/// A WAV file's format, rate and channels, from its first bytes; nil for anything else: what a
/// recording's header (`RecordingHeader`) says of a file before it is uploaded.
public struct WAVInfo: Sendable, Equatable {
    public let format: Calltrace_Media_V1_AudioFormat
    public let sampleRate: UInt32
    public let channels: UInt32

    /// How many of a file's first bytes are enough to read its format (the fmt chunk comes first).
    public static let prefixBytes = 512

    public init?(_ prefix: Data) {
        let bytes = [UInt8](prefix)
        func le32(_ at: Int) -> UInt32 { UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24 }
        func le16(_ at: Int) -> UInt16 { UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8 }
        guard bytes.count >= 12, bytes[0..<4].elementsEqual("RIFF".utf8), bytes[8..<12].elementsEqual("WAVE".utf8) else { return nil }
        var at = 12
        while at + 8 <= bytes.count {
            let size = Int(le32(at + 4))
            if bytes[at..<(at + 4)].elementsEqual("fmt ".utf8), at + 24 <= bytes.count {
                switch (le16(at + 8), le16(at + 22)) {
                case (1, 16): format = .wavPcm16
                case (7, 8): format = .wavMulaw
                case (6, 8): format = .wavAlaw
                default: return nil
                }
                channels = UInt32(le16(at + 10))
                sampleRate = le32(at + 12)
                return
            }
            at += 8 + size + (size & 1)
        }
        return nil
    }
}
