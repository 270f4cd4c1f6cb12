import CallTraceKeys
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import ComplianceDeadlines
import Foundation

/// Data-subject requests (P13): cases with the ICO deadline, the clock stopped while waiting
/// for clarification or proof of identity, an extension before the first deadline; locating a
/// subject's calls through transcript's blind index; erasure as deletions across services;
/// objection through transcript's suppression list. Every step is audited, with no phone
/// number or free text in the event.
struct SubjectRequestRules: Sendable {
    typealias Kind = Calltrace_Compliance_V1_SubjectRequestKind
    typealias Check = Calltrace_Compliance_V1_IdentityCheck
    typealias State = Calltrace_Compliance_V1_SubjectRequestState

    let repository: any ComplianceRepository
    let deletions: DeletionRules
    let bundles: BundleRules
    let keys: KeyRing
    let outbox: AuditOutbox
    let clock: any WallClock
    let holidays: BankHolidays

    var today: Day { Day.inUK(atUnixMs: clock.nowUnixMs) }

    // MARK: Deadlines

    /// The due date as things stand: a stopped clock counts its days so far.
    func dueDate(_ row: SubjectRequestRow) throws -> Day { try due(row).day }

    /// The due date and which bank holidays decided it.
    func due(_ row: SubjectRequestRow) throws -> (day: Day, decidedBy: String) {
        let running = row.pausedSince.map { max(0, today.ordinal - $0.ordinal) } ?? 0
        do {
            return try DeadlineEngine.due(received: row.receivedOn, nation: row.nation, extended: row.extended,
                                          pausedDays: row.pausedDays + running, holidays: holidays)
        } catch let error as DeadlineError {
            throw DomainError.wrongState(error.description)
        }
    }

    // MARK: Cases

    /// A request as the firm records it when it arrives (the rules' input, whatever carried it).
    struct Opening: Sendable {
        var org: String
        var kind: Calltrace_Compliance_V1_SubjectRequestKind
        /// The numbers the person called from, in any common format.
        var phoneNumbers: [String]
        /// When it was received, `YYYY-MM-DD`.
        var receivedOn: String
        /// Whose bank holidays count (`england-and-wales`, `scotland`, `northern-ireland`).
        var nation: String
        var notes: String
    }

