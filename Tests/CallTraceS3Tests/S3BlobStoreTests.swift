import CallTraceKeys
@testable import CallTraceS3
import CallTraceStorage
import CallTraceSync
import CallTraceTestSupport
import Foundation
import Testing

/// The S3 blob store against an S3-compatible server that checks signatures (`TemporaryS3`):
/// what the file store promises (invisible until committed, exact ranged reads, deletes that
/// hold, leftovers found), over a bucket.
@Suite("S3: blobs in an S3-compatible bucket")
struct S3BlobStoreTests {
    static func bytes(_ count: Int, seed: UInt8 = 7) -> Data { Data((0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) }) }

    @Test("A blob smaller than a part is one PUT: invisible until committed, read back by ranges, listed, deleted and confirmed gone")
    func smallBlob() async throws {
        let pki = try TemporaryPKI()
        try await withTemporaryS3(pki: pki) { s3 in
            let store = try S3BlobStore(client: try s3.newBucket(prefix: "media/recordings"))
            let data = Self.bytes(300_000)
            let writer = try store.create("rec-1")
            try writer.append(data.prefix(100_000))
            try writer.append(data.dropFirst(100_000))
            #expect(try store.names().isEmpty, "nothing is visible before the commit")
            #expect(throws: BlobError.self) { try store.read("rec-1", offset: 0, length: 10) }
            try writer.commit()
            #expect(try store.names() == ["rec-1"])
            #expect(try store.names(writtenBefore: Date().addingTimeInterval(600)) == ["rec-1"])
            #expect(try store.names(writtenBefore: Date().addingTimeInterval(-600)).isEmpty, "written just now: maybe a replica's upload whose row is next")
            #expect(try store.client.listKeys(prefix: "") == ["media/recordings/rec-1"], "the prefix is a folder of the bucket")
            #expect(try store.read("rec-1", offset: 0, length: 300_000) == data)
            #expect(try store.read("rec-1", offset: 123_457, length: 1000) == data[123_457..<124_457])
            #expect(throws: BlobError.self, "past its end: short, as a damaged file is") { try store.read("rec-1", offset: 299_990, length: 20) }
            try store.delete("rec-1")
            #expect(try store.names().isEmpty)
            #expect(throws: BlobError.self) { try store.read("rec-1", offset: 0, length: 1) }
            try store.delete("rec-1")  // not there: not an error
            #expect(throws: BlobError.self) { try store.create("../rec-1") }
        }
    }

    @Test("A blob larger than a part goes up in parts (never more than a part held), is invisible until completed, and reads back whole across the parts' seams")
    func multipart() async throws {
        let pki = try TemporaryPKI()
        try await withTemporaryS3(pki: pki) { s3 in
            let store = try S3BlobStore(client: try s3.newBucket(), partBytes: S3BlobStore.minimumPartBytes)
            let data = Self.bytes(12 << 20, seed: 3)
            let writer = try store.create("long-call")
            for offset in stride(from: 0, to: data.count, by: 1 << 20) { try writer.append(data[offset..<min(offset + (1 << 20), data.count)]) }
            let inFlight = try store.client.listUploads(prefix: "")
            #expect(inFlight.map(\.key) == ["long-call"], "two parts are up, under one upload")
            #expect(try store.names().isEmpty)
            try writer.commit()
            #expect(try store.client.listUploads(prefix: "").isEmpty)
            #expect(try store.names() == ["long-call"])
            let part = S3BlobStore.minimumPartBytes
            #expect(try store.read("long-call", offset: 0, length: data.count) == data)
            #expect(try store.read("long-call", offset: Int64(part - 10), length: 20) == data[(part - 10)..<(part + 10)])
            #expect(try store.read("long-call", offset: Int64(2 * part - 1), length: 2) == data[(2 * part - 1)..<(2 * part + 1)])
        }
    }

    @Test("An abandoned upload leaves nothing; an upload a process left unfinished is abandoned at start-up")
    func leftovers() async throws {
        let pki = try TemporaryPKI()
        try await withTemporaryS3(pki: pki) { s3 in
            let client = try s3.newBucket(prefix: "blobs")
            let store = try S3BlobStore(client: client, partBytes: S3BlobStore.minimumPartBytes)
            let writer = try store.create("dropped")
            try writer.append(Self.bytes(6 << 20))
            #expect(try client.listUploads(prefix: "").count == 1)
            writer.abandon()
            #expect(try client.listUploads(prefix: "").isEmpty && store.names().isEmpty)

            // A process that died mid-upload: its upload is still open in the bucket. (The
            // emulator dates every upload 10 November 2010, so its age is tested below.)
            _ = try client.startUpload("blobs/died")
            #expect(try store.removeLeftovers() == ["died"])
            #expect(try client.listUploads(prefix: "").isEmpty)
        }
    }

    @Test("At start-up only uploads older than the age are abandoned: a younger one may be another replica's, in flight (AWS's documented ListMultipartUploads answer, in pages)")
    func leftoverAge() throws {
        let now = Date()
        let stamp = { (age: TimeInterval) in
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            return formatter.string(from: now.addingTimeInterval(-age))
        }
        let pages = [
            """
            <?xml version="1.0" encoding="UTF-8"?>
            <ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>firm</Bucket><KeyMarker></KeyMarker>
            <UploadIdMarker></UploadIdMarker><NextKeyMarker>blobs/old</NextKeyMarker><NextUploadIdMarker>u+1/=</NextUploadIdMarker><Prefix>blobs/</Prefix>
            <MaxUploads>1</MaxUploads><IsTruncated>true</IsTruncated><Upload><Key>blobs/old</Key><UploadId>u+1/=</UploadId>
            <Initiator><ID>arn:aws:iam::111122223333:user/media</ID><DisplayName>media</DisplayName></Initiator>
            <StorageClass>STANDARD</StorageClass><Initiated>\(stamp(2 * 86_400))</Initiated></Upload></ListMultipartUploadsResult>
            """,
            """
            <?xml version="1.0" encoding="UTF-8"?>
            <ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>firm</Bucket><Prefix>blobs/</Prefix>
            <IsTruncated>false</IsTruncated><Upload><Key>blobs/young</Key><UploadId>u2</UploadId><StorageClass>STANDARD</StorageClass>
            <Initiated>\(stamp(600))</Initiated></Upload></ListMultipartUploadsResult>
            """,
        ]
        let (server, transport) = try SigV4VectorTests.capture { request in
            guard request.method == "GET" else { return .init(status: 204, body: Data()) }
            return .init(headers: ["Content-Type": "application/xml"], body: Data(pages[request.query["key-marker"] == nil ? 0 : 1].utf8))
        }
        defer { server.stop() }
        let location = try S3Location(endpoint: "https://s3.eu-west-2.amazonaws.com", bucket: "firm", prefix: "blobs", region: "eu-west-2",
                                      accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretKey: "secret")
        let store = try S3BlobStore(client: S3Client(location: location, transport: transport))
        #expect(try store.removeLeftovers() == ["old"])
        let sent = server.requests.map { "\($0.method) \($0.target)" }
        #expect(sent == ["GET /firm?prefix=blobs%2F&uploads=", "GET /firm?key-marker=blobs%2Fold&prefix=blobs%2F&upload-id-marker=u%2B1%2F%3D&uploads=",
                         "DELETE /firm/blobs/old?uploadId=u%2B1%2F%3D"], "\(sent)")
    }

    @Test("Sealed chunks in the bucket: the store holds no plaintext, the reader opens any range from it, and a byte changed in the bucket is found")
    func sealed() async throws {
        let pki = try TemporaryPKI()
        try await withTemporaryS3(pki: pki) { s3 in
            let folder = pki.directory.appendingPathComponent("keys-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try MasterKey.generate(path: folder.appendingPathComponent("master.key").path)
            let keyStore = try Database(path: folder.appendingPathComponent("keys.sqlite").path, migrations: KeyRing.migrations)
            defer { keyStore.close() }
            let keys = KeyRing(keyStore: keyStore, masterKey: try MasterKey.load(path: folder.appendingPathComponent("master.key").path))
            try keys.createKeys(for: "org-1")
            let key = try keys.createObjectKey(org: "org-1", object: "rec-9")
            let store = try S3BlobStore(client: try s3.newBucket())
            let marker = Data("Mrs Example's account number is 12345678. ".utf8)
            var plain = Data()
            while plain.count < 200_000 { plain += marker }
            let writer = try store.create("rec-9")
            let sealer = ChunkSealer(keys: keys, key: key, writer: writer, chunkBytes: 64 << 10)
            try sealer.add(plain)
            try sealer.finish()
            try writer.commit()

            let stored = try #require(try store.client.getObject("rec-9", offset: 0, length: KeyRing.sealedSize(ofChunk: 64 << 10) * 3 + KeyRing.sealedSize(ofChunk: plain.count - 3 * (64 << 10))))
            #expect(stored.range(of: marker.prefix(16)) == nil, "the bucket holds ciphertext only")
            let reader = SealedBlobReader(keys: keys, blobs: store, key: key, blob: "rec-9", chunkBytes: 64 << 10, sizeBytes: UInt64(plain.count))
            #expect(try reader.bytes(from: 0, to: UInt64(plain.count)) == plain)
            #expect(try reader.bytes(from: 65_530, to: 131_080) == plain[65_530..<131_080])
            // A tampered object in the bucket is damage, named by its chunk.
            let tampered = try store.create("rec-9x")
            var flipped = stored
            flipped[70_000] ^= 1
            try tampered.append(flipped)
            try tampered.commit()
            let other = SealedBlobReader(keys: keys, blobs: store, key: key, blob: "rec-9x", chunkBytes: 64 << 10, sizeBytes: UInt64(plain.count))
            let damaged = #expect(throws: SealedBlobReader.Damaged.self) { _ = try other.bytes(from: 0, to: UInt64(plain.count)) }
            #expect(damaged?.chunk == 1)
        }
    }

    @Test("A prefix is one deployment's: claimed on first use, claimed again by the same key store, refused to another (its sweep would delete the first one's recordings)")
    func owner() async throws {
        let pki = try TemporaryPKI()
        try await withTemporaryS3(pki: pki) { s3 in
            let store = try S3BlobStore(client: try s3.newBucket(prefix: "firm/recordings"))
            try store.claim(owner: "key-store-a")
            try store.claim(owner: "key-store-a")
            let error = #expect(throws: S3Error.self) { try store.claim(owner: "key-store-b") }
            #expect(error?.description.contains("holds another deployment's recordings") == true, "\(error?.description ?? "")")
            #expect(try store.names().isEmpty, "the owner mark is not a blob")
        }
    }

    @Test("An outage is not damage: a 503 is tried three times and then reported as the store's failure; a missing object, a short one or a bucket gone each say what they are")
    func outageIsNotDamage() throws {
        let answers = Locked<[Int: Int]>([:])
        let (server, transport) = try SigV4VectorTests.capture { request in
            switch request.path {
            case "/firm/recordings/busy":
                answers.withLock { $0[503, default: 0] += 1 }
                return .init(status: 503, headers: ["Content-Type": "application/xml"], body: Data("<Error><Code>SlowDown</Code></Error>".utf8))
            case "/firm/recordings/gone":
                return .init(status: 404, headers: ["Content-Type": "application/xml"], body: Data("<Error><Code>NoSuchKey</Code></Error>".utf8))
            case "/firm/recordings/short":
                return .init(status: 206, headers: [:], body: Data(count: 5))
            case "/firm/recordings/nobucket":
                return .init(status: 404, headers: ["Content-Type": "application/xml"], body: Data("<Error><Code>NoSuchBucket</Code></Error>".utf8))
            default:
                return .init(status: 200, headers: [:], body: Data())  // no ETag: not a confirmed store
            }
        }
        defer { server.stop() }
        let location = try S3Location(endpoint: "https://s3.eu-west-2.amazonaws.com", bucket: "firm", prefix: "recordings", region: "eu-west-2",
                                      accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretKey: "secret")
        let store = try S3BlobStore(client: S3Client(location: location, transport: transport))
        let busy = #expect(throws: S3Error.self) { try store.read("busy", offset: 0, length: 10) }
        #expect(busy?.description == "reading recordings/busy: the object store answered 503 SlowDown")
        #expect(answers.withLock { $0[503] } == 3)
        #expect(throws: BlobError.self) { try store.read("gone", offset: 0, length: 10) }
        #expect(throws: BlobError.self) { try store.read("short", offset: 0, length: 10) }
        let bucketGone = #expect(throws: S3Error.self) { try store.read("nobucket", offset: 0, length: 10) }
        #expect(bucketGone?.description.contains("NoSuchBucket") == true)
        #expect(throws: S3Error.self, "deleted, but the store cannot say it is gone") { try store.delete("nobucket") }
        let unconfirmed = #expect(throws: S3Error.self) { try store.client.putObject("recordings/x", Data("a".utf8)) }
        #expect(unconfirmed?.description == "storing recordings/x: the object store did not confirm it (no ETag)")
    }

    @Test("Neither the signing settings nor a location print their secret, however they are printed")
    func secretNeverPrinted() throws {
        let location = try S3Location(endpoint: "https://[::1]:9000", bucket: "firm", prefix: "r", region: "eu-west-2",
                                      accessKeyID: "minioadmin", secretKey: "s3cr3t-VALUE")
        #expect(location.endpoint == "https://[::1]:9000")
        let request = try S3Client(location: location).request("GET", key: "r/x")
        var dumped = ""
        dump(request, to: &dumped)
        dump(location, to: &dumped)
        for text in ["\(request)", String(reflecting: request), "\(location)", String(reflecting: location), dumped] {
            #expect(!text.contains("s3cr3t"), "\(text)")
        }
        #expect(request.url == "https://[::1]:9000/firm/r/x")
    }

    @Test("A wrong secret is refused by the store; the error names the operation and S3's code, never the key id's secret")
    func wrongSecret() async throws {
        let pki = try TemporaryPKI()
        try await withTemporaryS3(pki: pki) { s3 in
            let good = try s3.newBucket()
            let location = try S3Location(endpoint: s3.endpoint, bucket: good.location.bucket, region: "eu-west-2", accessKeyID: s3.accessKeyID,
                                          secretKey: "not-the-secret-\(UUID().uuidString)", caFile: s3.caFile)
            let store = try S3BlobStore(client: S3Client(location: location))
            let error = #expect(throws: S3Error.self) { try store.names() }
            let text = error?.description ?? ""
            #expect(text.hasPrefix("listing \(good.location.bucket)/: the object store answered 403") && text.contains("SignatureDoesNotMatch"), "\(text)")
            #expect(!text.contains("not-the-secret") && !text.contains(s3.secretKey))
        }
    }

    @Test("A location is checked before anything is sent: https only, S3's bucket names, a clean prefix, a secret file only its owner reads")
    func location() throws {
        let ok = { (endpoint: String, bucket: String, prefix: String) in
            try S3Location(endpoint: endpoint, bucket: bucket, prefix: prefix, region: "eu-west-2", accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretKey: "s")
        }
        #expect(try ok("https://s3.eu-west-2.amazonaws.com", "firm-recordings", "media").url(key: "media/r", query: [])
                == "https://s3.eu-west-2.amazonaws.com/firm-recordings/media/r")
        for (endpoint, bucket, prefix) in [("http://store.example", "firm", ""), ("https://user:pw@store.example", "firm", ""),
                                           ("https://store.example/path", "firm", ""), ("https://store.example", "Firm", ""),
                                           ("https://store.example", "ab", ""), ("https://store.example", "-firm", ""),
                                           ("https://store.example", "firm", "/abs"), ("https://store.example", "firm", "a/../b"),
                                           ("https://store.example", "firm", "a b")] {
            #expect(throws: S3Error.self, "\(endpoint) \(bucket) \(prefix)") { try ok(endpoint, bucket, prefix) }
        }
        let pki = try TemporaryPKI()
        let loose = pki.directory.appendingPathComponent("loose-secret").path
        FileManager.default.createFile(atPath: loose, contents: Data("s3cr3t-value\n".utf8), attributes: [.posixPermissions: 0o644])
        let error = #expect(throws: S3Error.self) {
            _ = try S3Location(endpoint: "https://store.example", bucket: "firm", region: "eu-west-2", accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretKeyFile: loose)
        }
        #expect(error?.description.hasPrefix("s3_secret_key_file ") == true && error?.description.contains("s3cr3t") == false, "\(error?.description ?? "")")
    }
}
