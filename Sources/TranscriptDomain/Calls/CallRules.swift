import CallTraceKeys
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import Foundation

/// A call's start as the telephony gateway reports it (the rules' input, whatever carried it).
struct CallStart: Sendable {
    var callID: String
    /// As dialled, in any common format.
    var trackingNumber: String
    var callerNumber: String
    var direction: Calltrace_Transcript_V1_Direction
    /// 0: now.
    var startedAt: Int64
    /// The call this one returns; empty for none.
    var callbackOf: String
    /// The organisation the gateway's books say holds the number at the provider; empty: unknown.
    var expectedOrg = ""
}

/// A tracking number given to a marketing source of an organisation, from a time on.
struct NumberAssignment: Sendable {
    var org: String
    /// In any common format.
    var number: String
    var source: String
    var channel: Calltrace_Transcript_V1_Channel
    var campaign: String
    /// Read to callers before recording, instead of the firm's; empty for the firm's.
    var notice: String
    /// 0: now.
    var effectiveFrom: Int64
}

/// What the firm marks on a call: whether it was a new enquiry, its practice area, whether a
/// matter was opened and under which reference.
struct OutcomeMark: Sendable {
    var org: String
    var callID: String
    var enquiry: Calltrace_Transcript_V1_Enquiry
    var practiceArea: Calltrace_Transcript_V1_PracticeArea
    var matterOpened: Bool
    var matterReference: String
}

/// A call's end as the telephony gateway reports it.
struct CallCompletion: Sendable {
    var org: String
    var callID: String
    var outcome: Calltrace_Transcript_V1_Outcome
    /// 0: not answered.
    var answeredAt: Int64
    var endedAt: Int64
    var durationMs: UInt64
    /// The call's recording, when the gateway already knows it; empty for none.
    var recordingID: String
}

/// Transcript's rules for tracking numbers, call records, outcomes, attribution, subject search
/// and suppression (P2, P13). A caller's number is normalised to E.164, sealed under the
/// organisation's key and indexed blind; it is never stored, logged or put in an error in clear.
struct CallRules: Sendable {
    let repository: any CallRepository
    let keys: KeyRing
    let outbox: AuditOutbox
    let clock: any WallClock
    /// Compliance: whether the organisation may record yet, and what the caller is told.
    let notices: any CallNoticeSource
    /// Durable jobs, queued in the transaction of what they follow (alerts about calls).
    let jobs: JobQueue
    /// Each call's own keys: its caller data and its transcript, destroyed with them.
    var callKeys: CallKeys { CallKeys(keys: keys) }
    /// Website attribution over the same store (issue 32).
    var websites: WebsiteRules { WebsiteRules(repository: repository, keys: keys, outbox: outbox, clock: clock) }

    /// E.164 of a number in any common format; the error never repeats the number.
    static func e164(_ raw: String, field: String) throws -> String {
        guard let number = PhoneNumber.e164(raw) else { throw DomainError.invalid("\(field) is not a phone number") }
        return number
    }

    // MARK: Tracking numbers

    func assign(_ request: NumberAssignment, by actor: String) async throws -> TrackingAssignment {
        let org = request.org
        let number = try Self.e164(request.number, field: "number")
        let source = try DomainText.line(request.source, "source", max: 100, required: true)
        let campaign = try DomainText.line(request.campaign, "campaign", max: 100)
        let notice = try DomainText.line(request.notice, "notice", max: 500)
        guard request.channel != .unspecified, Calltrace_Transcript_V1_Channel.allCases.contains(request.channel) else {
            throw DomainError.invalid("channel is required (google-ads, paid-social, organic, directory, referral, print, email or other)")
        }
        let now = clock.nowUnixMs
        let from = request.effectiveFrom == 0 ? now : request.effectiveFrom
        // Calls are routed by the assignment in force when they started: one that began in the
        // past would take calls another firm received (and let this one read their callers).
        guard from >= now else { throw DomainError.invalid("effective_from cannot be in the past (0: from now)") }
        try keys.createKeys(for: org)
        return try await repository.write { [outbox] tx in
            if let ended = try tx.lastTenureEnd(of: number, otherThan: org), from < ended {
                throw DomainError.wrongState("tracking number \(number) was another organisation's until a later time; effective_from must be after it")
            }
            if let current = try tx.currentAssignment(of: number) {
                guard current.org == org else {
                    throw DomainError.alreadyExists("tracking number \(number) belongs to another organisation until it releases it")
                }
                guard from > current.from else {
                    throw DomainError.wrongState("effective_from must be after the number's current assignment began")
                }
                try tx.endAssignment(current.id, at: from)
            }
            let assignment = TrackingAssignment(id: "tn_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""),
                                                no: try tx.nextAssignmentNo(), number: number,
                                                org: org, source: source, channel: request.channel.rawValue, campaign: campaign, notice: notice,
                                                from: from, until: nil)
            try tx.insert(assignment)
            try outbox.record(AuditRecord(org: org, actor: actor, action: .trackingNumberAssigned, resource: .trackingNumber(number),
                                          outcome: .success, detail: "source: \(source)"), in: tx.connection)
            return assignment
        }
    }

