import CallTraceAPI
import CallTraceKeys
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import Foundation

/// `calltrace.transcript.v1.TrackingNumberService`: admins manage, reporters list.
struct TrackingNumberHandler: Calltrace_Transcript_V1_TrackingNumberServiceHandler {
    let rules: CallRules
    let authorizer: any Authorizing
    let policies = Calltrace_Transcript_V1_TrackingNumberServicePolicies(
        assignTrackingNumber: .gateways | .operators, releaseTrackingNumber: .gateways | .operators, listTrackingNumbers: .gateways | .operators,
        setRouting: .gateways | .operators)

    func assignTrackingNumber(_ request: Calltrace_Transcript_V1_AssignTrackingNumberRequest, principal who: Principal, context: ServerContext) async throws
        -> Calltrace_Transcript_V1_AssignTrackingNumberResponse {
        let assignment = try await rules.assign(NumberAssignment(org: request.orgID, number: request.number, source: request.source, channel: request.channel,
                                                                 campaign: request.campaign, notice: request.notice,
                                                                 effectiveFrom: request.effectiveFromUnixMs), by: who.actor)
        let routing = try await rules.routings(org: request.orgID, numbers: [assignment.number])[assignment.number]
        return .with { $0.trackingNumber = Self.proto(assignment, routing: routing, withNumbers: true) }
    }

    func releaseTrackingNumber(_ request: Calltrace_Transcript_V1_ReleaseTrackingNumberRequest, principal who: Principal, context: ServerContext) async throws
        -> Calltrace_Transcript_V1_ReleaseTrackingNumberResponse {
        try await rules.release(number: request.number, org: request.orgID, by: who.actor)
        return .init()
    }

    /// Current numbers carry their routing: destinations in full for settings.manage, masked for others.
    func listTrackingNumbers(_ request: Calltrace_Transcript_V1_ListTrackingNumbersRequest, principal _: Principal, context: ServerContext) async throws
        -> Calltrace_Transcript_V1_ListTrackingNumbersResponse {
        let numbers = try await rules.trackingNumbers(org: request.orgID, includeHistory: request.includeHistory)
        let routings = try await rules.routings(org: request.orgID, numbers: numbers.filter { $0.until == nil }.map(\.number))
        var full = false  // a second check, beyond the declared reports.read: destinations need settings.manage
        if routings.values.contains(where: { !$0.destinations.isEmpty }) {
            full = (try? await context.principal(in: request.orgID, may: .settingsManage, via: authorizer)) != nil
        }
        return .with {
            $0.trackingNumbers = numbers.map { Self.proto($0, routing: $0.until == nil ? routings[$0.number] : nil, withNumbers: full) }
        }
    }

    func setRouting(_ request: Calltrace_Transcript_V1_SetRoutingRequest, principal who: Principal, context: ServerContext) async throws -> Calltrace_Transcript_V1_SetRoutingResponse {
        let set = try await rules.setRouting(org: request.orgID, number: request.number, Self.change(request.routing), by: who.actor)
        return .with { $0.trackingNumber = Self.proto(set.assignment, routing: set.routing, withNumbers: true) }
    }

    static func change(_ routing: Calltrace_Transcript_V1_Routing) -> RoutingChange {
        RoutingChange(destinations: routing.destinations, ringSeconds: routing.ringSeconds,
                      officeHours: routing.officeHours.map { ($0.weekday, $0.opensMinute, $0.closesMinute) },
                      outOfHoursMessage: routing.outOfHoursMessage, voicemail: routing.voicemail, whisper: routing.whisper)
    }

    static func proto(_ a: TrackingAssignment, routing: CallRouting?, withNumbers: Bool) -> Calltrace_Transcript_V1_TrackingNumber {
        .with {
            $0.number = a.number; $0.orgID = a.org; $0.source = a.source; $0.channel = .init(rawValue: a.channel) ?? .other
            $0.campaign = a.campaign; $0.notice = a.notice; $0.effectiveFromUnixMs = a.from; $0.effectiveUntilUnixMs = a.until ?? 0
            if let routing { $0.routing = routing.proto(withNumbers: withNumbers) }
        }
    }
}

/// `calltrace.transcript.v1.BlockListService`: the firm's admins (settings.manage), through a
/// gateway, or operators under a grant.
struct BlockListHandler: Calltrace_Transcript_V1_BlockListServiceHandler {
    let rules: CallRules
    let authorizer: any Authorizing
    let policies = Calltrace_Transcript_V1_BlockListServicePolicies(
        blockCaller: .gateways | .operators, unblockCaller: .gateways | .operators, listBlockedCallers: .gateways | .operators)

