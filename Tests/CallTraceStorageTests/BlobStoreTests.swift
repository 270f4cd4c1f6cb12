import CallTraceStorage
import Foundation
import Testing

@Suite("Storage: sealed files in a blob store")
struct BlobStoreTests {
    @Test("A blob is invisible until committed, then read back by range; the folder is 0700 and each file 0600")
    func writeCommitRead() throws {
        let folder = try Folder()
        let store = try FileBlobStore(folder: folder.path("blobs"))
        #expect(try folder.mode("blobs") == 0o700)
        let writer = try store.create("rec_1")
        let bytes = Data((0..<100_000).map { UInt8(truncatingIfNeeded: $0 * 7) })
        try writer.append(bytes.prefix(60_000))
        try writer.append(bytes.dropFirst(60_000))
        #expect(try store.names().isEmpty, "nothing to read before the commit")
        #expect(throws: BlobError.self) { _ = try store.read("rec_1", offset: 0, length: 1) }
        try writer.commit()
        #expect(try store.names() == ["rec_1"])
        #expect(try folder.mode("blobs/rec_1") == 0o600)
        #expect(try store.read("rec_1", offset: 0, length: 100_000) == bytes)
        #expect(try store.read("rec_1", offset: 99_990, length: 10) == bytes.suffix(10))
        let short = #expect(throws: BlobError.self) { _ = try store.read("rec_1", offset: 99_990, length: 11) }
        #expect(short?.description == "blob rec_1 is shorter than expected (truncated)")
    }

    @Test("An abandoned writer leaves nothing; a writer of a process that died leaves a leftover that removeLeftovers deletes, and only that")
    func abandonedAndLeftovers() throws {
        let folder = try Folder()
        let store = try FileBlobStore(folder: folder.path("blobs"))
        let abandoned = try store.create("rec_gone")
        try abandoned.append(Data("half".utf8))
        abandoned.abandon()
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path("blobs")).isEmpty)

        let kept = try store.create("rec_kept")
        try kept.append(Data("whole".utf8))
        try kept.commit()
        // A process killed mid-upload: its partial file is all that is left of it.
        #expect(FileManager.default.createFile(atPath: folder.path("blobs/rec_dead.partial"), contents: Data("half".utf8)))
        #expect(try store.names() == ["rec_kept"])
        #expect(try store.removeLeftovers() == ["rec_dead.partial"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path("blobs")) == ["rec_kept"])
        #expect(try store.removeLeftovers().isEmpty)
    }

    @Test("With a cutoff, only what was last written before it is judged: a younger leftover or blob may be another replica's write in flight")
    func writtenBefore() throws {
        let folder = try Folder()
        let store = try FileBlobStore(folder: folder.path("blobs"))
        for name in ["rec_old", "rec_new"] {
            let writer = try store.create(name)
            try writer.append(Data(name.utf8))
            try writer.commit()
        }
        for name in ["rec_dead", "rec_uploading"] {
            #expect(FileManager.default.createFile(atPath: folder.path("blobs/\(name).partial"), contents: Data("half".utf8)))
        }
        let twoDaysAgo = Date().addingTimeInterval(-2 * 86_400), dayAgo = Date().addingTimeInterval(-86_400)
        for name in ["rec_old", "rec_dead.partial"] {
            try FileManager.default.setAttributes([.modificationDate: twoDaysAgo], ofItemAtPath: folder.path("blobs/\(name)"))
        }
        #expect(try store.names(writtenBefore: dayAgo) == ["rec_old"])
        #expect(Set(try store.names(writtenBefore: Date().addingTimeInterval(60))) == ["rec_old", "rec_new"])
        #expect(try store.removeLeftovers(writtenBefore: dayAgo) == ["rec_dead.partial"])
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: folder.path("blobs"))) == ["rec_old", "rec_new", "rec_uploading.partial"])
    }

    @Test("Names are plain identifiers: a path, a dot or an empty name is refused before touching the disk; deleting twice is not an error")
    func namesAndDeletes() throws {
        let folder = try Folder()
        let store = try FileBlobStore(folder: folder.path("blobs"))
        for name in ["../escape", "a/b", "", ".hidden", "rec 1", String(repeating: "a", count: 129)] {
            let error = #expect(throws: BlobError.self, "\(name)") { _ = try store.create(name) }
            #expect(error?.description == "blob name is not a plain identifier")
        }
        #expect(!FileManager.default.fileExists(atPath: folder.path("escape.partial")))
        let writer = try store.create("rec_2-B")
        try writer.commit()
        try store.delete("rec_2-B")
        try store.delete("rec_2-B")
        #expect(try store.names().isEmpty)
        let notFolder = folder.path("file")
        #expect(FileManager.default.createFile(atPath: notFolder, contents: Data()))
        let error = #expect(throws: BlobError.self) { _ = try FileBlobStore(folder: notFolder) }
        #expect(error?.description == "blob_store \(notFolder) is not a folder")
    }
}
