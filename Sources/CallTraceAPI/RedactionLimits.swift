/// What media's `RedactRecording` takes in one call (one new version, one audit record): media
/// refuses more, and transcript fits a call's details within it (P16).
public enum RedactionLimits {
    /// Time ranges in one call.
    public static let maxRanges = 1_000
    /// How far into a recording a range may end: 7 days of audio.
    public static let maxAudioMs: UInt64 = 7 * 86_400_000
}