    func release(number raw: String, org: String, by actor: String) async throws {
        let number = try Self.e164(raw, field: "number")
        let now = clock.nowUnixMs
        try await repository.write { [outbox] tx in
            guard let current = try tx.currentAssignment(of: number), current.org == org else {
                throw DomainError.notFound("tracking number \(number) is not in use by organisation \(org)")
            }
            try tx.endAssignment(current.id, at: max(now, current.from + 1))
            // Its routing goes with it: whoever takes the number next starts without the firm's phones.
            try tx.deleteRouting(org: org, number: number)
            // And it leaves the firm's website pools: its visitors are never shown a number another firm may take.
            try tx.removeFromPools(number, org: org, at: now)
            try outbox.record(AuditRecord(org: org, actor: actor, action: .trackingNumberReleased, resource: .trackingNumber(number),
                                          outcome: .success), in: tx.connection)
        }
    }

    func trackingNumbers(org: String, includeHistory: Bool) async throws -> [TrackingAssignment] {
        try await repository.read { tx in try tx.assignments(org: org, includeHistory: includeHistory) }
    }

    // MARK: Calls

    struct Started: Sendable {
        let org: String
        let record: Bool
        let notice: String
        /// Why not, when not recording.
        let reason: String
        /// The number's marketing source.
        let source: String
        /// The caller is on the firm's block list: nothing was stored.
        var blocked = false
        /// How to connect an inbound call (nil for outbound calls).
        var routing: CallRouting?
        /// Whether the routing's office hours include the call's start (false for outbound calls).
        var officeOpen = false
    }