    func blockCaller(_ request: Calltrace_Transcript_V1_BlockCallerRequest, principal who: Principal, context: ServerContext) async throws -> Calltrace_Transcript_V1_BlockCallerResponse {
        try await rules.block(org: request.orgID, number: request.phoneNumber, reason: request.reason, by: who.actor)
        return .init()
    }

    func unblockCaller(_ request: Calltrace_Transcript_V1_UnblockCallerRequest, principal who: Principal, context: ServerContext) async throws
        -> Calltrace_Transcript_V1_UnblockCallerResponse {
        try await rules.unblock(org: request.orgID, number: request.phoneNumber, by: who.actor)
        return .init()
    }

    func listBlockedCallers(_ request: Calltrace_Transcript_V1_ListBlockedCallersRequest, principal _: Principal, context: ServerContext) async throws
        -> Calltrace_Transcript_V1_ListBlockedCallersResponse {
        let rows = try await rules.listedCallers(.blockedCallers, org: request.orgID)
        return .with {
            $0.blockedCallers = rows.map { row in .with { $0.numberMasked = row.masked; $0.reason = row.reason; $0.addedAtUnixMs = row.addedAt } }
        }
    }
}

/// `calltrace.transcript.v1.CallService`: the telephony gateways report calls as themselves;
/// users read and mark them through gateways; compliance searches, deletes, purges and exports;
/// media confirms a call before it takes its recording.
struct CallHandler: Calltrace_Transcript_V1_CallServiceHandler {
    let rules: CallRules
    let transcripts: TranscriptRules
    let authorizer: any Authorizing
    let policies: Calltrace_Transcript_V1_CallServicePolicies

    /// - Parameter telephonyGateways: the gateways that start and complete calls as themselves
    ///   (`telephony_gateways`); the web backend is not one of them.
    init(rules: CallRules, transcripts: TranscriptRules, authorizer: any Authorizing, telephonyGateways: [String]) {
        self.rules = rules
        self.transcripts = transcripts
        self.authorizer = authorizer
        let telephony = PeerPolicy.gateways(named: telephonyGateways)
        let users: PeerPolicy = .gateways | .operators
        let compliance: PeerPolicy = .service("compliance")
        policies = .init(
            startCall: telephony, prepareCallback: telephony, completeCall: telephony, getCall: users | compliance, listCalls: users | compliance,
            markCallOutcome: users, attributionReport: users, findCallsByCaller: compliance,
            deleteCall: .service("compliance"), purgeCalls: .service("compliance"),
            purgeTranscripts: .service("compliance"), purgeOrganisation: .service("compliance"), recordMatter: .service("compliance"),
            exportCall: .service("compliance"), confirmRecordingCall: .service("media"), listCallEvents: users)
    }

    func startCall(_ request: Calltrace_Transcript_V1_StartCallRequest, context: ServerContext) async throws -> Calltrace_Transcript_V1_StartCallResponse {
        let started = try await rules.start(CallStart(callID: request.callID, trackingNumber: request.trackingNumber, callerNumber: request.callerNumber,
                                                      direction: request.direction, startedAt: request.startedAtUnixMs, callbackOf: request.callbackOf,
                                                      expectedOrg: request.expectedOrgID),
                                            by: context.peerActor)
        context.annotate(org: started.org)
        return .with {
            $0.orgID = started.org; $0.record = started.record; $0.notice = started.notice; $0.reason = started.reason
            $0.source = started.source; $0.blocked = started.blocked; $0.officeOpen = started.officeOpen
            if let routing = started.routing { $0.routing = routing.proto(withNumbers: true) }
        }
    }

    /// The telephony gateway asks, passing on the person's token and the address the web app saw.
    func prepareCallback(_ request: Calltrace_Transcript_V1_PrepareCallbackRequest, principal who: Principal, context: ServerContext) async throws
        -> Calltrace_Transcript_V1_PrepareCallbackResponse {
        let plan = try await rules.prepareCallback(org: request.orgID, call: request.callID, staffNumber: request.staffNumber, by: who.actor)
        return .with {
            $0.callerNumber = plan.caller; $0.trackingNumber = plan.trackingNumber; $0.staffNumber = plan.staff
            $0.source = plan.source; $0.startedAtUnixMs = plan.startedAt
        }
    }

