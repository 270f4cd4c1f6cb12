import ArgumentParser
import CallTraceKeys
import CallTraceS3
import CallTraceStorage
import CallTraceTestSupport
import Foundation

/// A recording sealed into a blob store and read back as playback reads it, in files (the
/// baseline) and in an S3-compatible bucket (moto's server over TLS on loopback, `make
/// s3-emulator`), rounds alternating: what media's upload and playback cost in each store.
struct StorageBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "storage", abstract: "Sealed write and ranged playback MB/s of a recording, in files and in an S3-compatible bucket (moto).")

    @Option(help: "Rounds.") var rounds = 3
    @Option(help: "MiB per recording.") var mib = 64
    @Option(help: "KiB per playback read (media reads 256).") var readKib = 256

    func run() async throws {
        let pki = try TemporaryPKI()
        let s3 = try await TemporaryS3(pki: pki)
        defer { s3.stop() }
        let folder = pki.directory.appendingPathComponent("storage-bench")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try MasterKey.generate(path: folder.appendingPathComponent("master.key").path)
        let keyStore = try Database(path: folder.appendingPathComponent("keys.sqlite").path, migrations: KeyRing.migrations)
        defer { keyStore.close() }
        let keys = KeyRing(keyStore: keyStore, masterKey: try MasterKey.load(path: folder.appendingPathComponent("master.key").path))
        try keys.createKeys(for: "org-bench")
        let stores: [(name: String, store: any BlobStore)] = [
            ("files", try FileBlobStore(folder: folder.appendingPathComponent("blobs").path)),
            ("S3", try S3BlobStore(client: try s3.newBucket(prefix: "recordings"))),
        ]
        let block = Data((0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) })
        let size = UInt64(mib << 20), chunk = 64 << 10
        print("calltrace-bench storage: \(rounds) rounds, a \(mib) MiB recording sealed in 64 KiB chunks, read back in \(readKib) KiB ranges; "
              + "files vs S3 (moto \(s3.endpoint), over TLS)")
        var rates: [String: [Double]] = [:]
        for round in 1...rounds {
            for (name, store) in stores {
                let id = "bench-\(round)"
                let key = try keys.createObjectKey(org: "org-bench", object: "\(name)-\(id)")
                let started = ContinuousClock.now
                let writer = try store.create(id)
                let sealer = ChunkSealer(keys: keys, key: key, writer: writer, chunkBytes: chunk)
                for _ in 0..<mib { try sealer.add(block) }
                try sealer.finish()
                try writer.commit()
                rates["\(name) write", default: []].append(Double(size) / 1e6 / started.duration(to: .now).seconds)

                let reader = SealedBlobReader(keys: keys, blobs: store, key: key, blob: id, chunkBytes: chunk, sizeBytes: size)
                let readStarted = ContinuousClock.now
                var offset: UInt64 = 0
                while offset < size {
                    let end = min(size, offset + UInt64(readKib << 10))
                    let piece = try reader.bytes(from: offset, to: end)
                    guard piece.count == Int(end - offset), piece.first == block[Int(offset % UInt64(block.count))] else {
                        throw ValidationError("\(name): the range at \(offset) came back wrong")
                    }
                    offset = end
                }
                rates["\(name) playback", default: []].append(Double(size) / 1e6 / readStarted.duration(to: .now).seconds)
                try store.delete(id)
                try keys.destroyObjectKey(org: "org-bench", object: "\(name)-\(id)")
            }
            print("round \(round) done")
        }
        print("")
        print("MB/s (median)".padding(toLength: 16, withPad: " ", startingAt: 0) + "files".leftPad(10) + "S3 (moto)".leftPad(12) + "ratio".leftPad(9))
        for what in ["write", "playback"] {
            let files = median(rates["files \(what)"] ?? []), bucket = median(rates["S3 \(what)"] ?? [])
            print(what.padding(toLength: 16, withPad: " ", startingAt: 0) + String(format: "%.1f", files).leftPad(10)
                  + String(format: "%.1f", bucket).leftPad(12) + String(format: "%.2fx", bucket / files).leftPad(9))
        }
    }
}
