import CallTraceAPI
import CallTraceDeploymentSupport
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceTestSupport
import FakeTwilio
import Foundation
import Testing
@testable import TelephonyGateway
import Twilio

extension TelephonyRig {
    /// The gateway's own calls, as the web app makes them for a person (the web gateway's certificate).
    var numbers: Calltrace_Telephony_V1_NumberServiceClient { get throws { .init(try telephony.client()) } }
    var callbacks: Calltrace_Telephony_V1_CallbackServiceClient { get throws { .init(try telephony.client()) } }

    /// The organisation's audit trail's actions, oldest first, once the gateway's outbox reached compliance.
    func auditActions(_ prefix: String) async throws -> [String] {
        let audit = Calltrace_Compliance_V1_AuditServiceClient(try services.calls.compliance.client())
        return try await audit.listAuditEvents(.with { $0.orgID = org }, options: try bearer(admin)).events.map(\.event.action)
            .filter { $0.hasPrefix(prefix) }.reversed()
    }
}

@Suite("Issue 31: a firm's numbers at Twilio, through the telephony gateway")
struct NumberTests {
    @Test("An admin searches by area code, buys a number (its webhooks pointed here, under the firm's bundle and address), takes its calls once transcript gives it a source, and releases it; each change is audited")
    func searchBuyRelease() async throws {
        let rig = try await TelephonyRig()
        let offered = "+441184960123"
        rig.fake.addAvailableNumber(AvailablePhoneNumber(phoneNumber: offered, friendlyName: "0118 496 0123", locality: "Reading", isoCountry: "GB"))
        rig.fake.addAvailableNumber(AvailablePhoneNumber(phoneNumber: "+441614960123", friendlyName: "0161 496 0123", locality: "Manchester", isoCountry: "GB"))
        let numbers = try rig.numbers
        let found = try await numbers.searchNumbers(.with { $0.orgID = rig.org; $0.areaCode = "0118" }, options: try bearer(rig.admin))
        #expect(found.numbers.map(\.number) == [offered])
        #expect(found.numbers.first?.locality == "Reading")

        let bundle = FakeTwilio.newSID("BU"), address = FakeTwilio.newSID("AD")
        // Twilio wants the firm's address too for this number: its refusal comes back as it is, without the number.
        let refused = await code { _ = try await numbers.buyNumber(.with {
            $0.orgID = rig.org; $0.number = offered; $0.bundleSid = bundle; $0.source = "Yellow Pages"; $0.channel = .directory
        }, options: try bearer(rig.admin)) }
        #expect(refused == .failedPrecondition)
        let bought = try await numbers.buyNumber(.with {
            $0.orgID = rig.org; $0.number = "0118 496 0123"; $0.bundleSid = bundle; $0.addressSid = address
            $0.source = "Yellow Pages"; $0.channel = .directory
        }, options: try bearer(rig.admin))
        #expect(bought.number.number == offered)
        #expect(bought.trackingNumber.number == offered && bought.trackingNumber.source == "Yellow Pages", "assigned in transcript")
        let atTwilio = try #require(rig.fake.incomingNumber(offered))
        #expect(atTwilio.voiceUrl == TelephonyRig.publicURL + WebhookURLs.voicePath)
        #expect(atTwilio.statusCallback == TelephonyRig.publicURL + WebhookURLs.statusPath)
        #expect(atTwilio.bundleSid == bundle && atTwilio.sid == bought.number.twilioSid)
        // Bought twice: refused, nothing bought again; another firm: not available.
        let again = Calltrace_Telephony_V1_BuyNumberRequest.with {
            $0.orgID = rig.org; $0.number = offered; $0.bundleSid = bundle; $0.addressSid = address; $0.source = "x"; $0.channel = .other
        }
        #expect(await code { _ = try await numbers.buyNumber(again, options: try bearer(rig.admin)) } == .alreadyExists)
        let (other, otherAdmin) = try await rig.services.calls.organisation("Jones LLP")
        #expect(await code { _ = try await numbers.buyNumber(.with { $0 = again; $0.orgID = other }, options: try bearer(otherAdmin)) } == .failedPrecondition)
        // Without a bundle (and no default), or a source: refused before Twilio is asked.
        #expect(await code { _ = try await numbers.buyNumber(.with { $0 = again; $0.number = "+441614960123"; $0.bundleSid = "" },
                                                           options: try bearer(rig.admin)) } == .invalidArgument)
        #expect(await code { _ = try await numbers.buyNumber(.with { $0 = again; $0.number = "+441614960123"; $0.source = "" },
                                                           options: try bearer(rig.admin)) } == .invalidArgument)

        // Its calls reach the firm.
        let played = try await rig.driver.play(.init(from: TelephonyRig.caller, to: offered, dialledLeg: .noAnswer, recordingWAV: wavFile(samples: 100)))
        #expect(try await rig.settle { try await rig.record(of: played.callSid).outcome == .missed })
        #expect(try await rig.record(of: played.callSid).source == "Yellow Pages")

        // Released: in transcript first, then at Twilio.
        _ = try await numbers.releaseNumber(.with { $0.orgID = rig.org; $0.number = offered }, options: try bearer(rig.admin))
        #expect(rig.fake.incomingNumber(offered) == nil, "released at Twilio")
        let current = try await Calltrace_Transcript_V1_TrackingNumberServiceClient(try rig.services.calls.transcript.client())
            .listTrackingNumbers(.with { $0.orgID = rig.org }, options: try bearer(rig.admin)).trackingNumbers.map(\.number)
        #expect(!current.contains(offered), "no longer the firm's in transcript")
        #expect(await code { _ = try await numbers.releaseNumber(.with { $0.orgID = rig.org; $0.number = offered },
                                                               options: try bearer(rig.admin)) } == .notFound)
        #expect(try await rig.settle { try await rig.auditActions("number.") == ["number.bought", "number.released"] })
        await rig.stop()
    }

    @Test("An operator under the firm's grant imports a number already on the account (its webhooks pointed here); not a firm's admin, not one that already answers here, not another firm's; detached, it stays the firm's")
    func importing() async throws {
        let rig = try await TelephonyRig()
        let own = "+441184960777"
        _ = rig.fake.addIncomingNumber(own, voiceURL: "https://old-provider.example/voice")
        let numbers = try rig.numbers
        let ops = Calltrace_Telephony_V1_NumberServiceClient(try rig.telephony.client(identity: TemporaryPKI.identity("operator", "ops")))
        func importing(_ number: String, into org: String) async -> StatusCode? {
            do {
                _ = try await ops.importNumber(.with { $0.orgID = org; $0.number = number })
                return nil
            } catch let error as RPCError {
                if error.code != .permissionDenied && error.code != .failedPrecondition && error.code != .notFound { Issue.record("\(error)") }
                return error.code
            } catch {
                Issue.record("\(error)")
                return .unknown
            }
        }
        // A firm's admin cannot claim a number on the shared account; an operator needs the firm's grant.
        #expect(await code { _ = try await numbers.importNumber(.with { $0.orgID = rig.org; $0.number = own }, options: try bearer(rig.admin)) }
                == .permissionDenied)
        #expect(await importing(own, into: rig.org) == .permissionDenied)
        let (other, otherAdmin) = try await rig.services.calls.organisation("Jones LLP")
        for (org, admin) in [(rig.org, rig.admin), (other, otherAdmin)] {
            _ = try await Calltrace_Identity_V1_IdentityServiceClient(try rig.services.calls.identity.client()).createSupportGrant(.with {
                $0.orgID = org; $0.permissions = [.settingsManage]; $0.durationSeconds = 3600; $0.reason = "ticket SUP-31: number port"
            }, options: try bearer(admin))
        }
        let imported = try await ops.importNumber(.with { $0.orgID = rig.org; $0.number = own })
        #expect(imported.number.number == own)
        #expect(rig.fake.incomingNumber(own)?.voiceUrl == TelephonyRig.publicURL + WebhookURLs.voicePath)
        #expect(await importing(own, into: rig.org) == nil, "again: the same answer")
        // The number the firm's calls already come in on answers here: nobody takes it over by importing it.
        #expect(await importing(rig.number, into: rig.org) == .failedPrecondition)
        #expect(await importing("+441184960778", into: rig.org) == .notFound)
        // Another firm can neither import nor release it.
        #expect(await importing(own, into: other) == .failedPrecondition)
        #expect(await code { _ = try await numbers.releaseNumber(.with { $0.orgID = other; $0.number = own }, options: try bearer(otherAdmin)) }
                == .notFound)
        #expect(await code { _ = try await numbers.releaseNumber(.with { $0.orgID = rig.org; $0.number = own }, options: try bearer(otherAdmin)) }
                == .permissionDenied)

        // Kept at Twilio: its webhooks cleared, the number still on the account, and still the firm's.
        _ = try await numbers.releaseNumber(.with { $0.orgID = rig.org; $0.number = own; $0.keepAtTwilio = true }, options: try bearer(rig.admin))
        #expect(rig.fake.incomingNumber(own)?.voiceUrl?.isEmpty ?? true)
        #expect(rig.fake.incomingNumber(own) != nil)
        #expect(await importing(own, into: other) == .failedPrecondition, "a detached number is not up for grabs")
        #expect(await importing(own, into: rig.org) == nil, "the firm's operator points it here again")
        #expect(try await rig.settle { try await rig.auditActions("number.") == ["number.imported", "number.imported", "number.detached", "number.imported"] })
        await rig.stop()
    }

    @Test("A number the gateway holds for one firm takes no call for another, even if that firm assigned it in transcript first")
    func squatting() async throws {
        let rig = try await TelephonyRig()
        let offered = "+441184960124"
        rig.fake.addAvailableNumber(AvailablePhoneNumber(phoneNumber: offered, friendlyName: "0118 496 0124", isoCountry: "GB"))
        // Another firm's admin assigns the number in transcript before anyone bought it.
        let (other, otherAdmin) = try await rig.services.calls.organisation("Jones LLP")
        let trackingNumbers = Calltrace_Transcript_V1_TrackingNumberServiceClient(try rig.services.calls.transcript.client())
        _ = try await trackingNumbers.assignTrackingNumber(.with { $0.orgID = other; $0.number = offered; $0.source = "Squatted"; $0.channel = .other },
                                                           options: try bearer(otherAdmin))
        // The firm buys it: bought and its own at Twilio, but transcript will not assign it.
        #expect(await code { _ = try await rig.numbers.buyNumber(.with {
            $0.orgID = rig.org; $0.number = offered; $0.bundleSid = FakeTwilio.newSID("BU"); $0.addressSid = FakeTwilio.newSID("AD")
            $0.source = "Google Ads"; $0.channel = .googleAds
        }, options: try bearer(rig.admin)) } == .failedPrecondition)
        #expect(rig.fake.incomingNumber(offered) != nil)
        // A caller rings it: rejected, and the squatter gets no call record.
        let played = try await rig.driver.play(.init(from: TelephonyRig.caller, to: offered, recordingWAV: wavFile(samples: 100)))
        #expect(played.rejected == .rejected && played.dialled.isEmpty)
        let calls = try await Calltrace_Transcript_V1_CallServiceClient(try rig.services.calls.transcript.client())
            .listCalls(.with { $0.orgID = other }, options: try bearer(otherAdmin)).calls
        #expect(calls.isEmpty, "no call reached the firm that assigned a number it does not hold")
        await rig.stop()
    }

    @Test("Refused before Twilio is asked: no token, a made-up token, a member (no settings.manage), an analyst, malformed searches", .overTLS)
    func refusals() async throws {
        let rig = try await TelephonyRig()
        let numbers = try rig.numbers
        let member = try await rig.services.calls.identity.newUser(.member, in: rig.org, admin: rig.admin)
        let analyst = try await rig.services.calls.identity.newUser(.analyst, in: rig.org, admin: rig.admin)
        let search = Calltrace_Telephony_V1_SearchNumbersRequest.with { $0.orgID = rig.org; $0.areaCode = "0118" }
        #expect(await code { _ = try await numbers.searchNumbers(search) } == .unauthenticated)
        #expect(await code { _ = try await numbers.searchNumbers(search, options: try bearer("ct_made-up")) } == .unauthenticated)
        #expect(await code { _ = try await numbers.searchNumbers(search, options: try bearer(member)) } == .permissionDenied)
        #expect(await code { _ = try await numbers.searchNumbers(search, options: try bearer(analyst)) } == .permissionDenied)
        for (area, contains) in [("", ""), ("01a8", ""), ("0118", "12345678")] {
            #expect(await code { _ = try await numbers.searchNumbers(.with { $0.orgID = rig.org; $0.areaCode = area; $0.contains = contains },
                                                                   options: try bearer(rig.admin)) } == .invalidArgument)
        }
        #expect(!rig.fake.requestLog.contains { $0.contains("AvailablePhoneNumbers") }, "Twilio was never asked")
        // A service's certificate is not a person's way in.
        let asMedia = Calltrace_Telephony_V1_NumberServiceClient(try rig.telephony.client(identity: TemporaryPKI.identity("service", "media")))
        #expect(await code { _ = try await asMedia.searchNumbers(search, options: try bearer(rig.admin)) } == .permissionDenied)
        await rig.stop()
    }
}