    func open(_ request: Opening, by actor: String) async throws -> SubjectRequestRow {
        let org = request.org
        try OrganizationID.validate(org)
        guard [.access, .erasure, .objection].contains(request.kind) else {
            throw DomainError.invalid("kind must be access, erasure or objection")
        }
        guard (1...10).contains(request.phoneNumbers.count) else { throw DomainError.invalid("name 1 to 10 phone numbers") }
        var numbers: [String] = []
        for (index, raw) in request.phoneNumbers.enumerated() {
            guard let number = PhoneNumber.e164(raw) else { throw DomainError.invalid("phone_numbers[\(index)] is not a phone number") }
            if !numbers.contains(number) { numbers.append(number) }
        }
        guard let received = Day(request.receivedOn) else { throw DomainError.invalid("received_on must be a date, YYYY-MM-DD") }
        guard received <= today else { throw DomainError.invalid("received_on \(received) is in the future") }
        guard let nation = Nation(rawValue: request.nation) else {
            throw DomainError.invalid("nation must be one of \(Nation.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let notes = try DomainText.paragraph(request.notes, "notes", max: 2000)
        let row = SubjectRequestRow(id: "sar_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""), org: org,
                                    kind: request.kind.rawValue, receivedOn: received, nation: nation, identityCheck: Check.pending.rawValue,
                                    state: State.open.rawValue, openedBy: actor, openedAt: clock.nowUnixMs,
                                    details: .init(phoneNumbers: numbers, notes: notes))
        _ = try dueDate(row)  // the bank holidays known must cover it
        let count = numbers.count
        try keys.createKeys(for: org)
        let sealed = try seal(row)
        try await repository.write { [outbox] tx in
            try tx.insert(row, sealedDetails: sealed)
            try outbox.record(AuditRecord(org: org, actor: actor, action: .subjectRequestOpened, resource: .subjectRequest(row.id),
                                          outcome: .success, detail: "kind=\(Self.name(request.kind)); numbers=\(count); received \(received)"),
                              in: tx.connection)
        }
        return row
    }

    func request(_ id: String, org: String) async throws -> SubjectRequestRow {
        try OrganizationID.validate(org)
        guard let found = try await repository.read({ tx in try tx.subjectRequest(id, org: org) }) else {
            throw DomainError.notFound("subject request \(id.prefix(64)) not found in organisation \(org)")
        }
        return try opened(found)
    }

    enum View { case open, all, overdue, dueWithin(Int) }

    /// Cases in `view`, soonest due first.
    func list(org: String, view: View) async throws -> [(row: SubjectRequestRow, due: Day)] {
        try OrganizationID.validate(org)
        let includeClosed = if case .all = view { true } else { false }
        let rows = try await repository.read { tx in try tx.subjectRequests(org: org, includeClosed: includeClosed) }
        let today = self.today
        return try rows.map { found in
            let row = try opened(found)
            return (row, try dueDate(row))
        }.filter { row, due in
            switch view {
            case .open, .all: true
            case .overdue: due < today
            case .dueWithin(let days): today <= due && due <= today.adding(days: days)
            }
        }.sorted { ($0.due, $0.row.openedAt) < ($1.due, $1.row.openedAt) }
    }

    func pause(_ id: String, org: String, reason: String, by actor: String) async throws -> SubjectRequestRow {
        let reason = try DomainText.line(reason, "reason", max: 200, required: true)
        return try await change(id, org: org, by: actor, action: .subjectRequestPaused) { row in
            guard row.state == State.open.rawValue else { throw DomainError.wrongState("only an open case's clock can be stopped") }
            row.state = State.paused.rawValue
            row.pausedSince = today
            row.details.pauseReason = reason
        }
    }

    func resume(_ id: String, org: String, by actor: String) async throws -> SubjectRequestRow {
        try await change(id, org: org, by: actor, action: .subjectRequestResumed) { row in
            guard row.state == State.paused.rawValue else { throw DomainError.wrongState("the case's clock is not stopped") }
            resume(&row)
        }
    }

    private func resume(_ row: inout SubjectRequestRow) {
        row.pausedDays += max(0, today.ordinal - (row.pausedSince ?? today).ordinal)
        row.pausedSince = nil
        row.state = State.open.rawValue
        row.details.pauseReason = ""
    }

    func extend(_ id: String, org: String, reason: String, by actor: String) async throws -> SubjectRequestRow {
        let reason = try DomainText.line(reason, "reason", max: 200, required: true)
        return try await change(id, org: org, by: actor, action: .subjectRequestExtended) { row in
            guard row.state != State.closed.rawValue else { throw DomainError.wrongState("the case is closed") }
            guard !row.extended else { throw DomainError.wrongState("the case is already extended") }
            let due = try dueDate(row)
            guard today <= due else {
                throw DomainError.wrongState("an extension must be made by the first due date (\(due)); it has passed")
            }
            row.extended = true
            row.details.extensionReason = reason
        }
    }

    func recordIdentityCheck(_ id: String, org: String, result: Check, by actor: String) async throws -> SubjectRequestRow {
        guard [.pending, .passed, .failed].contains(result) else { throw DomainError.invalid("result must be pending, passed or failed") }
        return try await change(id, org: org, by: actor, action: .subjectRequestIdentityChecked, detail: "result=\(result)") { row in
            guard row.state != State.closed.rawValue else { throw DomainError.wrongState("the case is closed") }
            row.identityCheck = result.rawValue
            // Proof arriving starts the clock again.
            if result == .passed && row.state == State.paused.rawValue { resume(&row) }
        }
    }

    /// The subject's calls, found by each of their numbers.
    func locate(_ id: String, org: String, services: any CallDataServices, by actor: String) async throws -> [FoundCall] {
        let row = try await request(id, org: org)
        let calls = try await Self.calls(of: row, services: services)
        try await audit(org: org, actor: actor, action: .subjectRequestLocated, id: id, detail: "calls found: \(calls.count)")
        return calls
    }

    static func calls(of row: SubjectRequestRow, services: any CallDataServices) async throws -> [FoundCall] {
        var calls: [String: FoundCall] = [:]
        for number in row.details.phoneNumbers {
            for call in try await services.calls(org: row.org, callerNumber: number) { calls[call.callID] = call }
        }
        return calls.values.sorted { ($0.startedAt, $0.callID) < ($1.startedAt, $1.callID) }
    }

    /// Erasure: a deletion of every call found, queued with the case in one transaction; the
    /// last deletion to finish confirms the erasure (at once when nothing was found).
    func erase(_ id: String, org: String, services: any CallDataServices, by actor: String) async throws -> SubjectRequestRow {
        let row = try await request(id, org: org)
        try Self.mayAct(on: row, kind: .erasure)
        let calls = try await Self.calls(of: row, services: services)
        let now = clock.nowUnixMs
        return try await change(id, org: org, by: actor, action: .subjectRequestErasureStarted, detail: "calls: \(calls.count)") { row, tx in
            try Self.mayAct(on: row, kind: .erasure)
            if row.erasureStartedAt == 0 { row.erasureStartedAt = now }
            for call in calls {
                _ = try deletions.queue(call.callID, org: org, reason: "subject erasure", request: id, by: actor, in: tx)
            }
            if try tx.deletions(request: id).allSatisfy({ $0.finishedAt != 0 }) && row.erasureConfirmedAt == 0 {
                row.erasureConfirmedAt = now
            }
        }
    }

    /// Objection: every number on transcript's suppression list (existing analyses deleted).
    func object(_ id: String, org: String, services: any CallDataServices, by actor: String) async throws -> (row: SubjectRequestRow, analyses: Int) {
        let row = try await request(id, org: org)
        try Self.mayAct(on: row, kind: .objection)
        var analyses = 0
        for number in row.details.phoneNumbers {
            analyses += try await services.suppress(org: org, number: number, reason: "objection, subject request \(id)")
        }
        let now = clock.nowUnixMs
        let changed = try await change(id, org: org, by: actor, action: .subjectRequestObjectionApplied,
                                       detail: "numbers suppressed: \(row.details.phoneNumbers.count); analyses deleted: \(analyses)") { row in
            row.objectionAppliedAt = now
        }
        return (changed, analyses)
    }

    /// Access: the subject's bundle, built as a durable job (or the one already building or ready).
    func buildAccessBundle(_ id: String, org: String, by actor: String) async throws -> BundleRow {
        let row = try await request(id, org: org)
        try Self.mayAct(on: row, kind: .access)
        return try await repository.write { [bundles, outbox] tx in
            let bundle = try bundles.queue(.subjectAccess, org: org, subject: id, by: actor, in: tx)
            try outbox.record(AuditRecord(org: org, actor: actor, action: .subjectRequestBundleRequested, resource: .subjectRequest(id),
                                          outcome: .success, detail: "bundle \(bundle.id)"), in: tx.connection)
            return bundle
        }
    }

    func close(_ id: String, org: String, outcome: String, by actor: String) async throws -> SubjectRequestRow {
        let outcome = try DomainText.paragraph(outcome, "outcome", max: 2000, required: true)
        let now = clock.nowUnixMs
        return try await change(id, org: org, by: actor, action: .subjectRequestClosed) { row, tx in
            guard row.state != State.closed.rawValue else { throw DomainError.wrongState("the case is already closed") }
            let pending = try tx.deletions(request: id).filter { $0.finishedAt == 0 }.count
            guard pending == 0 else {
                throw DomainError.wrongState("the erasure is still running (\(pending) deletions waiting); close the case when it is confirmed")
            }
            if row.state == State.paused.rawValue { resume(&row) }
            row.state = State.closed.rawValue
            row.closedAt = now
            row.details.outcome = outcome
        }
    }

    /// Deletions queued for the case, and how many are done.
    func deletionProgress(_ id: String) async throws -> (ids: [String], done: Int) {
        let rows = try await repository.read { tx in try tx.deletions(request: id) }
        return (rows.map(\.id), rows.filter { $0.finishedAt != 0 }.count)
    }

    // MARK: Helpers

    static func mayAct(on row: SubjectRequestRow, kind: Kind) throws {
        guard row.kind == kind.rawValue else {
            throw DomainError.wrongState("the case is a request for \(name(Kind(rawValue: row.kind) ?? .unspecified)), not \(name(kind))")
        }
        guard row.state != State.closed.rawValue else { throw DomainError.wrongState("the case is closed") }
        guard row.identityCheck == Check.passed.rawValue else {
            throw DomainError.wrongState("record a passed identity check first (calltrace requests identity … --result passed)")
        }
    }

    static func name(_ kind: Kind) -> String {
        switch kind {
        case .access: "access"
        case .erasure: "erasure"
        case .objection: "objection"
        default: "unspecified"
        }
    }

    private func change(_ id: String, org: String, by actor: String, action: ComplianceAuditAction, detail: String = "",
                        _ body: @escaping @Sendable (inout SubjectRequestRow) throws -> Void) async throws -> SubjectRequestRow {
        try await change(id, org: org, by: actor, action: action, detail: detail) { row, _ in try body(&row) }
    }

    /// Reads the case, applies `body`, writes it back with its audit event, in one transaction.
    private func change(_ id: String, org: String, by actor: String, action: ComplianceAuditAction, detail: String = "",
                        _ body: @escaping @Sendable (inout SubjectRequestRow, any ComplianceTransaction) throws -> Void) async throws
        -> SubjectRequestRow {
        try OrganizationID.validate(org)
        return try await repository.write { [self] tx in
            guard let found = try tx.subjectRequest(id, org: org) else {
                throw DomainError.notFound("subject request \(id.prefix(64)) not found in organisation \(org)")
            }
            var row = try opened(found)
            try body(&row, tx)
            try tx.update(row, sealedDetails: try seal(row))
            try outbox.record(AuditRecord(org: org, actor: actor, action: action, resource: .subjectRequest(id), outcome: .success,
                                          detail: detail), in: tx.connection)
            return row
        }
    }

    private func audit(org: String, actor: String, action: ComplianceAuditAction, id: String, detail: String) async throws {
        try await repository.write { [outbox] tx in
            try outbox.record(AuditRecord(org: org, actor: actor, action: action, resource: .subjectRequest(id), outcome: .success,
                                          detail: detail), in: tx.connection)
        }
    }

    private func seal(_ row: SubjectRequestRow) throws -> Data {
        try keys.seal(try JSONEncoder().encode(row.details), org: row.org, table: "subject_requests", column: "details", row: row.id)
    }

    private func opened(_ found: (row: SubjectRequestRow, sealedDetails: Data)) throws -> SubjectRequestRow {
        var row = found.row
        row.details = try JSONDecoder().decode(SubjectRequestRow.Details.self,
                                               from: try keys.open(found.sealedDetails, org: row.org, table: "subject_requests",
                                                                   column: "details", row: row.id))
        return row
    }
}
