import CallTraceServiceHost
import CallTraceStorage
import CallTraceTestSupport
import Foundation
import Testing
@testable import TranscriptDomain

/// The report's tallies, built the way the service builds them: the period's halves scanned
/// apart and merged must give the report one scan of the whole period gives.
@Suite("Attribution report tallies")
struct AttributionReportTests {
    static func rows(_ count: Int, seed: UInt64) -> [AttributionScanRow] {
        var random = SplitMix64(state: seed)
        return (0..<count).map { _ in
            AttributionScanRow(assignment: Int64.random(in: 1...7, using: &random), caller: Int64.random(in: 1...60, using: &random),
                               outcome: Int.random(in: 0...4, using: &random), enquiry: Int.random(in: 0...2, using: &random),
                               matterOpened: Int.random(in: 0..<8, using: &random) == 0)
        }
    }

    static func report(_ builder: AttributionReport.Builder) -> AttributionReport {
        builder.report { "source \($0 % 4)" }
    }

    @Test("Split anywhere and merged, earlier into later, the halves give the whole period's report", arguments: [1, 2, 3])
    func halvesMerge(seed: UInt64) {
        let rows = Self.rows(400, seed: seed)
        var whole = AttributionReport.Builder(callers: 30)
        for row in rows { whole.add(row) }
        let expected = Self.report(whole)
        #expect(expected.total.calls == 400 && expected.total.mattersOpened > 10)
        for split in [0, 1, 57, 200, 399, 400] {
            var early = AttributionReport.Builder(callers: 30), late = AttributionReport.Builder(callers: 61)
            for row in rows[..<split] { early.add(row) }
            for row in rows[split...] { late.add(row) }
            early.merge(later: late)
            let merged = Self.report(early)
            #expect(merged.lines == expected.lines, "split at \(split)")
            #expect(merged.total == expected.total, "split at \(split)")
        }
    }

    @Test("First touch crosses the halves: a matter opened late is credited to the source of the caller's first call, made early")
    func firstTouchAcrossHalves() {
        var early = AttributionReport.Builder(), late = AttributionReport.Builder()
        early.add(AttributionScanRow(assignment: 1, caller: 5, outcome: 1, enquiry: 1, matterOpened: false))
        late.add(AttributionScanRow(assignment: 2, caller: 9, outcome: 1, enquiry: 1, matterOpened: false))
        late.add(AttributionScanRow(assignment: 2, caller: 5, outcome: 1, enquiry: 0, matterOpened: true))
        early.merge(later: late)
        let report = early.report { $0 == 1 ? "Google Ads" : "Yell" }
        let google = report.lines.first { $0.key == "Google Ads" }, yell = report.lines.first { $0.key == "Yell" }
        #expect(google?.firstTouch == 1 && google?.lastTouch == 0 && google?.uniqueCallers == 1)
        #expect(yell?.firstTouch == 0 && yell?.lastTouch == 1 && yell?.uniqueCallers == 2 && yell?.mattersOpened == 1)
        #expect(report.total.uniqueCallers == 2 && report.total.calls == 3)
    }

    @Test("A database from before report_word gets it for the calls it holds, and it is kept as calls are written and marked (SQLite's triggers, PostgreSQL's generated column)")
    func reportWordMigrates() async throws {
        let stores = try TemporaryStores(service: "transcript", migrations: TranscriptService.migrations.filter { $0.version < 8 },
                                         tracks: [SharedSchema.track])
        func insert(_ id: String, caller: Int64, outcome: Int64, enquiry: Int64, matter: Int64) throws {
            _ = try stores.database.sync { db in
                try db.execute("""
                    INSERT INTO calls (id, org_id, tracking_number, source, channel, campaign, caller_number, caller_index, caller_no, assignment_no,
                    direction, started_at_unix_ms, answered_at_unix_ms, ended_at_unix_ms, duration_ms, outcome, recording_id, callback_of, recorded,
                    enquiry, matter_opened, practice_area, suggested_enquiry, visit_join)
                    VALUES (?, 'org_a', '+441184960001', 'Google', 1, '', ?, ?, ?, 3, 1, 1000, 0, 0, 0, ?, '', '', 1, ?, ?, 0, 1, 2)
                    """, bindings: [id, Data([0]), Data([0]), caller, outcome, enquiry, matter])
            }
        }
        /// What the report's scan reads of each call, decoded.
        func scanned() async throws -> [String] {
            try await SQLiteCallRepository(database: stores.database).read { tx in
                var rows: [String] = []
                try tx.scanCalls(org: "org_a", from: 0, before: 2000, touches: false) { row in
                    rows.append("\(row.assignment) \(row.caller) \(row.outcome) \(row.enquiry) \(row.matterOpened) \(row.suggestedEnquiry) \(row.visitJoin)")
                }
                return rows.sorted()
            }
        }
        try insert("old", caller: 4_000_000_000, outcome: 2, enquiry: 1, matter: 1)
        try stores.database.migrate(TranscriptService.migrations, tracks: [SharedSchema.track])
        try insert("new", caller: 7, outcome: 1, enquiry: 0, matter: 0)
        // Assignment, caller, outcome, enquiry, matter opened, suggested enquiry, visit join.
        #expect(try await scanned() == ["3 4000000000 2 1 true 1 2", "3 7 1 0 false 1 2"])
        _ = try stores.database.sync { db in
            try db.execute("UPDATE calls SET outcome = 3, enquiry = 2, matter_opened = 1, suggested_enquiry = 0 WHERE id = 'new'")
        }
        #expect(try await scanned() == ["3 4000000000 2 1 true 1 2", "3 7 3 2 true 0 2"])
    }
}
