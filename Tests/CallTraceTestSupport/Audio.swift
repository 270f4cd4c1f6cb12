import CallTraceKeys
import Foundation

/// A mono 16-bit PCM WAV file of `seconds` at 8 kHz (a ramp, so muting shows).
public func wavFile(seconds: Int, channels: UInt16 = 1) -> Data {
    var data = Data()
    func le32(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) } }
    func le16(_ value: UInt16) { withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) } }
    let rate: UInt32 = 8000
    let bytesPerFrame = 2 * Int(channels)
    let body = seconds * Int(rate) * bytesPerFrame
    data.append(contentsOf: "RIFF".utf8); le32(UInt32(36 + body)); data.append(contentsOf: "WAVE".utf8)
    data.append(contentsOf: "fmt ".utf8); le32(16); le16(1); le16(channels); le32(rate)
    le32(rate * UInt32(bytesPerFrame)); le16(UInt16(bytesPerFrame)); le16(16)
    data.append(contentsOf: "data".utf8); le32(UInt32(body))
    let header = data.count
    data.count += body
    data.withUnsafeMutableBytes { (bytes: UnsafeMutableRawBufferPointer) in
        for index in 0..<body { bytes[header + index] = UInt8(truncatingIfNeeded: index &* 7 &+ 1) }
    }
    return data
}

public func sha256(_ data: Data) -> Data {
    let digest = try! SHA256Stream()
    digest.update(data)
    return digest.finish()
}

