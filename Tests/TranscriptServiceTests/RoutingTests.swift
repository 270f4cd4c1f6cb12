import CallTraceAPI
import CallTraceProto
import CallTraceRPC
import CallTraceTestSupport
import Foundation
import Testing
@testable import TranscriptDomain

typealias Routing = Calltrace_Transcript_V1_Routing

/// A routing with office hours Monday to Friday, 09:00–17:30 in London.
func weekdayRouting(_ destinations: [String], voicemail: Bool = true) -> Routing {
    .with {
        $0.destinations = destinations
        $0.officeHours = (1...5).map { day in .with { $0.weekday = UInt32(day); $0.opensMinute = 540; $0.closesMinute = 1050 } }
        $0.outOfHoursMessage = "We are closed; please leave a message."
        $0.voicemail = voicemail
        $0.whisper = "PI enquiry"
    }
}

/// The first `weekday` (ISO) at `hour`:00 UTC at least two days after `now`: ahead of the test
/// clock, so the number's assignment is in force then.
func upcoming(_ weekday: Int, hour: Int64, after now: Int64) -> Int64 {
    var day = now / 86_400_000 + 2
    while LondonTime.weekday(days: day) != weekday { day += 1 }
    return day * 86_400_000 + hour * 3_600_000
}

@Suite("Routing, office hours and the block list (issue 31)", .serialized)
struct RoutingTests {
    @Test("Routing: set by an admin, listed in full to settings.manage and masked to an analyst, kept when the number moves to another source, gone when it is released; audited without a number")
    func routingLifecycle() async throws {
        let deployment = try await TranscriptDeployment()
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await deployment.organisation()
        let analyst = try await deployment.user(.analyst, in: org, admin: admin)
        try await deployment.assign("0118 496 0000", org: org, admin: admin)
        #expect(try await deployment.numbers().listTrackingNumbers(.with { $0.orgID = org }, options: try bearer(admin))
            .trackingNumbers.first?.hasRouting == false, "no routing before one is set")

        let set = try await deployment.route("01184960000", org: org, admin: admin,
                                             weekdayRouting(["07700 900001", "+44 (0)7700 900002", "07700900001"]))
        #expect(set.routing.destinations == ["+447700900001", "+447700900002"], "E.164, in order, once each")
        #expect(set.routing.ringSeconds == 20, "0 rings for 20 s")
        #expect(set.routing.officeHours.count == 5 && set.routing.voicemail && set.routing.whisper == "PI enquiry")

        func listed(as token: String, history: Bool = false) async throws -> [Calltrace_Transcript_V1_TrackingNumber] {
            try await deployment.numbers().listTrackingNumbers(.with { $0.orgID = org; $0.includeHistory = history }, options: try bearer(token)).trackingNumbers
        }
        #expect(try await listed(as: admin).first?.routing.destinations == ["+447700900001", "+447700900002"])
        let masked = try #require(try await listed(as: analyst).first?.routing)
        #expect(masked.destinations == ["+44 7700 ••••01", "+44 7700 ••••02"], "reports.read alone sees the phones masked")
        #expect(masked.ringSeconds == 20 && masked.officeHours.count == 5)

        // Another source for the same number: a new assignment, the same routing.
        deployment.transcript.clock.advance(by: .seconds(60))
        let moved = try await deployment.assign("01184960000", org: org, admin: admin, source: "Yell", channel: .directory, campaign: "")
        #expect(moved.routing.destinations.count == 2)
        let afterMove = try await listed(as: admin, history: true)
        #expect(afterMove.count == 2)
        #expect(afterMove.first { $0.effectiveUntilUnixMs == 0 }?.routing.destinations == ["+447700900001", "+447700900002"])
        #expect(afterMove.first { $0.effectiveUntilUnixMs != 0 }?.hasRouting == false, "an ended assignment has no routing")

        // Released: the routing goes; the number taken again starts without it.
        _ = try await deployment.numbers().releaseTrackingNumber(.with { $0.orgID = org; $0.number = "01184960000" }, options: try bearer(admin))
        #expect(try await deployment.rows("tracking_number_routing", org: org) == 0)
        #expect(await code { try await deployment.route("01184960000", org: org, admin: admin, weekdayRouting([])) } == .notFound)
        deployment.transcript.clock.advance(by: .seconds(60))
        try await deployment.assign("01184960000", org: org, admin: admin)
        #expect(try await listed(as: admin).first?.hasRouting == false)

        // Another firm cannot route a number it does not hold.
        let (other, otherAdmin) = try await deployment.organisation("Jones LLP")
        #expect(await code { try await deployment.route("01184960000", org: other, admin: otherAdmin, weekdayRouting([])) } == .notFound)