    func completeCall(_ request: Calltrace_Transcript_V1_CompleteCallRequest, context: ServerContext) async throws
        -> Calltrace_Transcript_V1_CompleteCallResponse {
        try OrganizationID.validate(request.orgID)
        context.annotate(org: request.orgID)
        try await rules.complete(CallCompletion(org: request.orgID, callID: request.callID, outcome: request.outcome, answeredAt: request.answeredAtUnixMs,
                                                 endedAt: request.endedAtUnixMs, durationMs: request.durationMs, recordingID: request.recordingID),
                                  by: context.peerActor)
        return .init()
    }

    func getCall(_ request: Calltrace_Transcript_V1_GetCallRequest, actor _: String, context: ServerContext) async throws -> Calltrace_Transcript_V1_GetCallResponse {
        let row = try await rules.call(request.callID, org: request.orgID)
        let full = context.peer.kind == .service ? false : await mayReadTranscripts(context, org: request.orgID)
        var call = try proto(row, withNumber: full)
        call.visit = try await visitAttribution(of: row)
        return .with { $0.call = call }
    }

    /// The marketing of the website visit the call joined, and of the visitor's first visit.
    private func visitAttribution(of row: CallRow) async throws -> Calltrace_Transcript_V1_VisitAttribution {
        let (visit, touch, first) = try await rules.websites.attribution(of: row)
        guard let touch else { return .init() }
        return .with {
            $0.visitID = visit?.id ?? ""; $0.websiteID = visit?.websiteID ?? ""
            $0.landingPath = touch.landingPath; $0.referrerHost = touch.referrerHost; $0.utmSource = touch.utmSource
            $0.utmMedium = touch.utmMedium; $0.utmCampaign = touch.utmCampaign; $0.utmTerm = touch.utmTerm
            $0.clickIDKinds = (visit?.clickIDKinds ?? "").split(separator: ",").map(String.init)
            $0.firstUtmCampaign = first?.utmCampaign ?? ""; $0.firstLandingPath = first?.landingPath ?? ""
        }
    }

    func listCalls(_ request: Calltrace_Transcript_V1_ListCallsRequest, actor _: String, context: ServerContext) async throws -> Calltrace_Transcript_V1_ListCallsResponse {
        // Compliance lists as itself, for its exports (numbers masked: it exports each call through ExportCall).
        let page = try await rules.list(org: request.orgID, try Self.listing(request), pageSize: Int(request.pageSize),
                                        pageToken: request.pageToken)
        let full = context.peer.kind == .service ? false : await mayReadTranscripts(context, org: request.orgID)
        let calls = try page.rows.map { try proto($0, withNumber: full) }
        return .with { $0.calls = calls; $0.nextPageToken = page.next }
    }

    /// The feed of the web gateway's outgoing webhooks, under the subscriber's token.
    func listCallEvents(_ request: Calltrace_Transcript_V1_ListCallEventsRequest, principal _: Principal, context: ServerContext) async throws
        -> Calltrace_Transcript_V1_ListCallEventsResponse {
        let page = try await rules.events(org: request.orgID, after: request.afterSequence, limit: request.limit)
        return .with {
            $0.events = page.events.map { event in
                .with {
                    $0.sequence = UInt64(event.sequence); $0.kind = .init(rawValue: event.kind) ?? .unspecified
                    $0.callID = event.callID; $0.occurredAtUnixMs = event.occurredAt
                }
            }
            $0.nextAfterSequence = page.next
            $0.more = page.more
            $0.latestSequence = page.latest
        }
    }

    func markCallOutcome(_ request: Calltrace_Transcript_V1_MarkCallOutcomeRequest, principal who: Principal, context: ServerContext) async throws
        -> Calltrace_Transcript_V1_MarkCallOutcomeResponse {
        let row = try await rules.mark(OutcomeMark(org: request.orgID, callID: request.callID, enquiry: request.enquiry, practiceArea: request.practiceArea,
                                                   matterOpened: request.matterOpened, matterReference: request.matterReference), by: who.actor)
        let full = await mayReadTranscripts(context, org: request.orgID)
        let call = try proto(row, withNumber: full)
        return .with { $0.call = call }
    }

