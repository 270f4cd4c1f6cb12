import CallTraceAPI
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceTestSupport
import Foundation
import Testing

/// `ListCallEvents`: the feed of the web gateway's outgoing webhooks (issue 30).
@Suite("Call events", .serialized)
struct CallEventTests {
    typealias Kind = Calltrace_Transcript_V1_CallEventKind

    @Test("A call's completion and its transcript are events, in order, written with them; a retried completion is not another; paging and the cursor; another firm sees none; events go with their call and never reuse a number")
    func feed() async throws {
        let d = try await TranscriptDeployment()
        defer { Task { await d.stop() } }
        let (org, admin) = try await d.organisation()
        let (other, otherAdmin) = try await d.organisation("Jones LLP")
        let analyst = try await d.user(.analyst, in: org, admin: admin)
        try await d.assign("0118 496 0000", org: org, admin: admin)
        try await d.assign("0118 496 0001", org: other, admin: otherAdmin)
        let telephony = try d.calls(as: TemporaryPKI.telephony)
        func complete(_ call: String, in org: String = org) async throws {
            _ = try await telephony.completeCall(.with { $0.orgID = org; $0.callID = call; $0.outcome = .answered; $0.durationMs = 61_000 })
        }
        func events(after: UInt64 = 0, limit: UInt32 = 0, token: String = admin, in org: String = org) async throws
            -> Calltrace_Transcript_V1_ListCallEventsResponse {
            try await d.calls().listCallEvents(.with { $0.orgID = org; $0.afterSequence = after; $0.limit = limit }, options: try bearer(token))
        }

        #expect(try await events().events.isEmpty)
        try await d.start("call-1", tracking: "01184960000", caller: "07700900123")
        #expect(try await events().events.isEmpty, "a call that started is no event yet")
        try await complete("call-1")
        try await complete("call-1")  // the gateway's retry
        _ = try await d.transcripts(as: TemporaryPKI.telephony).submitTranscript(.with {
            $0.orgID = org; $0.callID = "call-1"; $0.segments = [.with { $0.speaker = "caller"; $0.text = "I need advice about my lease." }]
        })
        try await d.start("call-2", tracking: "01184960000", caller: "07700900124")
        try await complete("call-2")
        try await d.start("call-9", tracking: "01184960001", caller: "07700900125")
        try await complete("call-9", in: other)

        let all = try await events(token: analyst)  // reports.read is enough
        #expect(all.events.map(\.sequence) == [1, 2, 3])
        #expect(all.events.map(\.kind) == [.callCompleted, .transcriptReady, .callCompleted])
        #expect(all.events.map(\.callID) == ["call-1", "call-1", "call-2"])
        #expect(all.events.allSatisfy { $0.occurredAtUnixMs == d.transcript.clock.nowUnixMs })
        #expect(all.nextAfterSequence == 3 && !all.more && all.latestSequence == 3)
        // Paged: two, then the rest from the cursor, then nothing new (the cursor stays).
        let first = try await events(limit: 2)
        #expect(first.events.map(\.sequence) == [1, 2] && first.more && first.nextAfterSequence == 2)
        let rest = try await events(after: first.nextAfterSequence, limit: 2)
        #expect(rest.events.map(\.sequence) == [3] && !rest.more)
        let none = try await events(after: 3)
        #expect(none.events.isEmpty && none.nextAfterSequence == 3)
        // The other firm's feed is its own, numbered from 1; neither firm's token reads the other's.
        #expect(try await events(token: otherAdmin, in: other).events.map(\.callID) == ["call-9"])
        #expect(await code { _ = try await events(token: otherAdmin) } == .permissionDenied)

        // A deleted call's events go with it (compliance's deletion), and the next event's number is new.
        _ = try await d.calls(as: TemporaryPKI.identity("service", "compliance")).deleteCall(.with { $0.orgID = org; $0.callID = "call-2" })
        let afterDeletion = try await events()
        #expect(afterDeletion.events.map(\.callID) == ["call-1", "call-1"] && afterDeletion.latestSequence == 3)
        try await d.start("call-3", tracking: "01184960000", caller: "07700900126")
        try await complete("call-3")
        #expect(try await events(after: 2).events.map(\.sequence) == [4], "sequence 3 is never given again")
        // Retention's purge and the firm's offboarding leave no event behind.
        _ = try await d.calls(as: TemporaryPKI.identity("service", "compliance")).purgeCalls(.with {
            $0.orgID = org; $0.startedBeforeUnixMs = d.transcript.clock.nowUnixMs + 1
        })
        #expect(try await events().events.isEmpty)
        _ = try await d.calls(as: TemporaryPKI.identity("service", "compliance")).purgeOrganisation(.with { $0.orgID = other })
        let left = try await d.transcript.instance.database.read { db in try db.query("SELECT org_id FROM call_events").count }
        #expect(left == 0)
    }

    @Test("ListCallEvents checks what it is given: a cursor no service gave is refused, a limit past 500 is cut to 500")
    func badInput() async throws {
        let d = try await TranscriptDeployment()
        defer { Task { await d.stop() } }
        let (org, admin) = try await d.organisation()
        #expect(await code {
            _ = try await d.calls().listCallEvents(.with { $0.orgID = org; $0.afterSequence = .max }, options: try bearer(admin))
        } == .invalidArgument)
        let page = try await d.calls().listCallEvents(.with { $0.orgID = org; $0.limit = 10_000 }, options: try bearer(admin))
        #expect(page.events.isEmpty && page.nextAfterSequence == 0)
    }
}