        let events = try await deployment.auditEvents(org: org, admin: admin) { events in
            events.contains { $0.action == "tracking_number.released" }
        }
        let routed = try #require(events.first { $0.action == "tracking_number.routing_set" })
        #expect(routed.resource == "tracking_number:+441184960000" && routed.actor.hasPrefix("user:"))
        #expect(routed.detail.contains("destinations: 0 → 2") && routed.detail.contains("office_hours: always → 5 openings")
                && routed.detail.contains("voicemail on"), "\(routed.detail)")
        let written = try deployment.everythingTranscriptWrote()
        for number in ["7700900001", "7700 900001", "7700900002"] {
            #expect(!written.contains(number), "a destination is never in the database or the log in clear")
            #expect(!events.contains { $0.detail.contains(number) || $0.resource.contains(number) })
        }
    }

    @Test("Routing refusals: more than 5 phones, a number abroad, premium-rate or personal, or the tracking number itself, ring time, office hours, long or multi-line messages; nothing changes and no error repeats a number")
    func routingRefusals() async throws {
        let deployment = try await TranscriptDeployment()
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await deployment.organisation()
        try await deployment.assign("0118 496 0000", org: org, admin: admin)
        let good = weekdayRouting(["07700 900001"])
        try await deployment.route("01184960000", org: org, admin: admin, good)
        let refused: [(String, (inout Routing) -> Void)] = [
            ("six phones", { $0.destinations = (1...6).map { "07700 90000\($0)" } }),
            ("not a number", { $0.destinations = ["07700 9OO123"] }),
            ("a number abroad", { $0.destinations = ["+33 1 23 45 67 89"] }),
            ("the tracking number itself", { $0.destinations = ["0118 496 0000"] }),
            ("a premium-rate number", { $0.destinations = ["0909 879 0000"] }),
            ("a personal number", { $0.destinations = ["070 4007 7700"] }),
            ("a service number that charges the caller", { $0.destinations = ["0871 000 7700"] }),
            ("ringing 4 s", { $0.ringSeconds = 4 }),
            ("ringing 61 s", { $0.ringSeconds = 61 }),
            ("weekday 0", { $0.officeHours = [.with { $0.weekday = 0; $0.opensMinute = 540; $0.closesMinute = 1050 }] }),
            ("weekday 8", { $0.officeHours = [.with { $0.weekday = 8; $0.opensMinute = 540; $0.closesMinute = 1050 }] }),
            ("opening as it closes", { $0.officeHours = [.with { $0.weekday = 1; $0.opensMinute = 540; $0.closesMinute = 540 }] }),
            ("closing after midnight", { $0.officeHours = [.with { $0.weekday = 1; $0.opensMinute = 540; $0.closesMinute = 1441 }] }),
            ("22 openings", { $0.officeHours = Array(repeating: .with { $0.weekday = 1; $0.opensMinute = 540; $0.closesMinute = 600 }, count: 22) }),
            ("a 501-character message", { $0.outOfHoursMessage = String(repeating: "a", count: 501) }),
            ("a 201-character whisper", { $0.whisper = String(repeating: "a", count: 201) }),
            ("a whisper of two lines", { $0.whisper = "Google\nAds" }),
            ("an escape sequence", { $0.outOfHoursMessage = "closed \u{1B}[31m" }),
        ]
        for (name, change) in refused {
            var routing = good
            change(&routing)
            let error = await #expect(throws: RPCError.self, "\(name)") { try await deployment.route("01184960000", org: org, admin: admin, routing) }
            #expect(error?.code == .invalidArgument, "\(name): \(String(describing: error))")
            #expect(error?.message.contains("7700") == false && error?.message.contains("4960000") == false, "\(name): \(String(describing: error?.message))")
        }
        // The edges are accepted.
        var edges = good
        edges.destinations = (1...5).map { "07700 90000\($0)" }
        edges.ringSeconds = 60
        edges.officeHours = [.with { $0.weekday = 7; $0.opensMinute = 0; $0.closesMinute = 1440 }]
        edges.whisper = String(repeating: "w", count: 200)
        edges.outOfHoursMessage = String(repeating: "m", count: 500)
        #expect(try await deployment.route("01184960000", org: org, admin: admin, edges).routing.destinations.count == 5)
        let member = try await deployment.user(.member, in: org, admin: admin)
        #expect(await code { try await deployment.route("01184960000", org: org, admin: member, good) } == .permissionDenied, "a member does not route")
        let kept = try await deployment.numbers().listTrackingNumbers(.with { $0.orgID = org }, options: try bearer(admin)).trackingNumbers.first?.routing
        #expect(kept?.ringSeconds == 60 && kept?.destinations.count == 5, "the refusals changed nothing")
    }

    @Test("StartCall answers source, routing and office_open at started_at; a suppressed caller is connected unrecorded; a blocked caller is rejected and nothing is stored, even with compliance down; retries answer the same")
    func startCallAnswers() async throws {
        let deployment = try await TranscriptDeployment()
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await deployment.organisation()
        try await deployment.assign("0118 496 0000", org: org, admin: admin, source: "Google Ads – personal injury")
        try await deployment.assign("0118 496 0001", org: org, admin: admin, source: "Website")
        try await deployment.route("01184960000", org: org, admin: admin, weekdayRouting(["07700 900001", "07700 900002"]))
        let now = deployment.transcript.clock.nowUnixMs
        // Noon UTC is 12:00 or 13:00 in London, 20:00 UTC is 20:00 or 21:00: the test holds in either season.
        let wednesdayNoon = upcoming(3, hour: 12, after: now), wednesdayEvening = upcoming(3, hour: 20, after: now)
        let sundayNoon = upcoming(7, hour: 12, after: now)

        let open = try await deployment.start("open-1", tracking: "01184960000", caller: "07700 900123", at: wednesdayNoon)
        #expect(open.record && open.orgID == org && open.source == "Google Ads – personal injury" && !open.blocked)
        #expect(open.officeOpen && open.routing.destinations == ["+447700900001", "+447700900002"] && open.routing.ringSeconds == 20)
        #expect(open.routing.voicemail && open.routing.whisper == "PI enquiry" && open.routing.officeHours.count == 5)
        #expect(try await deployment.start("open-1", tracking: "01184960000", caller: "07700900123", at: wednesdayNoon) == open, "a retry answers the same")
        #expect(try await deployment.start("evening-1", tracking: "01184960000", caller: "07700 900123", at: wednesdayEvening).officeOpen == false)
        let sunday = try await deployment.start("sunday-1", tracking: "01184960000", caller: "07700 900123", at: sundayNoon)
        #expect(!sunday.officeOpen && sunday.record && sunday.routing.outOfHoursMessage == "We are closed; please leave a message.")

        // A number without routing: nobody to ring, always open. A callback: no routing.
        let unrouted = try await deployment.start("web-1", tracking: "01184960001", caller: "07700 900123", at: sundayNoon)
        #expect(unrouted.source == "Website" && unrouted.officeOpen && unrouted.hasRouting && unrouted.routing.destinations.isEmpty
                && unrouted.routing.ringSeconds == 20)
        let callback = try await deployment.start("out-1", tracking: "01184960000", caller: "07700 900123", at: wednesdayNoon, direction: .outbound)
        #expect(callback.record && callback.source == "Google Ads – personal injury" && !callback.hasRouting && !callback.officeOpen)

        // A caller who objected: connected as routed, not recorded.
        _ = try await deployment.suppressions().addSuppression(.with { $0.orgID = org; $0.phoneNumber = "07700 900456"; $0.reason = "objection" },
                                                                options: try bearer(admin))
        let suppressed = try await deployment.start("sup-1", tracking: "01184960000", caller: "07700900456", at: wednesdayNoon)
        #expect(!suppressed.record && !suppressed.blocked && suppressed.notice.isEmpty && suppressed.officeOpen && suppressed.routing.destinations.count == 2)

        // A blocked caller: rejected, and nothing of the attempt is kept.
        _ = try await deployment.blockList().blockCaller(.with { $0.orgID = org; $0.phoneNumber = "07700 900666"; $0.reason = "nuisance" },
                                                         options: try bearer(admin))
        let keyedObjects = { try deployment.transcript.instance.keyStore.sync { db in try db.query("SELECT object_id FROM object_keys").count } }
        let (callsBefore, keysBefore) = (try await deployment.rows("calls", org: org), try keyedObjects())
        let blocked = try await deployment.start("blocked-1", tracking: "01184960000", caller: "+44 7700 900666", at: wednesdayNoon)
        #expect(blocked.blocked && !blocked.record && blocked.notice.isEmpty && blocked.orgID == org && !blocked.hasRouting, "\(blocked)")
        #expect(try await deployment.start("blocked-1", tracking: "01184960000", caller: "07700900666", at: wednesdayNoon) == blocked,
                "a retry answers the same")
        #expect(try await deployment.rows("calls", org: org) == callsBefore && (try keyedObjects()) == keysBefore, "no call row, no key")
        // A call of theirs stored before the block is answered as it was.
        _ = try await deployment.blockList().blockCaller(.with { $0.orgID = org; $0.phoneNumber = "07700 900123" }, options: try bearer(admin))
        #expect(try await deployment.start("open-1", tracking: "01184960000", caller: "07700900123", at: wednesdayNoon) == open)
        // Blocking is for inbound calls: the firm may still call them back.
        #expect(!(try await deployment.start("out-2", tracking: "01184960000", caller: "07700900666", direction: .outbound)).blocked)

        // No audit event for the blocked attempt: transcript forwards in order, so once a later call's is there, any would be.
        try await deployment.start("after-1", tracking: "01184960001", caller: "07700 900789")
        let events = try await deployment.auditEvents(org: org, admin: admin) { $0.contains { $0.resource == "call:after-1" } }
        #expect(!events.contains { $0.resource == "call:blocked-1" })

        // Compliance is not asked for a blocked caller: with it down, the answer is the same.
        await deployment.compliance.stop()
        #expect(try await deployment.start("blocked-2", tracking: "01184960000", caller: "07700900666", at: wednesdayNoon).blocked)
        #expect(await code { try await deployment.start("down-1", tracking: "01184960000", caller: "07700900999", at: wednesdayNoon) } == .unavailable)
    }

    @Test("Block list: add, remove and list are idempotent, numbers masked and sealed, reasons checked, audited without the number; gone with the organisation")
    func blockList() async throws {
        let deployment = try await TranscriptDeployment()
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await deployment.organisation()
        let list = try deployment.blockList(), options = try bearer(admin)
        func listed() async throws -> [Calltrace_Transcript_V1_BlockedCaller] {
            try await list.listBlockedCallers(.with { $0.orgID = org }, options: options).blockedCallers
        }
        #expect(try await listed().isEmpty)
        _ = try await list.blockCaller(.with { $0.orgID = org; $0.phoneNumber = "07700 900666"; $0.reason = "repeated nuisance calls" }, options: options)
        _ = try await list.blockCaller(.with { $0.orgID = org; $0.phoneNumber = "+44 7700 900666"; $0.reason = "again" }, options: options)
        let one = try await listed()
        #expect(one.map(\.numberMasked) == ["+44 7700 ••••66"] && one.first?.reason == "repeated nuisance calls", "once, whatever the format")
        deployment.transcript.clock.advance(by: .seconds(1))
        _ = try await list.blockCaller(.with { $0.orgID = org; $0.phoneNumber = "0118 496 0999" }, options: options)
        #expect(try await listed().map(\.numberMasked) == ["+44 1184 ••••99", "+44 7700 ••••66"], "newest first")

        for (name, number, reason) in [("a long reason", "07700900777", String(repeating: "r", count: 201)), ("two lines", "07700900777", "a\nb"),
                                       ("not a number", "07700 9OO777", "")] {
            let error = await #expect(throws: RPCError.self, "\(name)") {
                _ = try await list.blockCaller(.with { $0.orgID = org; $0.phoneNumber = number; $0.reason = reason }, options: options)
            }
            #expect(error?.code == .invalidArgument && error?.message.contains("7700") == false, "\(name): \(String(describing: error))")
        }
        _ = try await list.unblockCaller(.with { $0.orgID = org; $0.phoneNumber = "(07700) 900-666" }, options: options)
        _ = try await list.unblockCaller(.with { $0.orgID = org; $0.phoneNumber = "07700 900666" }, options: options)
        #expect(try await listed().map(\.numberMasked) == ["+44 1184 ••••99"])

        let events = try await deployment.auditEvents(org: org, admin: admin) { $0.contains { $0.action == "caller.unblocked" } }
        #expect(events.filter { $0.action == "caller.blocked" }.count == 3 && events.filter { $0.action == "caller.unblocked" }.count == 1,
                "unblocking a caller not on the list is no event: \(events.map(\.action))")
        #expect(events.filter { $0.action.hasPrefix("caller.") }.allSatisfy { $0.resource.hasPrefix("blocked_caller:") && !$0.resource.contains("7700") })
        #expect(!(try deployment.everythingTranscriptWrote()).contains("7700900666"))

        // Offboarding: compliance purges the organisation; its block list and routing go with it.
        try await deployment.assign("0118 496 0000", org: org, admin: admin)
        try await deployment.route("01184960000", org: org, admin: admin, weekdayRouting(["07700 900001"]))
        let purged = try await deployment.calls(as: TemporaryPKI.identity("service", "compliance")).purgeOrganisation(.with { $0.orgID = org })
        #expect(purged.trackingNumbersPurged == 1)
        #expect(try await deployment.rows("blocked_callers", org: org) == 0)
        #expect(try await deployment.rows("tracking_number_routing", org: org) == 0)
        let purgeEvent = try await deployment.auditEvents(org: org, admin: admin) { $0.contains { $0.action == "organisation.purged" } }
            .first { $0.action == "organisation.purged" }
        #expect(purgeEvent?.detail.contains("blocked_callers=1") == true, "\(String(describing: purgeEvent?.detail))")
    }
}