    /// A call begins: its organisation and source from the tracking number's assignment at the
    /// time, the caller sealed and indexed, and whether to record: not for a suppressed caller,
    /// nor before the organisation accepted the current processing agreement (compliance
    /// says, with the notice for the kind of call; unreachable: UNAVAILABLE, nothing stored).
    /// An inbound call also gets the number's routing and whether the office is open at its
    /// start. An inbound caller on the firm's block list is answered `blocked` before compliance
    /// is asked, and nothing is stored (no call, no audit event, no key): a blocked caller costs
    /// nothing. A retried start (a call already stored) answers as the first did.
    func start(_ request: CallStart, by actor: String) async throws -> Started {
        try CallID.validate(request.callID)
        if !request.callbackOf.isEmpty { try CallID.validate(request.callbackOf, field: "callback_of") }
        let tracking = try Self.e164(request.trackingNumber, field: "tracking_number")
        // nil: the caller withheld their number (they are still connected, as the caller of this call alone).
        let caller = PhoneNumber.isWithheld(request.callerNumber) ? nil : try Self.e164(request.callerNumber, field: "caller_number")
        guard request.direction != .unspecified, Calltrace_Transcript_V1_Direction.allCases.contains(request.direction) else {
            throw DomainError.invalid("direction must be inbound or outbound")
        }
        let started = request.startedAt == 0 ? clock.nowUnixMs : request.startedAt
        let inbound = request.direction != .outbound
        struct Lookup: Sendable {
            let assignment: TrackingAssignment
            let transcribed: Bool
            let index: Data
            let blocked: Bool
            let routing: CallRouting?
        }
        let lookup: Lookup? = try await repository.read { [keys] tx in
            guard let assignment = try tx.assignment(of: tracking, at: started) else { return nil }
            let org = assignment.org
            // A withheld caller's index is this call's own: no list can name them, and they are not
            // all one caller in the reports.
            let index = try caller.map { try keys.blindIndex($0, kind: "e164", org: org) }
                ?? keys.blindIndex("withheld:\(request.callID)", kind: "withheld", org: org)
            // A call already stored (a retry) is answered as before, even if its caller was blocked since.
            let blocked = try caller != nil && inbound && tx.call(request.callID, org: org) == nil
                && tx.listedCaller(.blockedCallers, org: org, callerIndex: index) != nil
            var routing: CallRouting?
            if inbound { routing = try tx.routing(org: org, number: tracking).map { try Self.open($0, org: org, number: tracking, keys: keys) } ?? .unset }
            return Lookup(assignment: assignment, transcribed: try tx.settings(org: org)?.enabled ?? false, index: index, blocked: blocked, routing: routing)
        }
        // A number the gateway bought or imported for one firm, assigned here to another (before the
        // purchase, or after a release at the provider): no firm takes another's calls that way.
        guard let lookup, request.expectedOrg.isEmpty || lookup.assignment.org == request.expectedOrg else {
            throw DomainError.notFound("tracking number \(tracking) is not assigned to any organisation")
        }
        let assignment = lookup.assignment, index = lookup.index, routing = lookup.routing
        let org = assignment.org
        if lookup.blocked {
            return Started(org: org, record: false, notice: "", reason: "the caller is on the firm's block list", source: assignment.source, blocked: true)
        }
        let told: CallNotice
        do {
            told = try await notices.callNotice(org: org, kind: inbound ? .inboundGreeting : .callbackGreeting, transcribed: lookup.transcribed)
        } catch {
            // Recording without knowing the agreement was accepted would break P5, and storing
            // "not recorded" would outlive the outage: nothing is written; the gateway asks again.
            throw DomainError.unavailable("compliance cannot say now whether this firm may record; nothing was stored: retry StartCall")
        }
        // The firm's inbound-greeting switch first (off: no inbound notice at all), then a number's
        // own notice, then the firm's wording for the kind of call, else the template.
        let notice = inbound && told.text.isEmpty ? "" : assignment.notice.isEmpty ? told.text : assignment.notice
        @Sendable func answer(record: Bool, reason: String, startedAt: Int64) -> Started {
            Started(org: org, record: record, notice: record ? notice : "", reason: reason, source: assignment.source, routing: routing,
                    officeOpen: routing?.isOpen(atUnixMs: startedAt) ?? false)
        }
        return try await repository.write { [outbox, callKeys] tx in
            let suppressed = try tx.listedCaller(.suppressions, org: org, callerIndex: index) != nil
            let reason = suppressed ? "the caller objected to recording" : told.mayRecord ? "" : told.reason
            if let existing = try tx.call(request.callID, org: org) {
                // A retried StartCall: the same answer, nothing written twice.
                guard existing.callerIndex == index else {
                    throw DomainError.alreadyExists("call \(request.callID) was started with another caller")
                }
                return answer(record: existing.recorded, reason: existing.recorded ? "" : reason.isEmpty ? "not recorded when the call started" : reason,
                              startedAt: existing.startedAt)
            }
            if !request.callbackOf.isEmpty, try tx.call(request.callbackOf, org: org) == nil {
                throw DomainError.notFound("callback_of: call \(request.callbackOf) not found in organisation \(org)")
            }
            let record = reason.isEmpty
            // Sealed in the transaction: the call's key is made only for a call that is stored.
            let sealed = try callKeys.seal(Data((caller ?? "").utf8), org: org, call: request.callID, .caller, table: "calls", column: "caller_number")
            // An inbound call joins the website visit that held its number when it started (issue 32).
            let visit = inbound ? try WebsiteRules.join(number: tracking, at: started, org: org, in: tx) : VisitLink()
            try tx.insert(CallRow(id: request.callID, org: org, trackingNumber: tracking, source: assignment.source, channel: assignment.channel,
                                  campaign: assignment.campaign, sealedCaller: sealed, callerIndex: index,
                                  callerNo: try tx.callerNo(org: org, callerIndex: index), assignmentNo: assignment.no, direction: request.direction.rawValue,
                                  startedAt: started, callbackOf: request.callbackOf, recorded: record, visit: visit))
            try outbox.record(AuditRecord(org: org, actor: actor, action: .callStarted, resource: .call(request.callID),
                                          outcome: .success, detail: record ? "" : "not recorded: \(reason)"), in: tx.connection)
            return answer(record: record, reason: reason, startedAt: started)
        }
    }

