import CallTraceProto
import CallTraceRPC
import Foundation
import Hummingbird

/// The calls: a list with filters, and a call's page (details, the player, the redacted
/// transcript, the AI summary, the outcome, share links). What a page shows follows what the
/// person's role permits: an analyst sees calls and outcomes but no audio and no words.
struct CallPages: Sendable {
    let app: WebApp
    static let pageSize: UInt32 = 50

    func register(on router: Router<WebContext>) {
        router.get("/calls") { request, context in try await list(request, context) }
        router.get("/calls/:call") { request, context in
            let notice: String? = switch request.query["done"] {
            case "marked": "The outcome is saved."
            case "revoked": "The link is revoked: it no longer opens the recording."
            case "callback": "Your phone will ring now. When you answer, you hear whom you are calling, then the caller is dialled: "
                + "they hear that the call is recorded before you are connected."
            default: nil
            }
            return try await call(try context.parameters.require("call"), context, notice: notice)
        }
        router.post("/calls/:call/outcome") { request, context in try await markOutcome(request, context) }
        router.post("/calls/:call/callback") { request, context in try await placeCallback(request, context) }
        router.get("/recordings/:recording/audio") { request, context in try await audio(request, context) }
    }

    // MARK: The list

    private func list(_ request: Request, _ context: WebContext) async throws -> Response {
        let session = try app.session(context)
        let (chrome, _) = try await app.chrome(context, current: "Calls")
        let query = request.query
        let from = query["from"], to = query["to"]
        let source = String(query["source"].prefix(100))
        let show = query["show"].isEmpty ? "all" : query["show"]
        var listRequest = Calltrace_Transcript_V1_ListCallsRequest()
        listRequest.orgID = session.orgID
        listRequest.pageSize = Self.pageSize
        listRequest.source = source
        listRequest.pageToken = String(query["page"].prefix(200))
        if !from.isEmpty {
            guard let start = Formats.startOfDay(from) else { throw PageError.invalid("The ‘from’ date is not a date.") }
            listRequest.startedFromUnixMs = start
        }
        if !to.isEmpty {
            // Up to the end of the chosen day.
            guard let end = Formats.startOfNextDay(to) else { throw PageError.invalid("The ‘to’ date is not a date.") }
            listRequest.startedBeforeUnixMs = end
        }
        switch show {
        case "missed": listRequest.outcomes = [.missed, .voicemail, .abandoned]
        case "inbound": listRequest.direction = .inbound
        case "outbound": listRequest.direction = .outbound
        case "unmarked": listRequest.unmarkedOnly = true
        default: break
        }
        let page = try await app.backend.calls.listCalls(listRequest, options: context.caller.options)
        let calls = page.calls
        var next: String?
        if !page.nextPageToken.isEmpty {
            next = "/calls?" + [("from", from), ("to", to), ("source", source), ("show", show), ("page", page.nextPageToken)]
                .filter { !$0.1.isEmpty }.map { "\($0.0)=\(Form.escape($0.1))" }.joined(separator: "&")
        }
        var data: [String: Any] = [
            "from": from, "to": to, "source": source,
            "shows": [("all", "All calls"), ("missed", "Missed, voicemail or abandoned"), ("unmarked", "Not yet marked"),
                      ("inbound", "Inbound"), ("outbound", "Outbound (call-backs)")]
                .map { ["value": $0.0, "label": $0.1, "selected": $0.0 == show] },
            "calls": calls.map(Self.row), "empty": calls.isEmpty,
        ]
        if let next { data["next"] = next }
        return app.renderer.page("calls", title: "Calls", data: data, chrome: chrome)
    }

    static func row(_ call: Calltrace_Transcript_V1_Call) -> [String: Any] {
        [
            "id": call.callID, "started": Formats.dateTime(unixMs: call.startedAtUnixMs), "source": call.source.isEmpty ? "—" : call.source,
            "channel": Formats.channel(call.channel), "direction": Formats.direction(call.direction), "caller": call.callerNumberMasked,
            "duration": Formats.duration(ms: call.durationMs), "outcome": Formats.outcome(call.outcome),
            "needsCallBack": call.outcome == .missed || call.outcome == .voicemail || call.outcome == .abandoned,
            "enquiry": Formats.enquiry(call.enquiry), "matter": call.matterOpened,
        ]
    }

    // MARK: One call

