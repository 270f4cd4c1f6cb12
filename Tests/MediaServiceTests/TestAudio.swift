import CSndfile
import Foundation

/// Real compressed audio for the tests, made and read with libsndfile here (no network, no
/// fixtures): MP3 through LAME, Opus in Ogg, and the FLAC that muting produces.
enum TestAudio {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// A 440 Hz tone at half of full scale, `milliseconds` long, encoded as `format`
    /// (`SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III`, `SF_FORMAT_OGG | SF_FORMAT_OPUS`, …).
    static func tone(milliseconds: Int, rate: Int, channels: Int, format: Int) throws -> Data {
        let frames = milliseconds * rate / 1000
        var samples = [Float](repeating: 0, count: frames * channels)
        for frame in 0..<frames {
            let value = 0.5 * sin(2 * Float.pi * 440 * Float(frame) / Float(rate))
            for channel in 0..<channels { samples[frame * channels + channel] = value }
        }
        let path = temporaryPath()
        defer { unlink(path) }
        var info = SF_INFO()
        info.samplerate = Int32(rate)
        info.channels = Int32(channels)
        info.format = Int32(format)
        guard let file = sf_open(path, Int32(SFM_WRITE), &info) else {
            throw Failure(description: "libsndfile cannot write format 0x\(String(format, radix: 16)): \(String(cString: sf_strerror(nil)))")
        }
        let written = samples.withUnsafeBufferPointer { sf_writef_float(file, $0.baseAddress, sf_count_t(frames)) }
        guard sf_close(file) == 0, written == frames else { throw Failure(description: "libsndfile wrote \(written) of \(frames) frames") }
        return try Data(contentsOf: URL(fileURLWithPath: path))
    }

    /// A file decoded: its libsndfile format, rate, channels and interleaved samples.
    struct Decoded {
        let format: Int32
        let rate: Int
        let channels: Int
        let samples: [Float]

        var frames: Int { samples.count / channels }

        /// The samples of [from, to) milliseconds, all channels.
        func samples(from: Int, to: Int) -> ArraySlice<Float> {
            samples[(from * rate / 1000 * channels)..<min(samples.count, to * rate / 1000 * channels)]
        }

        /// The root mean square of [from, to) milliseconds.
        func rms(from: Int, to: Int) -> Float {
            let part = samples(from: from, to: to)
            return (part.reduce(0) { $0 + $1 * $1 } / Float(max(part.count, 1))).squareRoot()
        }
    }

    static func decode(_ data: Data) throws -> Decoded {
        let path = temporaryPath()
        defer { unlink(path) }
        try data.write(to: URL(fileURLWithPath: path))
        var info = SF_INFO()
        guard let file = sf_open(path, Int32(SFM_READ), &info) else {
            throw Failure(description: "libsndfile cannot read the file: \(String(cString: sf_strerror(nil)))")
        }
        defer { sf_close(file) }
        var samples: [Float] = []
        var block = [Float](repeating: 0, count: 4096 * Int(info.channels))
        while true {
            let got = block.withUnsafeMutableBufferPointer { sf_readf_float(file, $0.baseAddress, 4096) }
            guard got > 0 else { break }
            samples += block[0..<(Int(got) * Int(info.channels))]
        }
        return Decoded(format: info.format, rate: Int(info.samplerate), channels: Int(info.channels), samples: samples)
    }

    private static func temporaryPath() -> String {
        NSTemporaryDirectory() + "/calltrace-test-audio-\(UUID().uuidString)"
    }
}
