import CallTraceStorage
import ComplianceDeadlines
import Foundation

/// A data-subject request (P13). Everything a person wrote (numbers, notes, reasons, outcome)
/// is in `details`, sealed under the organisation's key; the columns are what the deadline
/// engine and the lists need.
struct SubjectRequestRow: Sendable {
    struct Details: Codable, Sendable, Equatable {
        var phoneNumbers: [String]
        var notes: String = ""
        var pauseReason: String = ""
        var extensionReason: String = ""
        var outcome: String = ""
    }
    let id: String
    let org: String
    let kind: Int
    let receivedOn: Day
    let nation: Nation
    var identityCheck: Int
    var state: Int
    var extended = false
    var pausedDays = 0
    var pausedSince: Day?
    var erasureStartedAt: Int64 = 0
    var erasureConfirmedAt: Int64 = 0
    var objectionAppliedAt: Int64 = 0
    var closedAt: Int64 = 0
    let openedBy: String
    let openedAt: Int64
    var details: Details
}

/// Subject requests, their details sealed by the caller.
protocol SubjectRequestRecords {
    /// `details` sealed by the caller.
    func insert(_ request: SubjectRequestRow, sealedDetails: Data) throws
    func update(_ request: SubjectRequestRow, sealedDetails: Data) throws
    func subjectRequest(_ id: String, org: String) throws -> (row: SubjectRequestRow, sealedDetails: Data)?
    func subjectRequests(org: String, includeClosed: Bool) throws -> [(row: SubjectRequestRow, sealedDetails: Data)]
    /// The organisations with a request still open.
    func organisationsWithOpenRequests() throws -> [String]
}

extension SQLiteComplianceRepository.Transaction: SubjectRequestRecords {
    func insert(_ r: SubjectRequestRow, sealedDetails: Data) throws {
        try connection.execute("""
            INSERT INTO subject_requests (id, org_id, kind, received_on, nation, identity_check, state, extended, paused_days, paused_since,
                erasure_started_at_unix_ms, erasure_confirmed_at_unix_ms, objection_applied_at_unix_ms, closed_at_unix_ms, opened_by,
                opened_at_unix_ms, details)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, r.id, r.org, Int64(r.kind), r.receivedOn.description, r.nation.rawValue, Int64(r.identityCheck), Int64(r.state),
            Int64(r.extended ? 1 : 0), Int64(r.pausedDays), r.pausedSince?.description ?? "", r.erasureStartedAt, r.erasureConfirmedAt,
            r.objectionAppliedAt, r.closedAt, r.openedBy, r.openedAt, sealedDetails)
    }

    func update(_ r: SubjectRequestRow, sealedDetails: Data) throws {
        try connection.execute("""
            UPDATE subject_requests SET identity_check = ?, state = ?, extended = ?, paused_days = ?, paused_since = ?,
                erasure_started_at_unix_ms = ?, erasure_confirmed_at_unix_ms = ?, objection_applied_at_unix_ms = ?, closed_at_unix_ms = ?,
                details = ?
            WHERE id = ? AND org_id = ?
            """, Int64(r.identityCheck), Int64(r.state), Int64(r.extended ? 1 : 0), Int64(r.pausedDays), r.pausedSince?.description ?? "",
            r.erasureStartedAt, r.erasureConfirmedAt, r.objectionAppliedAt, r.closedAt, sealedDetails, r.id, r.org)
    }

    static let requestColumns = """
        id, org_id, kind, received_on, nation, identity_check, state, extended, paused_days, paused_since, erasure_started_at_unix_ms,
        erasure_confirmed_at_unix_ms, objection_applied_at_unix_ms, closed_at_unix_ms, opened_by, opened_at_unix_ms, details
        """

    func subjectRequest(_ id: String, org: String) throws -> (row: SubjectRequestRow, sealedDetails: Data)? {
        try connection.query("SELECT \(Self.requestColumns) FROM subject_requests WHERE id = ? AND org_id = ?", id, org).first.flatMap(Self.request)
    }

    func subjectRequests(org: String, includeClosed: Bool) throws -> [(row: SubjectRequestRow, sealedDetails: Data)] {
        let open = includeClosed ? "" : " AND closed_at_unix_ms = 0"
        return try connection.query("SELECT \(Self.requestColumns) FROM subject_requests WHERE org_id = ?\(open) ORDER BY opened_at_unix_ms, id",
                                    org).compactMap(Self.request)
    }

    func organisationsWithOpenRequests() throws -> [String] {
        try connection.query("SELECT DISTINCT org_id FROM subject_requests WHERE closed_at_unix_ms = 0 ORDER BY org_id").compactMap { $0.text("org_id") }
    }

    static func request(_ row: Row) -> (row: SubjectRequestRow, sealedDetails: Data)? {
        guard let id = row.text("id"), let org = row.text("org_id"), let received = row.text("received_on").flatMap(Day.init),
              let nation = row.text("nation").flatMap(Nation.init(rawValue:)), let details = row.blob("details") else { return nil }
        let request = SubjectRequestRow(
            id: id, org: org, kind: Int(row.int("kind") ?? 0), receivedOn: received, nation: nation,
            identityCheck: Int(row.int("identity_check") ?? 0), state: Int(row.int("state") ?? 0), extended: row.int("extended") == 1,
            pausedDays: Int(row.int("paused_days") ?? 0), pausedSince: row.text("paused_since").flatMap(Day.init),
            erasureStartedAt: row.int("erasure_started_at_unix_ms") ?? 0, erasureConfirmedAt: row.int("erasure_confirmed_at_unix_ms") ?? 0,
            objectionAppliedAt: row.int("objection_applied_at_unix_ms") ?? 0, closedAt: row.int("closed_at_unix_ms") ?? 0,
            openedBy: row.text("opened_by") ?? "", openedAt: row.int("opened_at_unix_ms") ?? 0, details: .init(phoneNumbers: []))
        return (request, details)
    }
}