    func call(_ id: String, _ context: WebContext, notice: String? = nil, newLink: String? = nil) async throws -> Response {
        let session = try app.session(context)
        let (chrome, permissions) = try await app.chrome(context, current: "Calls")
        let options = context.caller.options
        let call = try await app.backend.calls.getCall(.with {
            $0.orgID = session.orgID
            $0.callID = id
        }, options: options).call
        var data = Self.row(call)
        data["csrf"] = session.csrf
        data["callID"] = call.callID
        // Mustache opens a section for an empty string too: absent keys for what is not there.
        if !call.campaign.isEmpty { data["campaign"] = call.campaign }
        if !call.matterReference.isEmpty { data["matterReference"] = call.matterReference }
        data["practiceArea"] = Formats.practiceArea(call.practiceArea)
        if let notice { data["notice"] = notice }
        if let newLink { data["newLink"] = newLink }
        if permissions.contains(.transcriptsRead) {
            let transcript = try await app.backend.transcripts.getTranscript(.with {
                $0.orgID = session.orgID
                $0.callID = id
            }, options: options)
            data["transcript"] = Self.transcript(transcript)
        }
        if permissions.contains(.recordingsPlay), !call.recordingID.isEmpty,
           let recording = try await existingRecording(call.recordingID, org: session.orgID, options: options, data: &data) {
            var player: [String: Any] = ["id": recording.recordingID, "type": Formats.mimeType(recording.format),
                                         "size": Formats.size(bytes: recording.sizeBytes)]
            if recording.durationMs > 0 { player["duration"] = Formats.duration(ms: recording.durationMs) }
            data["recording"] = player
            if permissions.contains(.linksShare) {
                let links = try await app.backend.shareLinks.listShareLinks(.with {
                    $0.orgID = session.orgID
                    $0.recordingID = recording.recordingID
                }, options: options).links
                let now = app.clock.nowUnixMs
                data["sharing"] = [
                    "hasLinks": !links.isEmpty,
                    "links": links.sorted { $0.createdAtUnixMs > $1.createdAtUnixMs }.map { link -> [String: Any] in
                        let state = link.revokedAtUnixMs > 0 ? "Revoked" : link.expiresAtUnixMs <= now ? "Expired" : "Active"
                        return ["linkID": link.linkID, "created": Formats.dateTime(unixMs: link.createdAtUnixMs),
                                "expires": Formats.dateTime(unixMs: link.expiresAtUnixMs), "note": link.note, "opens": link.opens,
                                "state": state, "active": state == "Active"]
                    },
                ]
            }
        }
        // Not marked yet: the AI's suggestion is shown, never preselected, for a person to confirm or correct.
        let suggesting = call.enquiry == .unspecified && call.suggestedEnquiry != .unspecified
        if suggesting {
            data["suggestion"] = Formats.enquiry(call.suggestedEnquiry)
                + (call.suggestedPracticeArea == .unspecified ? "" : ", " + Formats.practiceArea(call.suggestedPracticeArea))
        }
        if let visit = Self.visit(call) { data["visit"] = visit }
        if permissions.contains(.callsMark), call.outcome != .unspecified {
            // The suggestion is shown, never preselected: saving the form for a matter reference must
            // not confirm what only the AI said.
            data["marking"] = [
                "enquiries": [(Calltrace_Transcript_V1_Enquiry.new, "new"), (.notNew, "not-new")].map { value, name in
                    ["value": name, "label": Formats.enquiry(value), "checked": call.enquiry == value]
                },
                "areas": Formats.practiceAreas.map { value, label in
                    ["value": value.rawValue, "label": label, "selected": call.practiceArea == value]
                },
                "matterOpened": call.matterOpened, "reference": call.matterReference, "suggested": suggesting,
                "suggestion": data["suggestion"] ?? "",
            ]
        }
        // A call back to a missed call or an enquiry, when the deployment has a telephony gateway
        // (the caller's number never reaches the page: the gateway dials it).
        if permissions.contains(.callsPlace), app.backend.callbacks != nil, call.callerNumberMasked != "withheld",
           data["needsCallBack"] as? Bool == true || call.enquiry == .new {
            data["callingBack"] = true
        }
        CallRecordPages.actions(into: &data, call: call, permissions: permissions)
        return app.renderer.page("call", title: "Call on \(Formats.dateTime(unixMs: call.startedAtUnixMs))", data: data, chrome: chrome)
    }

    /// The website visit the call joined (issue 32), or why it was attributed to its source.
    static func visit(_ call: Calltrace_Transcript_V1_Call) -> [String: Any]? {
        switch call.visitJoin {
        case .joined:
            let v = call.visit
            var facts: [[String: String]] = []
            for (label, value) in [("Campaign", v.utmCampaign), ("Keyword", v.utmTerm), ("Source / medium", [v.utmSource, v.utmMedium].filter { !$0.isEmpty }.joined(separator: " / ")),
                                   ("Landing page", v.landingPath), ("Referrer", v.referrerHost), ("Ad click", v.clickIDKinds.joined(separator: ", ")),
                                   ("First visit's campaign", v.firstUtmCampaign == v.utmCampaign ? "" : v.firstUtmCampaign)] where !value.isEmpty {
                facts.append(["label": label, "value": value])
            }
            return ["joined": true, "facts": facts]
        case .lapsed: return ["reason": "The website number's reservation had lapsed when the call came: attributed to the source."]
        case .noReservation: return ["reason": "No website visitor held this number when the call came: attributed to the source."]
        default: return nil
        }
    }

