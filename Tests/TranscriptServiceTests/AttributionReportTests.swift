import CallTraceTestSupport
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
}
