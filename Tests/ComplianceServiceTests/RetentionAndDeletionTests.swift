import CallTraceAPI
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceTestSupport
import Foundation
import Testing

@Suite("Compliance: retention (P9) and deletion across services (P10)", .serialized)
struct RetentionAndDeletionTests {
    static let day: Int64 = 86_400_000

    @Test("A policy is checked, runs on demand and daily, purges each kind by its own cutoff in its own organisation only, and leaves a receipt and an audit event")
    func retention() async throws {
        let deployment = try await CallDataDeployment()
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await deployment.organisation(tracking: "01184960000")
        let (other, otherAdmin) = try await deployment.organisation("Jones LLP", tracking: "01184960001")
        let t0 = CallDataDeployment.start, hour: Int64 = 3_600_000
        // The old call and its recording are from t0; the new ones from 390 days later.
        let oldRecording = try await deployment.call("old", org: org, tracking: "01184960000", caller: "07700 900123", at: t0 + hour)
        let otherRecording = try await deployment.call("theirs", org: other, tracking: "01184960001", caller: "07700 900125", at: t0 + hour)
        deployment.clock.advance(by: .days(390))
        // The jump made the daily sweep due: it runs before any policy exists, so it cannot start
        // a run with this moment's cutoffs that the run asked for below would then answer.
        #expect(try await eventually { try await deployment.retentionSweepCaughtUp() })
        let newRecording = try await deployment.call("new", org: org, tracking: "01184960000", caller: "07700 900124", at: t0 + 390 * Self.day)
        let retention = try deployment.retention()

        #expect(try await retention.getRetentionPolicy(.with { $0.orgID = org }, options: try bearer(admin)).policy.callRecordsMonths == 0,
                "kept while active until a policy is set")
        for (recordings, transcripts, calls, why) in [(0, 12, 24, "recordings kept for ever while call records go"), (36, 12, 24, "recordings outliving their calls"),
                                                       (12, 12, 241, "more than 240 months")] {
            let refused = await code {
                _ = try await retention.setRetentionPolicy(.with {
                    $0.orgID = org
                    $0.policy = .with { $0.recordingsMonths = UInt32(recordings); $0.transcriptsMonths = UInt32(transcripts); $0.callRecordsMonths = UInt32(calls) }
                }, options: try bearer(admin))
            }
            #expect(refused == .invalidArgument, "\(why)")
        }
        let set = try await retention.setRetentionPolicy(.with {
            $0.orgID = org; $0.policy = .with { $0.recordingsMonths = 12; $0.transcriptsMonths = 12; $0.callRecordsMonths = 24 }
        }, options: try bearer(admin)).policy
        #expect(set.recordingsMonths == 12 && set.callRecordsMonths == 24 && set.updatedBy.hasPrefix("user:"))