    func complete(_ request: CallCompletion, by actor: String) async throws {
        try CallID.validate(request.callID)
        if !request.recordingID.isEmpty { try CallID.validate(request.recordingID, field: "recording_id") }
        guard request.outcome != .unspecified, Calltrace_Transcript_V1_Outcome.allCases.contains(request.outcome) else {
            throw DomainError.invalid("outcome must be answered, missed, voicemail or abandoned")
        }
        guard request.endedAt == 0 || request.answeredAt == 0 || request.endedAt >= request.answeredAt else {
            throw DomainError.invalid("ended_at is before answered_at")
        }
        let org = request.org
        let now = clock.nowUnixMs
        try await repository.write { [self] tx in
            guard var call = try tx.call(request.callID, org: org) else {
                throw DomainError.notFound("call \(request.callID) not found in organisation \(org)")
            }
            // The first completion is the event; a gateway's retry (CompleteCall is idempotent) is not another.
            let firstCompletion = call.outcome == 0
            call.answeredAt = request.answeredAt
            call.endedAt = request.endedAt
            call.durationMs = Int64(clamping: request.durationMs)
            call.outcome = request.outcome.rawValue
            if !request.recordingID.isEmpty { call.recordingID = request.recordingID }
            try tx.update(call)
            if firstCompletion {
                _ = try tx.appendEvent(org: org, kind: Calltrace_Transcript_V1_CallEventKind.callCompleted.rawValue, callID: call.id, at: now)
                // Whoever chose to hear of missed calls is told (a call back of the firm's own is not one).
                if CallAlert.missedOutcomes.contains(request.outcome), call.direction == Calltrace_Transcript_V1_Direction.inbound.rawValue {
                    try alert(.missed, about: call, in: tx.connection)
                }
            }
            try outbox.record(AuditRecord(org: org, actor: actor, action: .callCompleted, resource: .call(request.callID),
                                          outcome: .success), in: tx.connection)
        }
    }

    /// Whether a recording may be taken for the call: it was started in `org` (so the
    /// organisation is one a tracking number names, never one a request made up) and its caller
    /// did not object. NOT_FOUND or FAILED_PRECONDITION otherwise.
    func confirmRecording(org: String, callID: String) async throws {
        let row = try await call(callID, org: org)
        guard row.recorded else {
            throw DomainError.wrongState("call \(callID) is not to be recorded (its caller objected, or the firm had not accepted the processing agreement when it started)")
        }
    }

    func call(_ id: String, org: String) async throws -> CallRow {
        try CallID.validate(id)
        guard let row = try await repository.read({ tx in try tx.call(id, org: org) }) else {
            throw DomainError.notFound("call \(id) not found in organisation \(org)")
        }
        return row
    }

    /// A page of calls, newest first, and the next page's token (empty at the end).
    func list(org: String, _ listing: CallListing, pageSize: Int, pageToken: String) async throws
        -> (rows: [CallRow], next: String) {
        let limit = pageSize == 0 ? 100 : min(pageSize, 500)
        var after: (Int64, String)?
        if !pageToken.isEmpty {
            let parts = pageToken.split(separator: "/", maxSplits: 1)
            guard parts.count == 2, let time = Int64(parts[0]) else { throw DomainError.invalid("page_token is not one this service issued") }
            after = (time, String(parts[1]))
        }
        let bound = after
        let rows = try await repository.read { tx in try tx.calls(org: org, listing, after: bound, limit: limit + 1) }
        let page = Array(rows.prefix(limit))
        return (page, rows.count > limit ? page.last.map { "\($0.startedAt)/\($0.id)" } ?? "" : "")
    }

