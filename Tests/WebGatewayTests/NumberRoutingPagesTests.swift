import CallTraceAPI
import CallTraceDeploymentSupport
import CallTraceProto
import CallTraceTestSupport
import Foundation
import Testing
@testable import WebGateway

/// Routing per tracking number and the firm's block list (issue 31) over real HTTP, with the
/// four services behind: what the form saves is what transcript serves, transcript's refusals
/// come back on the form with what was typed and save nothing, analysts read the routing but
/// change nothing, forms without their token are refused.
@Suite(.serialized) struct NumberRoutingPagesTests {
    static let tracking = "+441184960655"

    /// A firm with `tracking` for "Radio advert", its admin's token and a signed-in admin and analyst.
    func firm(_ d: WebDeployment) async throws -> (org: String, admin: String, owner: WebClient, analyst: WebClient) {
        let (org, admin) = try await d.firm()
        _ = try await numbers(d).assignTrackingNumber(.with {
            $0.orgID = org; $0.number = Self.tracking; $0.source = "Radio advert"; $0.channel = .other
        }, options: try bearer(admin))
        return (org, admin, try await d.signedIn(.admin, org: org, admin: admin), try await d.signedIn(.analyst, org: org, admin: admin))
    }

    func numbers(_ d: WebDeployment) throws -> Calltrace_Transcript_V1_TrackingNumberServiceClient {
        .init(try d.services.calls.transcript.client())
    }

    /// The number's routing as transcript serves it to the admin.
    func served(_ d: WebDeployment, org: String, admin: String) async throws -> Calltrace_Transcript_V1_TrackingNumber? {
        try await numbers(d).listTrackingNumbers(.with { $0.orgID = org }, options: try bearer(admin)).trackingNumbers.first { $0.number == Self.tracking }
    }

    static func routingForm(csrf: String, destinations: [String], ring: String = "25", hours: String = "set",
                            whisper: String = "Radio enquiry") -> [(String, String)] {
        var form = [("csrf", csrf), ("number", tracking), ("ring", ring), ("hours", hours),
                    ("out-of-hours", "We are closed.\nPlease leave a message."), ("voicemail", "on"), ("whisper", whisper)]
        form += destinations.enumerated().map { ("destination-\($0.offset + 1)", $0.element) }
        form += (1...5).flatMap { [("opens-\($0)", "09:00"), ("closes-\($0)", "17:30")] }
        form += [("opens-6", "10:00"), ("closes-6", "00:00"), ("opens-7", ""), ("closes-7", "")]
        return form
    }

    @Test func routingSavedThroughTheFormIsWhatTranscriptServes() async throws {
        let d = try await WebDeployment()
        let (org, admin, owner, analyst) = try await firm(d)
        defer { owner.close(); analyst.close() }

        let list = try await owner.get("/numbers")
        #expect(list.text.contains("href=\"/numbers/routing?number=%2B441184960655\"") && list.text.contains("Not set up yet: nobody is rung"))
        let form = try await owner.get("/numbers/routing?number=0118%20496%200655")
        #expect(form.status == 200 && form.text.contains("Routing for 0118 496 0655") && form.text.contains("“Radio advert enquiry”"))
        let csrf = try #require(form.csrf)
        let saved = try await owner.post("/numbers/routing", form: Self.routingForm(csrf: csrf, destinations: ["020 7946 0000", "07700 900123"]))
        #expect(saved.status == 303 && saved.header("Location") == "/numbers?done=routed")

        let routing = try #require(try await served(d, org: org, admin: admin)).routing
        #expect(routing.destinations == ["+442079460000", "+447700900123"])
        #expect(routing.ringSeconds == 25 && routing.voicemail && routing.whisper == "Radio enquiry")
        #expect(routing.outOfHoursMessage == "We are closed. Please leave a message.", "the textarea's lines are said as one")
        #expect(routing.officeHours.map { [$0.weekday, $0.opensMinute, $0.closesMinute] }
                == (UInt32(1)...5).map { [$0, 540, 1050] } + [[6, 600, 1440]], "Monday to Friday 09:00–17:30, Saturday 10:00 to midnight, Sunday closed")