    func attributionReport(_ request: Calltrace_Transcript_V1_AttributionReportRequest, principal _: Principal, context: ServerContext) async throws
        -> Calltrace_Transcript_V1_AttributionReportResponse {
        let grouping: AttributionGrouping = switch request.groupBy {
        case .channel: .channel
        case .campaign: .campaign
        case .utmCampaign: .utmCampaign
        case .keyword: .keyword
        case .landingPage: .landingPage
        case .referrer: .referrer
        default: .source
        }
        let report = try await rules.attribution(org: request.orgID, from: request.fromUnixMs, before: request.beforeUnixMs, by: grouping)
        func row(_ line: AttributionReport.Line, total: Bool = false) -> Calltrace_Transcript_V1_AttributionRow {
            .with {
                // The total row is labelled "total" whatever the grouping (as a channel it read "unspecified").
                $0.key = grouping == .channel && !total ? Self.channelName(Int(line.key) ?? 0) : line.key
                $0.noVisit = line.noVisit
                $0.calls = UInt64(line.calls); $0.uniqueCallers = UInt64(line.uniqueCallers); $0.answered = UInt64(line.answered)
                $0.missed = UInt64(line.missed); $0.newEnquiries = UInt64(line.newEnquiries); $0.mattersOpened = UInt64(line.mattersOpened)
                $0.conversionRate = line.conversionRate; $0.firstTouchMatters = UInt64(line.firstTouch); $0.lastTouchMatters = UInt64(line.lastTouch)
                $0.suggestedNewEnquiries = UInt64(line.suggestedNewEnquiries)
            }
        }
        return .with {
            $0.rows = report.lines.map { row($0) }; $0.total = row(report.total, total: true)
            $0.poolCalls = UInt64(report.poolCalls); $0.joinedCalls = UInt64(report.joinedCalls)
        }
    }

    func findCallsByCaller(_ request: Calltrace_Transcript_V1_FindCallsByCallerRequest, context: ServerContext) async throws
        -> Calltrace_Transcript_V1_FindCallsByCallerResponse {
        try OrganizationID.validate(request.orgID)
        context.annotate(org: request.orgID)
        let found = try await rules.calls(org: request.orgID, callerNumber: request.phoneNumber)
        return .with {
            $0.calls = found.map { call in
                .with { $0.callID = call.id; $0.recordingID = call.recordingID; $0.startedAtUnixMs = call.startedAt; $0.transcribed = call.transcribed }
            }
        }
    }

    /// Media's question before it takes a recording: a call started in this organisation, to be recorded.
    func confirmRecordingCall(_ request: Calltrace_Transcript_V1_ConfirmRecordingCallRequest, context: ServerContext) async throws
        -> Calltrace_Transcript_V1_ConfirmRecordingCallResponse {
        try OrganizationID.validate(request.orgID)
        context.annotate(org: request.orgID)
        try await rules.confirmRecording(org: request.orgID, callID: request.callID)
        return .init()
    }

    /// Compliance's step of a call's deletion across the services (the route admits no one else).
    func deleteCall(_ request: Calltrace_Transcript_V1_DeleteCallRequest, context: ServerContext) async throws -> Calltrace_Transcript_V1_DeleteCallResponse {
        try OrganizationID.validate(request.orgID)
        context.annotate(org: request.orgID)
        try await rules.delete(request.callID, org: request.orgID, by: context.peerActor)
        return .init()
    }

    func purgeCalls(_ request: Calltrace_Transcript_V1_PurgeCallsRequest, context: ServerContext) async throws -> Calltrace_Transcript_V1_PurgeCallsResponse {
        try OrganizationID.validate(request.orgID)
        context.annotate(org: request.orgID)
        let purged = try await rules.purge(org: request.orgID, startedBefore: request.startedBeforeUnixMs, limit: Int(request.maxCount),
                                           by: context.peerActor)
        return .with { $0.purged = UInt32(purged.purged); $0.more = purged.more }
    }

    func purgeTranscripts(_ request: Calltrace_Transcript_V1_PurgeTranscriptsRequest, context: ServerContext) async throws
        -> Calltrace_Transcript_V1_PurgeTranscriptsResponse {
        try OrganizationID.validate(request.orgID)
        context.annotate(org: request.orgID)
        let purged = try await rules.purgeTranscripts(org: request.orgID, startedBefore: request.startedBeforeUnixMs, limit: Int(request.maxCount),
                                                      by: context.peerActor)
        return .with { $0.purged = UInt32(purged.purged); $0.more = purged.more }
    }

    func purgeOrganisation(_ request: Calltrace_Transcript_V1_PurgeOrganisationRequest, context: ServerContext) async throws
        -> Calltrace_Transcript_V1_PurgeOrganisationResponse {
        try OrganizationID.validate(request.orgID)
        context.annotate(org: request.orgID)
        let purged = try await rules.purgeOrganisation(request.orgID, by: context.peerActor)
        return .with {
            $0.callsPurged = UInt32(purged.calls); $0.trackingNumbersPurged = UInt32(purged.trackingNumbers)
            $0.suppressionsPurged = UInt32(purged.suppressions)
        }
    }