    /// The call's recording, or nil (and a note on the page) when it was deleted: the call's
    /// record outlives its recording (retention, a deletion, an erasure).
    private func existingRecording(_ id: String, org: String, options: CallOptions, data: inout [String: Any]) async throws
        -> Calltrace_Media_V1_Recording? {
        do {
            return try await app.backend.recordings.getRecording(.with {
                $0.orgID = org
                $0.recordingID = id
            }, options: options).recording
        } catch let error as RPCError where error.code == .notFound {
            data["recordingGone"] = true
            return nil
        }
    }

    static func transcript(_ answer: Calltrace_Transcript_V1_GetTranscriptResponse) -> [String: Any] {
        var data: [String: Any] = [:]
        switch answer.state {
        case .done:
            data["segments"] = answer.transcript.segments.map { segment -> [String: Any] in
                ["speaker": segment.speaker.capitalizedFirst, "at": Formats.duration(ms: segment.startMs), "text": segment.text,
                 "firm": segment.speaker == "firm"]
            }
            if answer.transcript.redactions > 0 { data["redactions"] = answer.transcript.redactions }
        case .queued: data["pending"] = "Transcription is under way."
        case .failed: data["pending"] = "Transcription failed. Your CallTrace admin can see why in the service's jobs."
        default: data["pending"] = "This call has no transcript (transcription is off, or the call was not recorded)."
        }
        if answer.hasAnalysis {
            let analysis = answer.analysis
            data["analysis"] = [
                "summary": analysis.summary, "area": Formats.practiceArea(analysis.practiceArea),
                "newEnquiry": analysis.newEnquiry ? "Yes" : "No", "callBack": analysis.callbackRequested ? "Yes" : "No",
                "urgency": ["Not set", "Low", "Normal", "High"][max(0, min(analysis.urgency.rawValue, 3))],
            ]
        }
        return data
    }

    private func markOutcome(_ request: Request, _ context: WebContext) async throws -> Response {
        let session = try app.session(context)
        let id = try context.parameters.require("call")
        let form = try await Form.read(request, context: context)
        let reference = form["reference"]
        guard reference.count <= 64 else { throw PageError.invalid("A matter reference is at most 64 characters.") }
        _ = try await app.backend.calls.markCallOutcome(.with {
            $0.orgID = session.orgID
            $0.callID = id
            $0.enquiry = form["enquiry"] == "new" ? .new : form["enquiry"] == "not-new" ? .notNew : .unspecified
            $0.matterOpened = form["matter"] == "yes"
            $0.matterReference = form["matter"] == "yes" ? reference : ""
            $0.practiceArea = Calltrace_Transcript_V1_PracticeArea(rawValue: Int(form["area"]) ?? 0) ?? .unspecified
        }, options: context.caller.options)
        return WebApp.seeOther("/calls/\(id.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? "")?done=marked")
    }

    /// Twilio rings the person's phone (or the office's), then the caller: `PlaceCallback` at the
    /// telephony gateway, under the person's token.
    private func placeCallback(_ request: Request, _ context: WebContext) async throws -> Response {
        let session = try app.session(context)
        let id = try context.parameters.require("call")
        let form = try await Form.read(request, context: context)
        guard let callbacks = app.backend.callbacks else { throw PageError.invalid("This CallTrace has no telephony gateway to place calls.") }
        let phone = form["phone"].trimmingCharacters(in: .whitespaces)
        guard phone.count <= 32 else { throw PageError.invalid("Your phone number is too long.") }
        _ = try await callbacks.placeCallback(.with {
            $0.orgID = session.orgID
            $0.callID = id
            $0.staffNumber = phone
        }, options: context.caller.options)
        return WebApp.seeOther("/calls/\(id.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? "")?done=callback")
    }

    // MARK: The player

    /// Each request is one ranged `PlayRecording` under the person's token: media checks and
    /// audits every play.
    private func audio(_ request: Request, _ context: WebContext) async throws -> Response {
        let session = try app.session(context)
        return try await app.backend.play(recording: try context.parameters.require("recording"), org: session.orgID, range: request.headers[.range],
                                          caller: context.caller, reason: "played in the web app")
    }
}

extension String {
    /// "caller" → "Caller".
    var capitalizedFirst: String { prefix(1).uppercased() + dropFirst() }
}