    func mark(_ request: OutcomeMark, by actor: String) async throws -> CallRow {
        try CallID.validate(request.callID)
        let reference = try DomainText.line(request.matterReference, "matter_reference", max: 64)
        guard reference.isEmpty || request.matterOpened else { throw DomainError.invalid("a matter_reference needs matter_opened") }
        guard Calltrace_Transcript_V1_Enquiry.allCases.contains(request.enquiry),
              Calltrace_Transcript_V1_PracticeArea.allCases.contains(request.practiceArea) else {
            throw DomainError.invalid("enquiry or practice_area is not a known value")
        }
        let org = request.org
        let sealed = reference.isEmpty ? nil
            : try callKeys.seal(Data(reference.utf8), org: org, call: request.callID, .caller, table: "calls", column: "matter_reference")
        return try await repository.write { [outbox] tx in
            guard var call = try tx.call(request.callID, org: org) else {
                throw DomainError.notFound("call \(request.callID) not found in organisation \(org)")
            }
            call.enquiry = request.enquiry.rawValue
            call.matterOpened = request.matterOpened
            call.sealedMatterReference = sealed
            call.practiceArea = request.practiceArea.rawValue
            try tx.update(call)
            try outbox.record(AuditRecord(org: org, actor: actor, action: .callOutcomeMarked, resource: .call(request.callID),
                                          outcome: .success), in: tx.connection)
            return call
        }
    }

    /// A matter file was made from the call (compliance's matter export, P14): the matter is
    /// recorded as opened with its reference; the firm's other marks stay as they were.
    func recordMatter(_ callID: String, org: String, reference raw: String, by actor: String) async throws {
        try CallID.validate(callID)
        let reference = try DomainText.line(raw, "matter_reference", max: 64, required: true)
        let sealed = try callKeys.seal(Data(reference.utf8), org: org, call: callID, .caller, table: "calls", column: "matter_reference")
        try await repository.write { [outbox] tx in
            guard var call = try tx.call(callID, org: org) else { throw DomainError.notFound("call \(callID) not found in organisation \(org)") }
            call.matterOpened = true
            call.sealedMatterReference = sealed
            try tx.update(call)
            try outbox.record(AuditRecord(org: org, actor: actor, action: .callMatterRecorded, resource: .call(callID), outcome: .success),
                              in: tx.connection)
        }
    }

    /// The caller's number in clear, for those allowed to see it.
    func callerNumber(of call: CallRow) throws -> String {
        String(decoding: try callKeys.open(call.sealedCaller, org: call.org, call: call.id, .caller, table: "calls", column: "caller_number"),
                         as: UTF8.self)
    }

    func matterReference(of call: CallRow) throws -> String {
        guard let sealed = call.sealedMatterReference else { return "" }
        return String(decoding: try callKeys.open(sealed, org: call.org, call: call.id, .caller, table: "calls", column: "matter_reference"),
                      as: UTF8.self)
    }

    // MARK: Attribution (P2)

    func attribution(org: String, from: Int64, before: Int64, by grouping: AttributionGrouping) async throws -> AttributionReport {
        guard from < before else { throw DomainError.invalid("from must be before before (a period of at least a millisecond)") }
        // The span is checked without subtracting: from -2^63 and before 2^63-1 overflow Int64.
        let span = before.subtractingReportingOverflow(from)
        guard !span.overflow, span.partialValue <= 400 * 86_400_000 else { throw DomainError.invalid("a report covers at most 400 days") }
        // The two halves of the period are scanned at once, each on its own read connection
        // (and its own snapshot), and merged in time order.
        let callers = try await repository.read { tx in Int(try tx.lastCallerNo(org: org)) + 1 }
        @Sendable func scan(_ from: Int64, _ before: Int64) async throws -> AttributionReport.Builder {
            try await repository.read { tx in
                var builder = AttributionReport.Builder(callers: callers, byVisit: grouping.byVisit)
                try tx.scanCalls(org: org, from: from, before: before, touches: grouping.byVisit) { builder.add($0) }
                return builder
            }
        }
        let middle = from + (before - from) / 2
        async let early = scan(from, middle)
        async let late = scan(middle, before)
        var builder = try await early
        builder.merge(later: try await late)
        let numbers = builder.keys
        if grouping.byVisit {
            let touches = try await repository.read { tx in try tx.touches(org: org, numbers: numbers) }
            // The value as the visit gave it: a label such as "(none)" could be a campaign's name too.
            return builder.report { no in
                guard let touch = touches[no] else { return "unknown" }
                return switch grouping {
                case .keyword: touch.utmTerm
                case .landingPage: touch.landingPath
                case .referrer: touch.referrerHost
                default: touch.utmCampaign
                }
            }
        }
        let assignments = try await repository.read { tx in try tx.assignments(org: org, numbers: numbers) }
        return builder.report { no in
            guard let assignment = assignments[no] else { return "unknown" }
            switch grouping {
            case .source: return assignment.source
            case .channel: return String(assignment.channel)
            case .campaign, .utmCampaign, .keyword, .landingPage, .referrer:
                return assignment.campaign.isEmpty ? "(no campaign)" : assignment.campaign
            }
        }
    }

