import CallTraceAPI
import CallTraceKeys
import CallTraceProto
import CallTraceRPC
import CallTraceStorage
import CallTraceDeploymentSupport
import CallTraceTestSupport
import Foundation
import Synchronization
import Testing

@Suite("Media killed with SIGKILL: a complete recording or nothing", .overTLS)
struct CrashTests {
    @Test("kill -9 in the middle of an upload leaves nothing after restart; a recording stored before the kill plays whole")
    func killDuringUpload() async throws {
        let setup = try ServiceSetup(service: "media")
        let ledger = try await CallLedger(pki: setup.pki, mediaPort: setup.port)
        let org = try await ledger.organisation().org
        let blobs = (setup.database as NSString).deletingLastPathComponent + "/recordings"
        var process = try setup.start(setup.flags + ["--log-format", "json"], environment: ledger.peerEnvironment)
        try await setup.waitUntilServing(try setup.client())
        let gateway = Media(try setup.client(identity: TemporaryPKI.identity("gateway", "telephony")))
        let transcript = Media(try setup.client(identity: TemporaryPKI.identity("service", "transcript")))
        let file = wavFile(samples: 200_000)
        for call in ["before", "during"] { try await ledger.start(call, in: org) }
        let stored = try await gateway.upload(file, org: org, call: "before")

        // An upload that stops half way, held open until the process is gone.
        let held = Task {
            try await gateway.uploadRecording { writer in
                try await writer.send(.with { $0.header = .with { $0.orgID = org; $0.callID = "during"; $0.format = .wavPcm16
                    $0.sampleRateHz = 8000; $0.channels = 1; $0.sha256 = sha256(file) } })
                try await writer.send(.with { $0.chunk = file.prefix(200_000) })
                try await Task.sleep(for: .seconds(600))  // never finishes: cancelled below
            }
        }
        #expect(await eventually {
            ((try? FileManager.default.contentsOfDirectory(atPath: blobs)) ?? []).contains { $0.hasSuffix(".partial") }
        }, "the upload reached the disk")
        process.signal(SIGKILL)
        #expect(await process.waitForExit()?.status == 128 + SIGKILL)
        held.cancel()
        _ = await held.result

        process = try setup.start(setup.flags + ["--log-format", "json"], environment: ledger.peerEnvironment)
        try await setup.waitUntilServing(try setup.client())
        #expect(await process.waitForOutput(containing: "start-up sweep removed unfinished recordings"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: blobs) == [stored.recordingID])
        #expect(try await transcript.play(stored.recordingID, org: org, options: CallOptions()) == file)
        process.signal(SIGTERM)
        #expect(await process.waitForExit()?.status == 0)
        // After a clean stop the stores can be read here: one row, one key, for the complete recording.
        let database = try Database(path: setup.database)
        #expect(try database.sync { try $0.query("SELECT id FROM recordings").compactMap { $0.text("id") } } == [stored.recordingID])
        database.close()
        let keyStore = try Database(path: setup.keyStore)
        #expect(try keyStore.sync { try $0.query("SELECT object_id FROM object_keys").compactMap { $0.text("object_id") } } == [stored.recordingID])
        keyStore.close()
        await ledger.stop()
    }

    @Test("kill -9 while deletions are under way: after restart every recording is whole (row, key and file, and it plays) or wholly gone")
    func killDuringDeletes() async throws {
        let setup = try ServiceSetup(service: "media")
        let ledger = try await CallLedger(pki: setup.pki, mediaPort: setup.port)
        let org = try await ledger.organisation().org
        let blobs = (setup.database as NSString).deletingLastPathComponent + "/recordings"
        var process = try setup.start(setup.flags + ["--log-format", "json"], environment: ledger.peerEnvironment)
        try await setup.waitUntilServing(try setup.client())
        let gateway = Media(try setup.client(identity: TemporaryPKI.identity("gateway", "telephony")))
        let file = wavFile(samples: 400_000)
        var stored: [String: String] = [:]  // call → recording
        for n in 0..<12 {
            try await ledger.start("call-\(n)", in: org)
            stored["call-\(n)"] = try await gateway.upload(file, org: org, call: "call-\(n)").recordingID
        }

        // Twelve deletions at once, as compliance asks; the process dies as the first answer arrives.
        let compliance = Media(try setup.client(identity: TemporaryPKI.identity("service", "compliance")))
        let first = AsyncStream<Void>.makeStream()
        let calls = Array(stored.keys)
        let deletions = Task {
            await withTaskGroup(of: String?.self) { group -> Set<String> in
                for call in calls {
                    group.addTask {
                        guard (try? await compliance.deleteCallRecordings(.with { $0.orgID = org; $0.callID = call })) != nil else { return nil }
                        first.continuation.yield()
                        return call
                    }
                }
                var answered = Set<String>()
                for await call in group { if let call { answered.insert(call) } }
                first.continuation.finish()  // never leaves the wait below hanging
                return answered
            }
        }
        for await _ in first.stream { break }
        process.signal(SIGKILL)
        #expect(await process.waitForExit()?.status == 128 + SIGKILL)
        let answered = await deletions.value

        process = try setup.start(setup.flags + ["--log-format", "json"], environment: ledger.peerEnvironment)
        try await setup.waitUntilServing(try setup.client())
        let transcript = Media(try setup.client(identity: TemporaryPKI.identity("service", "transcript")))
        var whole = Set<String>()
        for (call, recording) in stored {
            if (try? await transcript.play(recording, org: org, options: CallOptions())) == file { whole.insert(recording) }
            if answered.contains(call) { #expect(!whole.contains(recording), "\(call) was answered as deleted") }
        }
        process.signal(SIGTERM)
        #expect(await process.waitForExit()?.status == 0)
        // Row, key and file agree for every recording: whole, or gone.
        let database = try Database(path: setup.database)
        let rows = Set(try database.sync { try $0.query("SELECT id FROM recordings").compactMap { $0.text("id") } })
        database.close()
        let keyStore = try Database(path: setup.keyStore)
        let keys = Set(try keyStore.sync { try $0.query("SELECT object_id FROM object_keys").compactMap { $0.text("object_id") } })
        keyStore.close()
        let files = Set(try FileManager.default.contentsOfDirectory(atPath: blobs))
        #expect(rows == whole && keys == whole && files == whole, "rows \(rows.count), keys \(keys.count), files \(files.count), whole \(whole.count)")
        #expect(whole.count < stored.count, "at least the answered deletion is gone")
        await ledger.stop()
    }
}
