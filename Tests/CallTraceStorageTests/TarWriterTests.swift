import CallTraceStorage
import Foundation
import Testing

/// Bytes kept in memory, as a sealed blob would receive them.
private final class MemorySink: ArchiveSink {
    var bytes = Data()
    var finished = false
    func add(_ data: Data) throws { bytes.append(data) }
    func finish() throws { finished = true }
}

/// A stand-in digest (the real one is OpenSSL's SHA-256, in CallTraceKeys): the byte count, so
/// the writer's bookkeeping of each entry can be checked without a crypto library here.
private final class CountingDigest: ArchiveDigest {
    var count: UInt64 = 0
    func update(_ data: Data) { count += UInt64(data.count) }
    func finish() -> Data { withUnsafeBytes(of: count.bigEndian) { Data($0) } }
}

/// Debian's tar, run to completion: its status and what it printed.
private func tar(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/tar")
    process.arguments = arguments
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let stdout = out.fileHandleForReading.readDataToEndOfFile(), stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
}

@Suite("Storage: tar archives written as they go")
struct TarWriterTests {
    @Test("What the writer makes, the system's tar reads: every entry, its bytes, a 120-byte path split at a slash, and the index of sizes")
    func systemTarReadsIt() throws {
        let sink = MemorySink()
        let archive = try TarWriter(sink: sink) { CountingDigest() }
        let long = "calls/" + String(repeating: "c", count: 60) + "/" + String(repeating: "r", count: 52) + ".flac"
        try archive.add("calls/call_1/transcript.txt", Data("Hello, you're through to Smith & Co.\n".utf8))
        try archive.begin(long, size: 1500)
        for piece in stride(from: 0, to: 1500, by: 500) { try archive.body(Data(repeating: UInt8(piece / 500 + 1), count: 500)) }
        try archive.end()
        try archive.index(["bundle_id": "bundle_1"])
        let summary = try archive.finish()
        #expect(sink.finished && summary.entries == 3 && summary.size == UInt64(sink.bytes.count) && summary.size % 512 == 0)

        let file = FileManager.default.temporaryDirectory.appendingPathComponent("calltrace-tar-\(UUID().uuidString).tar")
        defer { try? FileManager.default.removeItem(at: file) }
        try sink.bytes.write(to: file)
        let listing = try tar(["-tf", file.path])
        #expect(listing.status == 0, "\(listing.stderr)")
        #expect(listing.stdout.split(separator: "\n") == ["calls/call_1/transcript.txt", Substring(long), "index.json"])
        let text = try tar(["-xOf", file.path, "calls/call_1/transcript.txt"])
        #expect(text.stdout == "Hello, you're through to Smith & Co.\n")
        let index = try tar(["-xOf", file.path, "index.json"])
        let document = try #require(try JSONSerialization.jsonObject(with: Data(index.stdout.utf8)) as? [String: Any])
        let entries = try #require(document["entries"] as? [[String: Any]])
        #expect(document["bundle_id"] as? String == "bundle_1")
        #expect(entries.map { $0["bytes"] as? Int } == [37, 1500])
        #expect(entries.map { $0["sha256"] as? String } == ["0000000000000025", "00000000000005dc"])
    }

    @Test("An entry longer or shorter than its header said, and a path no header can hold, are refused with their reason")
    func refusals() throws {
        let archive = try TarWriter(sink: MemorySink()) { CountingDigest() }
        try archive.begin("a.txt", size: 4)
        #expect(throws: TarWriter.Failure.self) { try archive.body(Data(count: 5)) }
        try archive.body(Data(count: 3))
        let short = #expect(throws: TarWriter.Failure.self) { try archive.end() }
        #expect("\(short!)" == "a.txt ended after 3 of 4 bytes")

        let other = try TarWriter(sink: MemorySink()) { CountingDigest() }
        let unsplittable = String(repeating: "x", count: 101)
        let long = #expect(throws: TarWriter.Failure.self) { try other.add(unsplittable, Data()) }
        #expect("\(long!)" == "the path \(unsplittable) is too long for the archive")
    }
}