    // MARK: Subject search (P13)

    func calls(org: String, callerNumber raw: String) async throws -> [CallerCall] {
        let number = try Self.e164(raw, field: "phone_number")
        guard try keys.hasKeys(for: org) else { return [] }
        let index = try keys.blindIndex(number, kind: "e164", org: org)
        return try await repository.read { tx in try tx.callerCalls(org: org, callerIndex: index) }
    }

    // MARK: Deletion (P9, P10, P11)

    func delete(_ id: String, org: String, by actor: String) async throws {
        try CallID.validate(id)
        try await repository.write { [outbox, callKeys] tx in
            guard try tx.deleteCall(id, org: org) else { throw DomainError.notFound("call \(id) not found in organisation \(org)") }
            try callKeys.destroy(org: org, calls: [id])
            try outbox.record(AuditRecord(org: org, actor: actor, action: .callDeleted, resource: .call(id), outcome: .success), in: tx.connection)
        }
        try await repository.checkpoint()
    }

    // The calls' keys are destroyed inside the transaction that deletes their rows: no other
    // write (a transcript stored, an analysis) can seal under a key between the rows' deletion
    // and the key's, and a key that cannot be destroyed rolls the deletion back, to be retried
    // whole. Should the commit itself fail after the keys went, the rows left are unreadable and
    // the retried deletion removes them. The log is checkpointed once committed.

    /// How long a sweep beside replicas leaves a key no call or transcript names: another
    /// replica's write makes its key a moment before the row sealed under it.
    static let sweepGrace: Duration = .seconds(3_600)

    /// The keys of calls (or transcripts) no longer stored — what a crash between a deletion's
    /// commit and its keys' destruction left — destroyed: at start-up, before serving, and
    /// daily. With `sparingSince` (Unix ms), keys made since then are left (writes in flight).
    /// The count.
    func sweepKeys(sparingSince cutoff: Int64? = nil) throws -> Int {
        let stored = try repository.storedCallsAndTranscripts()
        var orphans: [String: [String]] = [:]
        for (org, object) in try keys.objectKeyIDs(createdBefore: cutoff) where object.hasPrefix("call/") {
            let parts = object.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == 3, let part = CallKeys.Part(rawValue: String(parts[2])) else { continue }
            let id = "\(org)/\(parts[1])"
            if !(part == .caller ? stored.calls : stored.transcripts).contains(id) { orphans[org, default: []].append(object) }
        }
        for (org, objects) in orphans { try keys.destroyObjectKeys(org: org, objects: objects) }
        return orphans.values.reduce(0) { $0 + $1.count }
    }

    func purge(org: String, startedBefore cutoff: Int64, limit: Int, by actor: String) async throws -> (purged: Int, more: Bool) {
        let limit = limit == 0 ? 500 : min(limit, 500)
        let (batch, visits, more) = try await repository.write { [outbox, callKeys] tx in
            let ids = try tx.callIDs(org: org, startedBefore: cutoff, limit: limit + 1)
            let batch = Array(ids.prefix(limit))
            for id in batch { _ = try tx.deleteCall(id, org: org) }
            try callKeys.destroy(org: org, calls: batch)
            // Website visits expire with the calls they could have brought (issue 32).
            let visits = try tx.purgeVisits(org: org, lastSeenBefore: cutoff, limit: 2 * limit)
            if !batch.isEmpty || visits > 0 {
                try outbox.record(AuditRecord(org: org, actor: actor, action: .callsPurged, resource: .organisation(org), outcome: .success,
                                              detail: "calls=\(batch.count); visits=\(visits); started before \(cutoff)"), in: tx.connection)
            }
            return (batch, visits, ids.count > limit || visits == 2 * limit)
        }
        // The run's last batch: the marketing values (touches) no visit or call names any more go
        // too (issue 32: nothing of a visit outlives the retention).
        let touches = more ? 0 : try await purgeTouches(org: org)
        // Nothing deleted stays in the write-ahead log.
        if !batch.isEmpty || visits > 0 || touches > 0 { try await repository.checkpoint() }
        return (batch.count, more)
    }

