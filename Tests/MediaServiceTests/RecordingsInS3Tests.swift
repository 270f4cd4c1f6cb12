import CallTraceS3
import CallTraceServiceHost
import CallTraceDeploymentSupport
import CallTraceTestSupport
import Foundation
import MediaDomain
import Testing

/// Media with `blob_store: s3://…`: its recordings in an S3-compatible bucket (`TemporaryS3`,
/// which checks signatures), with the same promises as on its own disk (P4, P10).
@Suite("P4/P10: recordings in an S3-compatible bucket")
struct RecordingsInS3Tests {
    static func settings(_ s3: TemporaryS3, bucket: String, prefix: String) -> (inout ServiceConfiguration) -> Void {
        { configuration in
            for (key, value) in [("blob_store", "s3://\(bucket)/\(prefix)"), ("s3_endpoint", s3.endpoint), ("s3_region", "eu-west-2"),
                                 ("s3_access_key_id", s3.accessKeyID), ("s3_secret_key_file", s3.secretKeyFile), ("s3_ca_file", s3.caFile)] {
                try! configuration.set(key, value)
            }
        }
    }

    @Test("Upload (one PUT, and in parts past 8 MiB), play by range, delete: the bucket holds sealed bytes only, and nothing once deleted")
    func lifecycle() async throws {
        let pki = try TemporaryPKI()
        try await withTemporaryS3(pki: pki) { s3 in
            let bucket = try s3.newBucket()
            let deployment = try await MediaDeployment(adjustMedia: Self.settings(s3, bucket: bucket.location.bucket, prefix: "firm-a/recordings"))
            let (org, admin) = try await deployment.organisation()
            let asAdmin = try bearer(admin)
            let short = wavFile(samples: 100_000), long = wavFile(samples: 4_800_000)  // 200 KB; 9.6 MB: two parts
            let one = try await deployment.upload(short, org: org, call: "call-s3-1")
            let two = try await deployment.upload(long, org: org, call: "call-s3-2")
            #expect(try bucket.listKeys(prefix: "").sorted() == ["firm-a/recordings/\(one.recordingID)", "firm-a/recordings/\(two.recordingID)",
                                                                "firm-a/recordings/calltrace.owner"].sorted())
            #expect(try bucket.listUploads(prefix: "").isEmpty)

            #expect(try await deployment.gateway.play(one.recordingID, org: org, options: asAdmin) == short)
            #expect(try await deployment.gateway.play(two.recordingID, org: org, options: asAdmin) == long)
            let seam = 8 << 20  // the first part's end, within a sealed chunk
            #expect(try await deployment.gateway.play(two.recordingID, org: org, offset: UInt64(seam - 70_000), length: 140_000, options: asAdmin)
                    == long.subdata(in: (seam - 70_000)..<(seam + 70_000)))

            // At rest in the bucket: no run of the audio appears.
            let stored = try #require(try bucket.getObject("firm-a/recordings/\(one.recordingID)", offset: 0, length: 150_000))
            #expect(stored.range(of: short.subdata(in: 1_000..<1_064)) == nil)

            _ = try await deployment.gateway.deleteRecording(.with { $0.orgID = org; $0.recordingID = one.recordingID }, options: asAdmin)
            #expect(try bucket.listKeys(prefix: "").sorted() == ["firm-a/recordings/\(two.recordingID)", "firm-a/recordings/calltrace.owner"].sorted())
            #expect(try !deployment.keyedRecordings().contains(one.recordingID))
            #expect(await code { _ = try await deployment.gateway.play(one.recordingID, org: org, options: asAdmin) } == .notFound)
            await deployment.stop()

            // Another deployment (its own database and key store) pointed at the same folder of
            // the bucket would sweep away these recordings: it does not start.
            await #expect(throws: (any Error).self) {
                let other = try await MediaDeployment(adjustMedia: Self.settings(s3, bucket: bucket.location.bucket, prefix: "firm-a/recordings"))
                await other.stop()
            }
            #expect(try bucket.listKeys(prefix: "firm-a/recordings/").contains("firm-a/recordings/\(two.recordingID)"))
        }
    }

    @Test("Media refuses to start on a bucket it cannot use: settings missing, a secret others can read, s3_* without an s3:// blob_store")
    func refusals() async throws {
        let pki = try TemporaryPKI()
        let loose = pki.directory.appendingPathComponent("loose").path
        FileManager.default.createFile(atPath: loose, contents: Data("secret-value-1\n".utf8), attributes: [.posixPermissions: 0o644])
        let tight = pki.directory.appendingPathComponent("tight").path
        FileManager.default.createFile(atPath: tight, contents: Data("secret-value-2\n".utf8), attributes: [.posixPermissions: 0o600])
        let cases: [([(String, String)], String)] = [
            ([("blob_store", "s3://firm-a/recordings")], "needs s3_endpoint, s3_region, s3_access_key_id and s3_secret_key_file"),
            ([("blob_store", "s3://firm-a/recordings"), ("s3_endpoint", "https://s3.eu-west-2.amazonaws.com"), ("s3_region", "eu-west-2"),
              ("s3_access_key_id", "AKIAIOSFODNN7EXAMPLE"), ("s3_secret_key_file", loose)], "s3_secret_key_file"),
            ([("s3_region", "eu-west-2")], "blob_store is a folder"),
            ([("s3_addressing", "virtual-hosted")], "blob_store is a folder"),
            ([("blob_store", "s3://firm-a"), ("s3_endpoint", "https://s3.eu-west-2.amazonaws.com"), ("s3_region", "eu-west-2"),
              ("s3_access_key_id", "AKIAIOSFODNN7EXAMPLE"), ("s3_secret_key_file", tight)], "must name a folder of the bucket"),
            ([("blob_store", "s3://Firm_A/recordings"), ("s3_endpoint", "https://s3.eu-west-2.amazonaws.com"), ("s3_region", "eu-west-2"),
              ("s3_access_key_id", "AKIAIOSFODNN7EXAMPLE"), ("s3_secret_key_file", tight)], "not a valid bucket name"),
        ]
        for (settings, expected) in cases {
            var configuration = ServiceConfiguration.defaults(service: "media", port: 0, settings: MediaSettings.self)
            for (key, value) in settings { try configuration.set(key, value) }
            let error = #expect(throws: ConfigurationError.self) { try configuration[MediaSettings.self].validate() }
            let text = error.map { "\($0)" } ?? ""
            #expect(text.contains(expected) && !text.contains("secret-value"), "\(settings): \(text)")
        }
        let bad = #expect(throws: ConfigurationError.self) {
            var configuration = ServiceConfiguration.defaults(service: "media", port: 0, settings: MediaSettings.self)
            try configuration.set("s3_addressing", "dns")
        }
        #expect(bad.map { "\($0)" }?.contains("s3_addressing must be path or virtual-hosted") == true)
    }
}
