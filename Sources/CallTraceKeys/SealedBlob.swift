public import CallTraceStorage
public import Foundation

/// Seals a file into independently authenticated chunks of `chunkBytes` under one object key,
/// as it arrives, into a `BlobWriter`. A chunk is sealed once the next byte arrives (or the
/// file ends), so the last one is known to be last: a file cut short, or chunks swapped or
/// moved, fails to open. Media's recordings and compliance's bundles are written this way.
public final class ChunkSealer: @unchecked Sendable {
    private let keys: KeyRing
    private let key: ObjectKey
    private let writer: any BlobWriter
    private let chunkBytes: Int
    private var pending = Data()
    private var index = 0

    public init(keys: KeyRing, key: ObjectKey, writer: any BlobWriter, chunkBytes: Int) {
        self.keys = keys
        self.key = key
        self.writer = writer
        self.chunkBytes = chunkBytes
        pending.reserveCapacity(chunkBytes)
    }

    public func add(_ piece: Data) throws {
        var rest = piece[...]
        while !rest.isEmpty {
            if pending.count == chunkBytes { try seal(isLast: false) }
            let take = rest.prefix(chunkBytes - pending.count)
            pending += take
            rest = rest.dropFirst(take.count)
        }
    }

    /// Seals the last chunk (empty for an empty file).
    public func finish() throws { try seal(isLast: true) }

    private func seal(isLast: Bool) throws {
        try writer.append(try keys.sealChunk(pending, with: key, index: index, isLast: isLast))
        index += 1
        pending.removeAll(keepingCapacity: true)
    }
}

/// Reads plaintext byte ranges of a file sealed by `ChunkSealer`, opening only the chunks they cover.
public struct SealedBlobReader: Sendable {
    /// A chunk missing or failing authentication: nothing altered is returned. (A store that
    /// cannot be reached, an object store's outage, throws its own error: the file is not damaged.)
    public struct Damaged: Error, Sendable {
        public let chunk: Int
    }

    let keys: KeyRing
    let blobs: any BlobStore
    let key: ObjectKey
    let blob: String
    let chunkBytes: Int
    let sizeBytes: UInt64

    public init(keys: KeyRing, blobs: any BlobStore, key: ObjectKey, blob: String, chunkBytes: Int, sizeBytes: UInt64) {
        self.keys = keys
        self.blobs = blobs
        self.key = key
        self.blob = blob
        self.chunkBytes = chunkBytes
        self.sizeBytes = sizeBytes
    }

    /// The chunks covering the range are read from the store in one read (one request to an
    /// object store, not one a chunk); if that read fails, chunk by chunk, to name the one missing.
    public func bytes(from start: UInt64, to end: UInt64) throws -> Data {
        let chunk = UInt64(chunkBytes)
        let sealedChunk = UInt64(KeyRing.sealedSize(ofChunk: chunkBytes))
        let lastIndex = sizeBytes == 0 ? 0 : Int((sizeBytes - 1) / chunk)
        guard end > start else { return Data() }
        let first = Int(start / chunk)
        let past = Int((end - 1) / chunk) + 1
        func sealedCount(_ index: Int) -> Int { KeyRing.sealedSize(ofChunk: Int(min(chunk, sizeBytes - UInt64(index) * chunk))) }
        let spanStart = UInt64(first) * sealedChunk
        let span = try? blobs.read(blob, offset: Int64(spanStart), length: Int(UInt64(past - 1) * sealedChunk - spanStart) + sealedCount(past - 1))
        var out = Data()
        out.reserveCapacity(Int(end - start))
        var index = first
        while UInt64(index) * chunk < end {
            let plainStart = UInt64(index) * chunk
            let plainCount = min(chunk, sizeBytes - plainStart)
            let plain: Data
            do {
                let offset = UInt64(index) * sealedChunk
                let sealed = try span.map { span in
                    let from = span.startIndex + Int(offset - spanStart)
                    return span[from..<from + sealedCount(index)]
                } ?? blobs.read(blob, offset: Int64(offset), length: sealedCount(index))
                plain = try keys.openChunk(sealed, with: key, index: index, isLast: index == lastIndex)
            } catch is BlobError, is KeyError {
                throw Damaged(chunk: index)
            }
            let from = Int(max(start, plainStart) - plainStart)
            let to = Int(min(end, plainStart + plainCount) - plainStart)
            out += plain[from..<to]
            index += 1
        }
        return out
    }
}

/// A tar archive (`TarWriter`) can be written straight into a sealed blob.
extension ChunkSealer: ArchiveSink {}