    /// The touches are found on a read connection, so the reservations of the firm's visitors do
    /// not wait on a read of every visit and call; a visit made or renewed meanwhile (a call names
    /// only a visit's touches) may name one again, and the deletion spares those. A visit's time
    /// is taken before it waits for the writer: ten minutes' margin.
    private func purgeTouches(org: String) async throws -> Int {
        let seenSince = clock.nowUnixMs - 10 * 60 * 1000
        let unused = try await repository.read { tx in try tx.unusedTouches(org: org) }
        guard !unused.touches.isEmpty else { return 0 }
        return try await repository.write { tx in
            try stride(from: 0, to: unused.touches.count, by: 500).reduce(0) { deleted, first in
                deleted + (try tx.deleteTouches(Array(unused.touches[first..<min(first + 500, unused.touches.count)]), org: org,
                                                unlessNamedByVisitsAfter: unused.lastVisitNo, seenSince: seenSince))
            }
        }
    }

    /// Retention of transcripts and summaries (P9): the transcripts and analyses of up to `limit`
    /// calls started before `cutoff` deleted; the call records stay.
    func purgeTranscripts(org: String, startedBefore cutoff: Int64, limit: Int, by actor: String) async throws -> (purged: Int, more: Bool) {
        guard cutoff > 0 else { throw DomainError.invalid("name the cutoff (started_before_unix_ms)") }
        let limit = limit == 0 ? 500 : min(limit, 500)
        let (batch, more) = try await repository.write { [outbox, callKeys] tx in
            let ids = try tx.transcribedCallIDs(org: org, startedBefore: cutoff, limit: limit + 1)
            let batch = Array(ids.prefix(limit))
            for id in batch {
                _ = try tx.deleteTranscript(org: org, callID: id)
                _ = try tx.deleteAnalysis(org: org, callID: id)
            }
            try callKeys.destroy(org: org, calls: batch, [.transcript])
            if !batch.isEmpty {
                try outbox.record(AuditRecord(org: org, actor: actor, action: .transcriptsPurged, resource: .organisation(org), outcome: .success,
                                              detail: "calls=\(batch.count); started before \(cutoff)"), in: tx.connection)
            }
            return (batch, ids.count > limit)
        }
        if !batch.isEmpty { try await repository.checkpoint() }
        return (batch.count, more)
    }

    func purgeOrganisation(_ org: String, by actor: String) async throws -> PurgedOrganisation {
        let purged = try await repository.write { [outbox] tx in
            let purged = try tx.deleteAll(org: org)
            try outbox.record(AuditRecord(org: org, actor: actor, action: .organisationPurged, resource: .organisation(org), outcome: .success,
                                          detail: "calls=\(purged.calls); tracking_numbers=\(purged.trackingNumbers); suppressions=\(purged.suppressions); "
                                              + "blocked_callers=\(purged.blockedCallers); visits=\(purged.visits)"),
                              in: tx.connection)
            return purged
        }
        // Its key here goes last: any backup of its rows stays sealed for good.
        try keys.shred(org: org)
        return purged
    }

    // MARK: Suppression (P13)

    /// Adds a caller to the organisation's suppression list; their existing analyses are deleted.
    func suppress(org: String, number raw: String, reason: String, by actor: String) async throws -> Int {
        let entry = try listEntry(.suppressions, org: org, number: raw, reason: reason)
        return try await repository.write { [outbox] tx in
            if try tx.listedCaller(.suppressions, org: org, callerIndex: entry.callerIndex) == nil { try tx.insert(entry, into: .suppressions) }
            var deleted = 0
            for call in try tx.calls(org: org, callerIndex: entry.callerIndex) where try tx.deleteAnalysis(org: org, callID: call.id) { deleted += 1 }
            try outbox.record(AuditRecord(org: org, actor: actor, action: .callerSuppressed, resource: .suppression(Self.listID(entry.callerIndex)),
                                          outcome: .success, detail: "analyses deleted: \(deleted)"), in: tx.connection)
            return deleted
        }
    }