        let shown = try await owner.get("/numbers?done=routed")
        #expect(shown.text.contains("Routing saved."))
        #expect(shown.text.contains("Rings 020 7946 0000 and 07700 900123 for 25 seconds"))
        #expect(shown.text.contains("Open Mon–Fri 09:00–17:30, Sat 10:00–24:00 (UK time)") && shown.text.contains("Voicemail on"))
        #expect(shown.text.contains("Whisper: “Radio enquiry”"))
        let again = try await owner.get("/numbers/routing?number=%2B441184960655")
        #expect(again.text.contains("value=\"020 7946 0000\"") && again.text.contains("id=\"closes-6\" name=\"closes-6\" type=\"time\" value=\"00:00\""))

        // Always open again: the office hours go, the rest stays as sent.
        #expect(try await owner.post("/numbers/routing", form: Self.routingForm(csrf: csrf, destinations: ["020 7946 0000"], hours: "always")).status == 303)
        let always = try #require(try await served(d, org: org, admin: admin)).routing
        #expect(always.officeHours.isEmpty && always.destinations == ["+442079460000"])
        #expect(try await owner.get("/numbers").text.contains("Always open"))

        // The analyst reads the routing, phones masked, and no link to change it.
        let read = try await analyst.get("/numbers")
        #expect(read.status == 200 && read.text.contains("Rings 02079 ••••00 for 25 seconds"))
        #expect(!read.text.contains("020 7946 0000") && !read.text.contains("/numbers/routing"))
        await d.stop()
    }

    @Test(arguments: [
        (["09063 123456"], "Phone 1 is a premium-rate, personal or pager number", "destination-1"),
        (["020 7946 0000", "0870 123 4567"], "Phone 2 is a premium-rate, personal or pager number", "destination-2"),
        (["+33 1 23 45 67 89"], "Phone 1 is not a UK number", "destination-1"),
        (["0118 496 0655"], "Phone 1 is the tracking number itself", "destination-1"),
    ])
    func aRefusedRoutingIsShownOnTheFormWithWhatWasTypedAndSavesNothing(destinations: [String], refusal: String, field: String) async throws {
        let d = try await WebDeployment()
        let (org, admin, owner, analyst) = try await firm(d)
        defer { owner.close(); analyst.close() }

        let csrf = try #require(try await owner.get("/numbers/routing?number=%2B441184960655").csrf)
        let refused = try await owner.post("/numbers/routing", form: Self.routingForm(csrf: csrf, destinations: destinations))
        #expect(refused.status == 400)
        #expect(refused.text.contains("role=\"alert\"") && refused.text.contains("<a href=\"#\(field)\">\(refusal)"), "\(refused.text)")
        for (index, typed) in destinations.enumerated() {
            #expect(refused.text.contains("id=\"destination-\(index + 1)\" name=\"destination-\(index + 1)\" value=\"\(typed)\""), "what was typed is kept")
        }
        #expect(refused.text.contains("value=\"Radio enquiry\"") && refused.text.contains("value=\"25\""))
        #expect(try await served(d, org: org, admin: admin)?.hasRouting == false, "nothing saved")
        await d.stop()
    }

    @Test func theFormsOwnChecksNameTheDayAndTranscriptsTheRest() async throws {
        let d = try await WebDeployment()
        let (org, admin, owner, analyst) = try await firm(d)
        defer { owner.close(); analyst.close() }

        let csrf = try #require(try await owner.get("/numbers/routing?number=%2B441184960655").csrf)
        var backwards = Self.routingForm(csrf: csrf, destinations: ["020 7946 0000"])
        backwards.append(("opens-3", "18:00"))  // the last of a repeated name wins
        let day = try await owner.post("/numbers/routing", form: backwards)
        #expect(day.status == 400 && day.text.contains("<a href=\"#opens-3\">Wednesday: the office must open before it closes."))
        #expect(day.text.contains("id=\"opens-3\" name=\"opens-3\" type=\"time\" value=\"18:00\""))
        let ring = try await owner.post("/numbers/routing", form: Self.routingForm(csrf: csrf, destinations: [], ring: "90"))
        #expect(ring.status == 400 && ring.text.contains("<a href=\"#ring\">The ring time in seconds is 5 to 60"))
        let whisper = try await owner.post("/numbers/routing", form: Self.routingForm(csrf: csrf, destinations: [], whisper: String(repeating: "w", count: 201)))
        #expect(whisper.status == 400 && whisper.text.contains("<a href=\"#whisper\">The whisper is one line of at most 200 characters"))
        #expect(try await served(d, org: org, admin: admin)?.hasRouting == false, "nothing saved")
        // No destinations at all is a routing too: nobody is rung.
        #expect(try await owner.post("/numbers/routing", form: Self.routingForm(csrf: csrf, destinations: [])).status == 303)
        #expect(try await owner.get("/numbers").text.contains("Rings nobody"))
        #expect(try await owner.get("/numbers/routing?number=0118%20496%200999").status == 404, "not one of the firm's numbers")
        await d.stop()
    }

    @Test func anAnalystGetsNoFormAndTheirPostIsRefused() async throws {
        let d = try await WebDeployment()
        let (org, admin, owner, analyst) = try await firm(d)
        defer { owner.close(); analyst.close() }

        let page = try await analyst.get("/numbers")
        #expect(page.status == 200 && page.text.contains("Not set up yet") && !page.text.contains("/numbers/routing") && !page.text.contains("/numbers/blocked"))
        #expect(try await analyst.get("/numbers/routing?number=%2B441184960655").status == 403)
        let csrf = try #require(page.csrf)
        let refused = try await analyst.post("/numbers/routing", form: Self.routingForm(csrf: csrf, destinations: ["020 7946 0000"]))
        #expect(refused.status == 403 && refused.text.contains("You do not have access to this"))
        #expect(try await served(d, org: org, admin: admin)?.hasRouting == false)
        #expect(try await analyst.get("/numbers/blocked").status == 403)
        #expect(try await analyst.post("/numbers/blocked", form: [("csrf", csrf), ("number", "07700 900777")]).status == 403)
        #expect(try await analyst.post("/numbers/blocked/remove", form: [("csrf", csrf), ("number", "07700 900777")]).status == 403)
        await d.stop()
    }

    @Test func aCallerIsBlockedAndUnblockedThroughThePage() async throws {
        let d = try await WebDeployment()
        let (org, admin, owner, analyst) = try await firm(d)
        defer { owner.close(); analyst.close() }
        let blockList = Calltrace_Transcript_V1_BlockListServiceClient(try d.services.calls.transcript.client())
        func listed() async throws -> [Calltrace_Transcript_V1_BlockedCaller] {
            try await blockList.listBlockedCallers(.with { $0.orgID = org }, options: try bearer(admin)).blockedCallers
        }

        let numbers = try await owner.get("/numbers")
        #expect(numbers.text.contains("href=\"/numbers/blocked\""))
        let page = try await owner.get("/numbers/blocked")
        #expect(page.status == 200 && page.text.contains("Nobody is blocked.") && page.text.contains("not a caller's objection"))
        let csrf = try #require(page.csrf)
        let blocked = try await owner.post("/numbers/blocked", form: [("csrf", csrf), ("number", "07700 900777"), ("reason", "repeated nuisance calls")])
        #expect(blocked.status == 303 && blocked.header("Location") == "/numbers/blocked?done=blocked")
        #expect(try await listed().map(\.reason) == ["repeated nuisance calls"])
        let shown = try await owner.get("/numbers/blocked?done=blocked")
        #expect(shown.text.contains("07700 ••••77") && shown.text.contains("repeated nuisance calls") && !shown.text.contains("900777"))

        // Refusals keep what was typed: a withheld caller, something that is not a number.
        let withheld = try await owner.post("/numbers/blocked", form: [("csrf", csrf), ("number", "Anonymous"), ("reason", "hoax")])
        #expect(withheld.status == 400 && withheld.text.contains("<a href=\"#block-number\">A caller who withholds their number cannot be blocked"))
        #expect(withheld.text.contains("value=\"Anonymous\"") && withheld.text.contains("value=\"hoax\""))
        let letters = try await owner.post("/numbers/blocked", form: [("csrf", csrf), ("number", "call me"), ("reason", "")])
        #expect(letters.status == 400 && letters.text.contains("<a href=\"#block-number\">The caller") && letters.text.contains("number is not a phone number"))
        #expect(try await listed().count == 1)

        let unblocked = try await owner.post("/numbers/blocked/remove", form: [("csrf", csrf), ("number", "+44 7700 900777")])
        #expect(unblocked.status == 303 && unblocked.header("Location") == "/numbers/blocked?done=unblocked")
        #expect(try await listed().isEmpty)
        #expect(try await owner.get("/numbers/blocked?done=unblocked").text.contains("Nobody is blocked."))
        await d.stop()
    }

    @Test func formsWithoutTheirTokenAreRefused() async throws {
        let d = try await WebDeployment()
        let (org, admin, owner, analyst) = try await firm(d)
        defer { owner.close(); analyst.close() }

        var noToken = Self.routingForm(csrf: "", destinations: ["020 7946 0000"])
        noToken.removeFirst()
        #expect(try await owner.post("/numbers/routing", form: noToken).status == 403)
        #expect(try await owner.post("/numbers/routing", form: Self.routingForm(csrf: "forged", destinations: ["020 7946 0000"])).status == 403)
        #expect(try await owner.post("/numbers/blocked", form: [("number", "07700 900777")]).status == 403)
        #expect(try await owner.post("/numbers/blocked/remove", form: [("number", "07700 900777")]).status == 403)
        #expect(try await served(d, org: org, admin: admin)?.hasRouting == false)
        let blocked = try await Calltrace_Transcript_V1_BlockListServiceClient(try d.services.calls.transcript.client())
            .listBlockedCallers(.with { $0.orgID = org }, options: try bearer(admin)).blockedCallers
        #expect(blocked.isEmpty)
        await d.stop()
    }

    @Test func theSummaryGroupsDaysAndTheFormReadsTimes() {
        let hours: [Calltrace_Transcript_V1_OfficeHours] = [(1, 540, 1050), (2, 540, 1050), (3, 540, 720), (3, 780, 1050), (6, 600, 780)].map { day in
            .with { $0.weekday = UInt32(day.0); $0.opensMinute = UInt32(day.1); $0.closesMinute = UInt32(day.2) }
        }
        #expect(RoutingSummary.hours(hours) == "Mon–Tue 09:00–17:30, Wed 09:00–12:00 and 13:00–17:30, Sat 10:00–13:00")
        #expect(RoutingSummary.list(["a", "b", "c"]) == "a, b and c")
        #expect(NumberPages.national("+44 7700 ••••23") == "07700 ••••23")
        #expect(RoutingForm.minute("09:30") == 570 && RoutingForm.minute("9:30:00") == 570)
        #expect(RoutingForm.minute("24:00") == nil && RoutingForm.minute("9") == nil && RoutingForm.minute("09:5") == nil)
        let stored = RoutingForm(stored: .with { $0.officeHours = hours }, hasRouting: true)
        #expect(stored.severalOpenings == ["Wednesday"] && stored.days[2].opens == "09:00" && stored.days[6].opens.isEmpty)
    }
}