    func recordMatter(_ request: Calltrace_Transcript_V1_RecordMatterRequest, context: ServerContext) async throws
        -> Calltrace_Transcript_V1_RecordMatterResponse {
        try OrganizationID.validate(request.orgID)
        context.annotate(org: request.orgID)
        try await rules.recordMatter(request.callID, org: request.orgID, reference: request.matterReference, by: context.peerActor)
        return .init()
    }

    func exportCall(_ request: Calltrace_Transcript_V1_ExportCallRequest, context: ServerContext) async throws -> Calltrace_Transcript_V1_ExportCallResponse {
        try OrganizationID.validate(request.orgID)
        context.annotate(org: request.orgID)
        let row = try await rules.call(request.callID, org: request.orgID)
        let reading = try await transcripts.transcript(org: request.orgID, callID: request.callID)
        let export = try CallExport(call: try proto(row, withNumber: true), reading: reading)
        try await rules.repository.write { [outbox = rules.outbox] tx in
            try outbox.record(AuditRecord(org: request.orgID, actor: context.peerActor, action: .callExported,
                                          resource: .call(request.callID), outcome: .success), in: tx.connection)
        }
        return .with { $0.json = export.json; $0.text = export.text }
    }

    // MARK: Helpers

    /// The listing a request asks for; an unknown direction or outcome is refused.
    static func listing(_ request: Calltrace_Transcript_V1_ListCallsRequest) throws -> CallListing {
        guard Calltrace_Transcript_V1_Direction.allCases.contains(request.direction),
              request.outcomes.allSatisfy({ Calltrace_Transcript_V1_Outcome.allCases.contains($0) }) else {
            throw DomainError.invalid("direction or outcomes holds an unknown value")
        }
        return CallListing(from: request.startedFromUnixMs == 0 ? nil : request.startedFromUnixMs,
                           before: request.startedBeforeUnixMs == 0 ? nil : request.startedBeforeUnixMs,
                           source: request.source.isEmpty ? nil : request.source,
                           direction: request.direction == .unspecified ? nil : request.direction,
                           outcomes: Set(request.outcomes), unmarkedOnly: request.unmarkedOnly)
    }

    /// Whether the caller may see numbers in full: users and operators who also hold transcripts.read
    /// (a second check, beyond the permission the method declares).
    private func mayReadTranscripts(_ context: ServerContext, org: String) async -> Bool {
        (try? await context.principal(in: org, may: .transcriptsRead, via: authorizer)) != nil
    }

    func proto(_ row: CallRow, withNumber: Bool) throws -> Calltrace_Transcript_V1_Call {
        let number = try rules.callerNumber(of: row)
        let reference = withNumber ? try rules.matterReference(of: row) : ""
        return .with {
            $0.callID = row.id; $0.orgID = row.org; $0.trackingNumber = row.trackingNumber; $0.source = row.source
            $0.channel = .init(rawValue: row.channel) ?? .other; $0.campaign = row.campaign
            if withNumber { $0.callerNumber = number }
            $0.callerNumberMasked = number.isEmpty ? "withheld" : PhoneNumber.masked(number)
            $0.direction = .init(rawValue: row.direction) ?? .unspecified; $0.startedAtUnixMs = row.startedAt
            $0.answeredAtUnixMs = row.answeredAt; $0.endedAtUnixMs = row.endedAt; $0.durationMs = UInt64(max(0, row.durationMs))
            $0.outcome = .init(rawValue: row.outcome) ?? .unspecified; $0.recordingID = row.recordingID; $0.callbackOf = row.callbackOf
            $0.recorded = row.recorded; $0.enquiry = .init(rawValue: row.enquiry) ?? .unspecified; $0.matterOpened = row.matterOpened
            $0.matterReference = reference; $0.practiceArea = .init(rawValue: row.practiceArea) ?? .unspecified
            $0.visitJoin = .init(rawValue: row.visit.join) ?? .unspecified
            $0.suggestedEnquiry = .init(rawValue: row.suggestedEnquiry) ?? .unspecified
            $0.suggestedPracticeArea = .init(rawValue: row.suggestedPracticeArea) ?? .unspecified
        }
    }

    static func channelName(_ raw: Int) -> String {
        let name = "\(Calltrace_Transcript_V1_Channel(rawValue: raw) ?? .unspecified)"
        var dashed = ""
        for character in name {
            if character.isUppercase { dashed += "-" + character.lowercased() } else { dashed.append(character) }
        }
        return dashed
    }
}