        // Run on demand now, 390 days after t0 (the sweep caught up above, and the clock has not
        // moved since, so no scheduled run starts beside it): the old recording and transcript
        // are past 12 months; no call is past 24.
        let recordingBytes = UInt64(wavFile(seconds: 1).count)
        let run = try await retention.runRetention(.with { $0.orgID = org }, options: try bearer(admin)).run
        // 12 and 24 calendar months before 2027-11-27T10:00Z.
        #expect((run.recordingsBeforeUnixMs, run.transcriptsBeforeUnixMs, run.callRecordsBeforeUnixMs)
                == (1_795_773_600_000, 1_795_773_600_000, 1_764_237_600_000))
        #expect(run.requestedBy.hasPrefix("user:") && run.startedAtUnixMs == t0 + 390 * Self.day)
        var receipts: [Calltrace_Compliance_V1_RetentionRun] = []
        #expect(try await eventually {
            receipts = try await retention.listRetentionRuns(.with { $0.orgID = org }, options: try bearer(admin)).runs
            return receipts.count == 1 && receipts[0].state == .finished
        }, "\(receipts)")
        #expect(receipts.map(\.runID) == [run.runID])
        #expect(receipts.map { [UInt64($0.recordingsPurged), $0.recordingBytesPurged, UInt64($0.transcriptsPurged), UInt64($0.callRecordsPurged)] }
                == [[1, recordingBytes, 1, 0]])
        #expect(try await deployment.exists(call: "old", recording: oldRecording, org: org, admin: admin) == (true, false))
        #expect(try await deployment.hasTranscript("old", org: org, admin: admin) == false)
        #expect(try await deployment.exists(call: "new", recording: newRecording, org: org, admin: admin) == (true, true))

        // 370 days later (2028-12-01, 25 months after t0) the daily sweep runs the policy itself:
        // the new recording and transcript are past 12 months now, and the old call past 24.
        deployment.clock.advance(by: .days(370))
        #expect(try await eventually {
            receipts = try await retention.listRetentionRuns(.with { $0.orgID = org }, options: try bearer(admin)).runs
            return try await deployment.retentionSweepCaughtUp() && receipts.count == 2 && receipts.allSatisfy { $0.state == .finished }
        }, "\(receipts)")
        let scheduled = receipts[0]
        #expect(receipts.map(\.runID) == [scheduled.runID, run.runID], "newest first")
        #expect(scheduled.requestedBy == "schedule" && scheduled.startedAtUnixMs == t0 + 760 * Self.day)
        // 12 and 24 calendar months before 2028-12-01T10:00Z.
        #expect((scheduled.recordingsBeforeUnixMs, scheduled.transcriptsBeforeUnixMs, scheduled.callRecordsBeforeUnixMs)
                == (1_827_655_200_000, 1_827_655_200_000, 1_796_119_200_000))
        #expect([UInt64(scheduled.recordingsPurged), scheduled.recordingBytesPurged, UInt64(scheduled.transcriptsPurged), UInt64(scheduled.callRecordsPurged)]
                == [1, recordingBytes, 1, 1])
        #expect(try await deployment.exists(call: "old", recording: oldRecording, org: org, admin: admin) == (false, false))
        #expect(try await deployment.exists(call: "new", recording: newRecording, org: org, admin: admin) == (true, false))
        #expect(try await deployment.hasTranscript("new", org: org, admin: admin) == false, "the call record stays; its transcript goes")
        #expect(try await deployment.exists(call: "theirs", recording: otherRecording, org: other, admin: otherAdmin) == (true, true),
                "another organisation's data is untouched")
        // Compliance's own events reach its trail through its outbox, a moment later: one per receipt, saying what it says.
        var trail: [Calltrace_Compliance_V1_ChainedAuditEvent] = []
        #expect(try await eventually {
            trail = try await Calltrace_Compliance_V1_AuditServiceClient(try deployment.compliance.client())
                .listAuditEvents(.with { $0.orgID = org; $0.action = "retention.run" }, options: try bearer(admin)).events
            return trail.count == 2
        }, "one audit event per receipt")
        #expect(trail.map { [$0.event.actor, $0.event.resource, $0.event.detail] } == [
            ["service:compliance", "retention_run:\(scheduled.runID)", "recordings=1 (\(recordingBytes) bytes); transcripts=1; call_records=1"],
            [run.requestedBy, "retention_run:\(run.runID)", "recordings=1 (\(recordingBytes) bytes); transcripts=1; call_records=0"],
        ])

        // The daily run, a day later: at 02:00 London time, for every organisation whose policy
        // removes something, even when nothing is old enough yet.
        deployment.clock.advance(by: .days(1))
        #expect(try await eventually {
            receipts = try await retention.listRetentionRuns(.with { $0.orgID = org }, options: try bearer(admin)).runs
            return try await deployment.retentionSweepCaughtUp() && receipts.count == 3 && receipts.allSatisfy { $0.state == .finished }
        }, "the scheduled run happened and finished: \(receipts)")
        let nextDay = receipts[0]
        #expect(nextDay.requestedBy == "schedule" && nextDay.startedAtUnixMs == t0 + 761 * Self.day)
        #expect([UInt64(nextDay.recordingsPurged), nextDay.recordingBytesPurged, UInt64(nextDay.transcriptsPurged), UInt64(nextDay.callRecordsPurged)]
                == [0, 0, 0, 0])
        #expect(try await retention.listRetentionRuns(.with { $0.orgID = other }, options: try bearer(otherAdmin)).runs.isEmpty,
                "an organisation without a policy is not run")
    }

    @Test("DeleteCall removes the call from transcript and its recordings from media; with media down it waits, survives compliance restarting, and finishes when media is back")
    func deleteCall() async throws {
        let deployment = try await CallDataDeployment()
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await deployment.organisation(tracking: "01184960000")
        let t0 = CallDataDeployment.start
        let first = try await deployment.call("call-1", org: org, tracking: "01184960000", caller: "07700 900123", at: t0 + 60_000)
        let second = try await deployment.call("call-2", org: org, tracking: "01184960000", caller: "07700 900123", at: t0 + 60_000)
        let deletions = try deployment.deletions()

        let asked = try await deletions.deleteCall(.with { $0.orgID = org; $0.callID = "call-1"; $0.reason = "client asked" },
                                                   options: try bearer(admin)).deletion
        #expect(asked.state == .pending && asked.requestedBy.hasPrefix("user:"))
        var deletion = asked
        #expect(try await eventually {
            deletion = try await deletions.getDeletion(.with { $0.orgID = org; $0.deletionID = asked.deletionID }, options: try bearer(admin)).deletion
            return deletion.state == .done
        })
        #expect(deletion.recordingsDeleted == 1 && deletion.transcriptConfirmedAtUnixMs > 0 && deletion.mediaConfirmedAtUnixMs > 0)
        #expect(try await deployment.exists(call: "call-1", recording: first, org: org, admin: admin) == (false, false))
        // A recording for the deleted call is refused: nothing of it comes back out of its deletion's reach.
        let file = wavFile(seconds: 1)
        let late = await code {
            _ = try await deployment.recordings(as: TemporaryPKI.telephony).uploadRecording { writer in
                try await writer.send(.with {
                    $0.header = .with { $0.orgID = org; $0.callID = "call-1"; $0.format = .wavPcm16; $0.sampleRateHz = 8000; $0.channels = 1; $0.sha256 = sha256(file) }
                })
                try await writer.send(.with { $0.chunk = file })
            }
        }
        #expect(late == .notFound, "transcript no longer knows the call, so media takes nothing for it")
        // Once a deletion finished, asking again deletes again (it used to answer the old one, so
        // a recording stored since could never be deleted).
        let again = try await deletions.deleteCall(.with { $0.orgID = org; $0.callID = "call-1" }, options: try bearer(admin)).deletion
        #expect(again.deletionID != asked.deletionID, "a new deletion")
        #expect(try await eventually {
            try await deletions.getDeletion(.with { $0.orgID = org; $0.deletionID = again.deletionID }, options: try bearer(admin)).deletion.state == .done
        })

        // Media is down: transcript confirms at once, media's part waits.
        await deployment.stop("media")
        let waiting = try await deletions.deleteCall(.with { $0.orgID = org; $0.callID = "call-2" }, options: try bearer(admin)).deletion
        #expect(try await eventually {
            let now = try await deletions.getDeletion(.with { $0.orgID = org; $0.deletionID = waiting.deletionID }, options: try bearer(admin)).deletion
            return now.transcriptConfirmedAtUnixMs > 0 && now.attempts >= 1 && !now.lastError.isEmpty
        }, "hidden in transcript at once; the failed attempt is visible")
        // Compliance restarts meanwhile; then media comes back.
        await deployment.stop("compliance")
        try await deployment.restart("compliance")
        try await deployment.restart("media")
        #expect(try await eventually {
            deployment.clock.advance(by: .seconds(60))  // past any backoff
            return try await deployment.deletions().getDeletion(.with { $0.orgID = org; $0.deletionID = waiting.deletionID },
                                                                options: try bearer(admin)).deletion.state == .done
        })
        #expect(try await deployment.exists(call: "call-2", recording: second, org: org, admin: admin) == (false, false))
        let listed = try await deployment.deletions().listDeletions(.with { $0.orgID = org }, options: try bearer(admin)).deletions
        #expect(listed.map(\.callID).sorted() == ["call-1", "call-1", "call-2"] && listed.allSatisfy { $0.state == .done })
    }

    @Test("DeleteCall naming another firm's call is refused as not found, exactly as a made-up id, before anything is queued; the firm's own call is still deleted")
    func deleteAnotherFirmsCall() async throws {
        let deployment = try await CallDataDeployment()
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await deployment.organisation(tracking: "01184960000")
        let (other, otherAdmin) = try await deployment.organisation("Jones LLP", tracking: "01184960001")
        let t0 = CallDataDeployment.start
        let theirs = try await deployment.call("call-a", org: org, tracking: "01184960000", caller: "07700 900123", at: t0 + 60_000)
        _ = try await deployment.call("call-b", org: other, tracking: "01184960001", caller: "07700 900124", at: t0 + 60_000)
        let deletions = try deployment.deletions()

        var answers: [String] = []
        for id in ["call-a", "call-made-up"] {
            do {
                _ = try await deletions.deleteCall(.with { $0.orgID = other; $0.callID = id }, options: try bearer(otherAdmin))
                answers.append("ok")
            } catch let error as RPCError {
                answers.append("\(error.code) \(error.message.replacingOccurrences(of: id, with: "<id>"))")
            }
        }
        #expect(answers.count == 2 && answers[0] == answers[1] && answers[0].hasPrefix("NOT_FOUND"), "\(answers)")
        #expect(try await deletions.listDeletions(.with { $0.orgID = other }, options: try bearer(otherAdmin)).deletions.isEmpty, "nothing queued")
        #expect(try await deployment.exists(call: "call-a", recording: theirs, org: org, admin: admin) == (true, true), "the other firm's call is untouched")

        // The firm's own call goes as before.
        let own = try await deletions.deleteCall(.with { $0.orgID = other; $0.callID = "call-b" }, options: try bearer(otherAdmin)).deletion
        #expect(try await eventually {
            try await deletions.getDeletion(.with { $0.orgID = other; $0.deletionID = own.deletionID }, options: try bearer(otherAdmin)).deletion.state == .done
        })
    }
}
