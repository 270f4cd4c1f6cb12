import CallTraceAPI
import CallTraceProto
import CallTraceRPC
import CallTraceTestSupport
import Foundation
import Testing

/// A recording for a call transcript never heard of: media's job telling transcript about it
/// retries for a while (a gateway may report the call a moment late), then is dead-lettered
/// with its status and message in the log, never retried for ever.
@Suite("Media: a recording for a call transcript does not know")
struct OrphanRecordingTests {
    @Test("Its recording_stored job ends dead-lettered, the reason (NOT_FOUND and the message) in the log and the job's row")
    func unknownCallIsDeadLettered() async throws {
        let deployment = try await CallDataDeployment()
        defer { Task { await deployment.stop() } }
        let (org, _) = try await deployment.organisation(tracking: "01184960000")
        let file = wavFile(seconds: 1)
        let stored = try await deployment.recordings().uploadRecording { writer in
            try await writer.send(.with {
                $0.header = .with { $0.orgID = org; $0.callID = "never-started"; $0.format = .wavPcm16; $0.sampleRateHz = 8000; $0.channels = 1
                    $0.sha256 = sha256(file) }
            })
            try await writer.send(.with { $0.chunk = file })
        }.recording
        var lastError = ""
        #expect(try await eventually(timeout: .seconds(60)) {
            deployment.clock.advance(by: .seconds(600))  // past each backoff
            let rows = try await deployment.media.instance.database.read { db in
                try db.query("SELECT state, last_error FROM jobs WHERE kind = 'media.recording_stored'")
            }
            lastError = rows.first?.text("last_error") ?? ""
            return rows.first?.text("state") == "dead"
        }, "dead-lettered")
        #expect(lastError.contains("does not know call never-started of recording \(stored.recordingID)") && lastError.contains("NOT_FOUND"), "\(lastError)")
        // The log line follows the row's commit.
        #expect(await eventually {
            deployment.media.log.text.contains("job dead-lettered") && deployment.media.log.text.contains("does not know call never-started")
        })
    }
}