    func unsuppress(org: String, number raw: String, by actor: String) async throws {
        try await unlist(.suppressions, org: org, number: raw, by: actor, action: .callerUnsuppressed, resource: AuditResource.suppression)
    }

    // MARK: Block list (issue 31)

    /// Adds a caller to the firm's block list (again: nothing changes): their inbound calls are
    /// answered `blocked` by StartCall, and nothing of them is stored. Audited, never the number.
    func block(org: String, number raw: String, reason: String, by actor: String) async throws {
        let entry = try listEntry(.blockedCallers, org: org, number: raw, reason: reason)
        try await repository.write { [outbox] tx in
            if try tx.listedCaller(.blockedCallers, org: org, callerIndex: entry.callerIndex) == nil { try tx.insert(entry, into: .blockedCallers) }
            try outbox.record(AuditRecord(org: org, actor: actor, action: .callerBlocked, resource: .blockedCaller(Self.listID(entry.callerIndex)),
                                          outcome: .success), in: tx.connection)
        }
    }

    func unblock(org: String, number raw: String, by actor: String) async throws {
        try await unlist(.blockedCallers, org: org, number: raw, by: actor, action: .callerUnblocked, resource: AuditResource.blockedCaller)
    }

    // MARK: Lists of callers (suppression, the block list)

    /// A caller's entry for `list`: the number normalised, indexed and sealed, the reason (one
    /// line, at most 200 characters) sealed; the organisation's keys made if it had none.
    func listEntry(_ list: CallerList, org: String, number raw: String, reason: String) throws -> ListedCaller {
        let number = try Self.e164(raw, field: "phone_number")
        let reason = try DomainText.line(reason, "reason", max: 200)
        try keys.createKeys(for: org)
        let index = try keys.blindIndex(number, kind: "e164", org: org)
        let rowID = index.hexString
        return ListedCaller(org: org, callerIndex: index,
                            sealedNumber: try keys.seal(Data(number.utf8), org: org, table: list.rawValue, column: "caller_number", row: rowID),
                            sealedReason: try keys.seal(Data(reason.utf8), org: org, table: list.rawValue, column: "reason", row: rowID),
                            addedAt: clock.nowUnixMs)
    }

    /// Takes a caller off `list` (nothing to do when they are not on it), audited under `resource`.
    func unlist(_ list: CallerList, org: String, number raw: String, by actor: String, action: TranscriptAuditAction,
                resource: @escaping @Sendable (String) -> AuditResource) async throws {
        let number = try Self.e164(raw, field: "phone_number")
        guard try keys.hasKeys(for: org) else { return }
        let index = try keys.blindIndex(number, kind: "e164", org: org)
        try await repository.write { [outbox] tx in
            guard try tx.deleteListedCaller(list, org: org, callerIndex: index) else { return }
            try outbox.record(AuditRecord(org: org, actor: actor, action: action, resource: resource(Self.listID(index)), outcome: .success),
                              in: tx.connection)
        }
    }

    /// The callers on `list`, newest first, numbers masked.
    func listedCallers(_ list: CallerList, org: String) async throws -> [(masked: String, reason: String, addedAt: Int64)] {
        let rows = try await repository.read { tx in try tx.listedCallers(list, org: org) }
        return try rows.map { row in
            let rowID = row.callerIndex.hexString
            func open(_ sealed: Data, _ column: String) throws -> String {
                String(decoding: try keys.open(sealed, org: org, table: list.rawValue, column: column, row: rowID), as: UTF8.self)
            }
            return (PhoneNumber.masked(try open(row.sealedNumber, "caller_number")), try open(row.sealedReason, "reason"), row.addedAt)
        }
    }

    /// How the audit trail names a listed caller: the start of the blind index, never the number.
    static func listID(_ index: Data) -> String { String(index.hexString.prefix(16)) }

    /// Whether the call's caller is on the organisation's suppression list.
    func isSuppressed(_ call: CallRow) async throws -> Bool {
        try await repository.read { tx in try tx.listedCaller(.suppressions, org: call.org, callerIndex: call.callerIndex) != nil }
    }
}
