import CallTraceAPI
import CallTraceDeploymentSupport
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceStorage
import CallTraceTestSupport
import Foundation
import Testing

/// Issue 34: each service on a PostgreSQL database of its own (`database: postgres://…`), with
/// the same migrations, rules and promises as on SQLite.
@Suite("Issue 34: the services on PostgreSQL")
struct ServicesOnPostgresTests {
    @Test("Identity, transcript, compliance and media each on a PostgreSQL database of their own: a firm, a call, a recording uploaded, played and deleted; the caller's number nowhere in PostgreSQL in the clear; the audit chain verifies; a second media replica on the same database and key store plays and deletes; media restarted finds its recordings; a key store naming the database is refused")
    func fourServices() async throws {
        let pki = try TemporaryPKI()
        try await withTemporaryPostgres(pki: pki) { server in
            try await TestDatabases.$postgres.withValue(server) { try await TestDatabases.$sharedKeyStore.withValue(true) {
                let deployment = try await MediaDeployment()
                let services = [deployment.identity, deployment.calls.transcript, deployment.calls.compliance, deployment.media]
                #expect(services.allSatisfy { $0.instance.database.dialect == .postgres && $0.instance.database.schemaVersion > 0 })
                let (org, admin) = try await deployment.organisation()
                let asAdmin = try bearer(admin)
                let audio = wavFile(samples: 100_000)
                let kept = try await deployment.upload(audio, org: org, call: "call-pg-1", caller: "07700900123")
                let gone = try await deployment.upload(audio, org: org, call: "call-pg-2", caller: "07700900123")
                #expect(try await deployment.gateway.play(kept.recordingID, org: org, options: asAdmin) == audio)
                _ = try await deployment.gateway.deleteRecording(.with { $0.orgID = org; $0.recordingID = gone.recordingID }, options: asAdmin)
                #expect(await code { _ = try await deployment.gateway.play(gone.recordingID, org: org, options: asAdmin) } == .notFound)

                // What PostgreSQL holds: every table of every service, every value, without the
                // caller's number in any form.
                for service in services {
                    let values = try await service.instance.database.read { db in
                        try db.tableNames().sorted().flatMap { table in try db.query("SELECT * FROM \(table)").flatMap(\.allValues) }
                    }
                    #expect(!values.isEmpty)
                    for value in values {
                        let bytes: Data? = switch value {
                        case .text(let text): Data(text.utf8)
                        case .blob(let blob): blob
                        default: nil
                        }
                        #expect(bytes.map { $0.range(of: Data("7700900123".utf8)) == nil } != false, "\(service.name) holds the caller's number")
                    }
                }

                // Media's events reach compliance, whose chain (in its PostgreSQL database) verifies.
                let audit = Calltrace_Compliance_V1_AuditServiceClient(try deployment.calls.compliance.client())
                #expect(try await eventually {
                    let verdict = try await audit.verifyAuditChain(.with { $0.orgID = org }, options: asAdmin)
                    return verdict.intact && verdict.eventsChecked >= 4
                })

                // A second replica of media, on the same database and key store (and files): it
                // plays what the first stored, and what it deletes is gone from the first.
                let replica = try await deployment.media.replica()
                let second = Media(try replica.client())
                #expect(try await second.play(kept.recordingID, org: org, options: asAdmin) == audio)
                let third = try await deployment.upload(audio, org: org, call: "call-pg-3", caller: "07700900123")
                _ = try await second.deleteRecording(.with { $0.orgID = org; $0.recordingID = third.recordingID }, options: asAdmin)
                #expect(await code { _ = try await deployment.gateway.play(third.recordingID, org: org, options: asAdmin) } == .notFound)
                await replica.stop()

                // Restarted, media reads its recordings from PostgreSQL again.
                await deployment.media.stop()
                let again = try await deployment.media.restarted()
                #expect(again.instance.database.dialect == .postgres)
                let media = Media(try again.client())
                #expect(try await media.play(kept.recordingID, org: org, options: asAdmin) == audio)
                #expect(await code { _ = try await media.play(gone.recordingID, org: org, options: asAdmin) } == .notFound)
                await again.stop()
                await deployment.calls.stop()

                // The key store is never the service's database: a backup of the data would hold the keys.
                let refused = await #expect(throws: ConfigurationError.self) {
                    _ = try await deployment.media.replica { $0.keyStore = $0.database }
                }
                #expect(refused?.description.contains("is a service's database, not a key store") == true, "\(String(describing: refused))")
                // Nor under another spelling that hides its tables (another search_path).
                let hidden = await #expect(throws: ConfigurationError.self) {
                    _ = try await deployment.media.replica { $0.keyStore = $0.database + "&options=-csearch_path%3Dkeys" }
                }
                #expect(hidden?.description.contains("is a service's database, not a key store") == true, "\(String(describing: hidden))")
            } }
        }
    }

    @Test("A media replica started while the first is in the middle of an upload leaves the upload whole: its start-up sweep spares the last day's key and unfinished file, and the recording plays from both replicas")
    func replicaStartsMidUpload() async throws {
        let pki = try TemporaryPKI()
        try await withTemporaryPostgres(pki: pki) { server in
            try await TestDatabases.$postgres.withValue(server) { try await TestDatabases.$sharedKeyStore.withValue(true) {
                let deployment = try await MediaDeployment()
                let (org, admin) = try await deployment.organisation()
                let audio = wavFile(samples: 100_000)
                try await deployment.calls.start("call-mid", in: org, caller: "07700900123")
                let (gate, open) = AsyncStream<Void>.makeStream()
                let upload = Task {
                    try await deployment.telephony.uploadRecording(options: CallOptions()) { writer in
                        try await writer.send(.with {
                            $0.header = .with {
                                $0.orgID = org; $0.callID = "call-mid"; $0.format = .wavPcm16; $0.sampleRateHz = 8000; $0.channels = 1
                                $0.sha256 = sha256(audio)
                            }
                        })
                        try await writer.send(.with { $0.chunk = audio.prefix(100_000) })
                        for await _ in gate { break }
                        try await writer.send(.with { $0.chunk = audio.dropFirst(100_000) })
                    }.recording
                }
                // The upload is under way on the first replica: its key made, its file begun, no row yet.
                let partial = { (try? FileManager.default.contentsOfDirectory(atPath: deployment.blobFolder))?.contains { $0.hasSuffix(".partial") } == true }
                #expect(await eventually { partial() && (try? deployment.keyedRecordings().count) == 1 })

                let replica = try await deployment.media.replica()
                #expect(!replica.log.text.contains("start-up sweep removed"), "\(replica.log.text)")
                #expect(try partial() && deployment.keyedRecordings().count == 1, "the sweep left the upload's key and file")
                open.yield()
                let recording = try await upload.value
                let asAdmin = try bearer(admin)
                #expect(try await deployment.gateway.play(recording.recordingID, org: org, options: asAdmin) == audio)
                #expect(try await Media(try replica.client()).play(recording.recordingID, org: org, options: asAdmin) == audio)
                await replica.stop()
                await deployment.stop()
            } }
        }
    }
}