@Suite("Issue 31: call backs placed through Twilio")
struct CallbackTests {
    @Test("A member calls back a missed caller: their phone rings first and hears why, the caller hears the returned-call greeting before being connected, the call is recorded, linked, moved into media and deleted at Twilio")
    func missedCallReturned() async throws {
        let rig = try await TelephonyRig(routing: .with { $0.destinations = [TelephonyRig.office]; $0.ringSeconds = 20 })
        let missed = try await rig.call(.noAnswer)
        #expect(try await rig.settle { try await rig.record(of: missed.callSid).outcome == .missed })
        let member = try await rig.services.calls.identity.newUser(.member, in: rig.org, admin: rig.admin)

        let placed = try await rig.callbacks.placeCallback(.with { $0.orgID = rig.org; $0.callID = missed.callSid }, options: try bearer(member))
        let call = try #require(rig.fake.placedCalls.first { $0.call.sid == placed.callID })
        #expect(call.call.to == TelephonyRig.office, "the office's phone (the number's first destination) rings first")
        #expect(call.call.from == rig.number, "from the firm's tracking number")
        #expect(call.form["Url"]?.hasPrefix(TelephonyRig.publicURL + WebhookURLs.callbackPath) == true)
        #expect(!(call.form["Url"] ?? "").contains("7700"), "no caller's number in a URL")

        let played = try await rig.driver.answerPlacedCall(sid: placed.callID, dialledLeg: .answers(talkSeconds: 30),
                                                           recordingWAV: wavFile(samples: 16_000, channels: 2))
        #expect(played.dialled == [TelephonyRig.caller], "the enquirer is dialled")
        #expect(played.callerIDs == [rig.number])
        guard case .said(let told)? = played.heard.first else { Issue.record("the member of staff heard nothing: \(played.heard)"); return }
        #expect(told.contains("Calling back"), "\(told)")
        let greeting = played.heard.compactMap { heard -> String? in if case .whispered(let text) = heard { text } else { nil } }
        #expect(greeting.count == 1 && greeting[0].lowercased().contains("record"), "the enquirer hears the greeting first: \(greeting)")
        #expect(played.recordingSIDs.count == 1)

        #expect(try await rig.settle { rig.fake.recordingSIDs.isEmpty })
        #expect(try await rig.settle { try await rig.record(of: placed.callID).outcome == .answered })
        let returned = try await rig.record(of: placed.callID)
        #expect(returned.direction == .outbound && returned.callbackOf == missed.callSid && returned.recorded)
        #expect(try await rig.recordings(of: placed.callID).count == 1)
        let audit = Calltrace_Compliance_V1_AuditServiceClient(try rig.services.calls.compliance.client())
        #expect(try await rig.settle {
            try await audit.listAuditEvents(.with { $0.orgID = rig.org; $0.action = "call.callback_placed" }, options: try bearer(rig.admin))
                .events.map(\.event.resource) == ["call:\(missed.callSid)"]
        })
        // The plan (the caller's number) is gone from the gateway once answered; the same token,
        // sent again under another idempotency token, rings nobody.
        #expect(try await rig.telephony.instance.database.read { try $0.query("SELECT count(*) AS n FROM pending_callbacks WHERE plan IS NOT NULL")[0].int("n") } == 0)
        let first = try #require(played.webhooks(to: WebhookURLs.callbackPath).first)
        let replayed = try await rig.driver.post(url: first.url, parameters: first.parameters)
        #expect(String(decoding: replayed.answer, as: UTF8.self).contains("<Hangup"))
        #expect(!String(decoding: replayed.answer, as: UTF8.self).contains("7700"))
        await rig.stop()
    }

    @Test("Refused: another firm's call, an analyst, no token, a caller who objected, a withheld caller, a premium-rate staff phone; nothing is placed")
    func refusals() async throws {
        let rig = try await TelephonyRig()
        let answered = try await rig.call()
        let withheld = try await rig.call(from: "anonymous")
        let objecting = try await rig.call(from: "+447700900456")
        let abroad = try await rig.call(from: "+33612345678")
        let pager = try await rig.call(from: "+447624123456")
        #expect(try await rig.settle { try await rig.record(of: objecting.callSid).outcome == .answered })
        _ = try await Calltrace_Transcript_V1_SuppressionServiceClient(try rig.services.calls.transcript.client()).addSuppression(.with {
            $0.orgID = rig.org; $0.phoneNumber = "07700900456"; $0.reason = "objection received"
        }, options: try bearer(rig.admin))
        let callbacks = try rig.callbacks
        let analyst = try await rig.services.calls.identity.newUser(.analyst, in: rig.org, admin: rig.admin)
        let (other, otherAdmin) = try await rig.services.calls.organisation("Jones LLP")
        func place(_ call: String, org: String? = nil, staff: String = "", as token: String?) async -> StatusCode? {
            await code {
                _ = try await callbacks.placeCallback(.with { $0.orgID = org ?? rig.org; $0.callID = call; $0.staffNumber = staff },
                                                      options: try token.map(bearer) ?? CallOptions())
            }
        }
        #expect(await place(answered.callSid, as: nil) == .unauthenticated)
        #expect(await place(answered.callSid, as: analyst) == .permissionDenied)
        #expect(await place(answered.callSid, org: other, as: otherAdmin) == .notFound, "another firm's call is not there")
        #expect(await place(answered.callSid, as: otherAdmin) == .permissionDenied)
        #expect(await place(objecting.callSid, as: rig.admin) == .failedPrecondition)
        #expect(await place(withheld.callSid, as: rig.admin) == .failedPrecondition)
        #expect(await place(abroad.callSid, as: rig.admin) == .failedPrecondition, "never an international number: toll fraud")
        #expect(await place(pager.callSid, as: rig.admin) == .failedPrecondition, "never a premium UK range")
        #expect(await place(answered.callSid, staff: "09098790000", as: rig.admin) == .invalidArgument)
        #expect(await place(answered.callSid, staff: "+15555550100", as: rig.admin) == .invalidArgument)
        #expect(rig.fake.placedCalls.isEmpty, "Twilio placed nothing")
        // One call back rings at a time per call; a service's certificate is no person.
        _ = try await callbacks.placeCallback(.with { $0.orgID = rig.org; $0.callID = answered.callSid }, options: try bearer(rig.admin))
        #expect(await place(answered.callSid, as: rig.admin) == .failedPrecondition)
        let asMedia = Calltrace_Telephony_V1_CallbackServiceClient(try rig.telephony.client(identity: TemporaryPKI.identity("service", "media")))
        #expect(await code { _ = try await asMedia.placeCallback(.with { $0.orgID = rig.org; $0.callID = answered.callSid },
                                                               options: try bearer(rig.admin)) } == .permissionDenied)
        #expect(rig.fake.placedCalls.count == 1)
        await rig.stop()
    }
}

@Suite("P15: the telephony gateway's audit vocabulary")
struct TelephonyVocabularyTests {
    @Test("Well-formed, and the one services/compliance/README.md lists")
    func listed() throws {
        #expect(AuditAction.problems(in: TelephonyAuditAction.self).isEmpty)
        let readme = try String(contentsOf: repositoryRoot.appendingPathComponent("services/compliance/README.md"), encoding: .utf8)
        let line = try #require(readme.split(separator: "\n").first { $0.hasPrefix("  | telephony | ") })
        #expect(line.matches(of: /`([^`]+)`/).map { String($0.1) } == TelephonyAuditAction.allCases.map(\.rawValue))
    }
}
