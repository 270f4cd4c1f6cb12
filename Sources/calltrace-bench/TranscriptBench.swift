import ArgumentParser
import CallTraceAPI
import CallTraceDeploymentSupport
import CallTraceKeys
import CallTraceProto
import CallTraceRPC
import CallTraceStorage
import CallTraceTestSupport
import Foundation

/// The transcript service with a year of calls (1M by default): subject search (the blind-index
/// lookup of `FindCallsByCaller`) and a 12-month attribution report, each beside the same query
/// run straight on SQLite in this process (the floor: what the service adds is the difference).
/// Server-side times come from the service's own per-method metrics.
struct TranscriptBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transcript",
        abstract: "Subject search latency and attribution report time (by source, and by website campaign) over a year of calls and visits, vs raw SQLite.")

    @Option(help: "Calls in the year.") var calls = 1_000_000
    @Option(help: "Website visits in the year (issue 32); two calls in five joined to one.") var visits = 5_000_000
    @Option(help: "Subject searches measured.") var searches = 2_000
    @Option(help: "Reports measured.") var reports = 10

    /// Identity, transcript and compliance in this process (StartCall asks compliance whether the
    /// firm accepted the processing agreement: `CallLedger`, as media's suite has them), and a
    /// firm that accepted it, with its admin signed in. No media: nothing here is recorded.
    struct Firm {
        let services: CallLedger
        let org: String
        let admin: CallOptions
        var transcript: InProcessService { services.transcript }
        var metadata: Metadata { admin.metadata }

        static func start() async throws -> Firm {
            // Logging as a deployment does (info): a debug line per call is not what is measured.
            let services = try await CallLedger(pki: try TemporaryPKI(), mediaPort: ServiceSetup.nothingListens, logLevel: .info)
            let (org, admin) = try await services.organisation("Bench LLP")
            return Firm(services: services, org: org, admin: try bearer(admin))
        }

        func stop() async { await services.stop() }
    }

    /// Over ports and real mutual TLS, as deployed (the suite's default is the in-process transport).
    func run() async throws {
        try await TestTransport.$current.withValue(.tls) { try await measure() }
    }

    private func measure() async throws {
        let firm = try await Firm.start()
        defer { Task { await firm.stop() } }
        let (transcript, org, metadata, admin) = (firm.transcript, firm.org, firm.metadata, firm.admin)
        let clock = transcript.clock
        // An organisation, its admin, ten tracking numbers, and one caller's ten calls made the service's way.
        let numbers = Calltrace_Transcript_V1_TrackingNumberServiceClient(try transcript.client())
        let calls = Calltrace_Transcript_V1_CallServiceClient(try transcript.client())
        let telephony = Calltrace_Transcript_V1_CallServiceClient(try transcript.client(identity: TemporaryPKI.telephony))
        let year: Int64 = 365 * 86_400_000
        let now = clock.nowUnixMs
        let sources = ["Google Ads – PI", "Google Ads – family", "Facebook", "Organic search", "Yell", "Law Society directory", "Referral – GP",
                       "Radio", "Newsletter", "Other"]
        for (index, source) in sources.enumerated() {
            _ = try await numbers.assignTrackingNumber(.with {
                $0.orgID = org; $0.number = "0118 496 00\(10 + index)"; $0.source = source; $0.channel = .init(rawValue: index % 8 + 1)!
            }, options: admin)
        }
        // (Now: a number is assigned from now on, never back in time. The loaded year's calls name
        // their assignment directly.)
        for index in 0..<10 {
            _ = try await telephony.startCall(.with {
                $0.callID = "subject-\(index)"; $0.trackingNumber = "01184960010"; $0.callerNumber = "07700 900123"; $0.direction = .inbound
            })
        }
        print("calltrace-bench transcript: loading \(self.calls) calls and \(visits) website visits over 12 months (\(self.calls * 2 / 5) distinct callers, 10 sources, 200 campaign and keyword pairs)...")
        let loaded = ContinuousClock.now
        try load(self.calls, org: org, sources: sources, now: now, year: year, into: transcript.instance.database)
        // Steady state: the load's pages checkpointed into the database file, as after any quiet minute.
        _ = try transcript.instance.database.sync { try $0.query("PRAGMA wal_checkpoint(TRUNCATE)") }
        print("  loaded in \(String(format: "%.1f", loaded.duration(to: .now).seconds)) s")

        let compliance = Calltrace_Transcript_V1_CallServiceClient(try transcript.client(identity: TemporaryPKI.identity("service", "compliance")))
        let ops = Calltrace_Ops_V1_MetricsServiceClient(try transcript.client(identity: TemporaryPKI.identity("operator", "ops")))
        func serverSeconds(_ method: String) async throws -> (calls: UInt64, seconds: Double) {
            let metrics = try await ops.getMetrics(.init()).methods.first { $0.method.hasSuffix("/\(method)") }
            return (metrics?.calls ?? 0, metrics?.durationSumSeconds ?? 0)
        }

        // Subject search: through the service, and the same indexed query straight on SQLite.
        var latencies: [Double] = []
        let searchBefore = try await serverSeconds("FindCallsByCaller")
        for round in 0..<searches {
            let started = ContinuousClock.now
            let found = try await compliance.findCallsByCaller(.with { $0.orgID = org; $0.phoneNumber = round % 2 == 0 ? "07700 900123" : "+44 7700 900\(round % 1000)" })
            latencies.append(started.duration(to: .now).microseconds)
            if round == 0 && found.calls.count != 10 { throw ValidationError("the subject's ten calls were not found (\(found.calls.count))") }
        }
        let searchAfter = try await serverSeconds("FindCallsByCaller")
        let serverSearch = (searchAfter.seconds - searchBefore.seconds) / Double(searchAfter.calls - searchBefore.calls) * 1e6
        let database = transcript.instance.database
        let index = try database.sync { try $0.query("SELECT caller_index FROM calls WHERE id = 'subject-0'").first?.blob("caller_index") } ?? Data()
        var floor: [Double] = []
        for _ in 0..<searches {
            let started = ContinuousClock.now
            _ = try database.sync { try $0.query("SELECT id, recording_id, started_at_unix_ms FROM calls WHERE org_id = ? AND caller_index = ?", org, index) }
            floor.append(started.duration(to: .now).microseconds)
        }

        // The 12-month attribution report by source, then by the website visit each call joined:
        // its campaign, keyword and landing page (first touch from the visitor's first visit).
        let groupings: [(name: String, grouping: Calltrace_Transcript_V1_ReportGrouping)] = [
            ("by source", .source), ("by website campaign", .utmCampaign), ("by keyword", .keyword), ("by landing page", .landingPage),
        ]
        // CPU time too (this process: the service and its client): on a machine shared with other
        // work the wall-clock figures stretch, the CPU a report takes does not.
        var reportRows: [(name: String, p50: Double, p99: Double, server: Double, cpu: Double)] = []
        for (name, grouping) in groupings {
            var times: [Double] = []
            let before = try await serverSeconds("AttributionReport")
            let cpu = CPUTime.current()
            for _ in 0..<reports {
                let started = ContinuousClock.now
                let report = try await calls.attributionReport(.with {
                    $0.orgID = org; $0.fromUnixMs = now - year; $0.beforeUnixMs = now + 1; $0.groupBy = grouping
                }, options: CallOptions(timeout: .seconds(60), metadata: metadata))
                times.append(started.duration(to: .now).seconds * 1000)
                if report.total.calls < UInt64(self.calls) { throw ValidationError("the report \(name) counted \(report.total.calls) calls") }
                if grouping != .source && (report.joinedCalls == 0 || report.rows.count < 7) {
                    throw ValidationError("the report \(name) joined \(report.joinedCalls) calls in \(report.rows.count) rows")
                }
            }
            let spent = (CPUTime.current() - cpu) / Double(reports) / 1000
            let after = try await serverSeconds("AttributionReport")
            reportRows.append((name, percentile(times, 0.5), percentile(times, 0.99),
                               (after.seconds - before.seconds) / Double(after.calls - before.calls) * 1000, spent))
        }
        var reportFloor: [Double] = []
        for _ in 0..<reports {
            let started = ContinuousClock.now
            _ = try database.sync { db in
                try db.query("""
                    SELECT assignment_no, COUNT(*), COUNT(DISTINCT caller_no), SUM(CASE WHEN outcome = 1 THEN 1 ELSE 0 END),
                    SUM(CASE WHEN outcome = 2 THEN 1 ELSE 0 END), SUM(CASE WHEN enquiry = 1 THEN 1 ELSE 0 END), SUM(matter_opened)
                    FROM calls WHERE org_id = ? AND started_at_unix_ms >= ? AND started_at_unix_ms < ? GROUP BY assignment_no
                    """, org, now - year, now + 1)
            }
            reportFloor.append(started.duration(to: .now).seconds * 1000)
        }

        // The scan the report makes, alone, on one connection: SQLite stepping the covering index
        // for the same columns, nothing tallied.
        var scanFloor: [Double] = []
        let scanCPU = CPUTime.current()
        for _ in 0..<reports {
            let started = ContinuousClock.now
            var rows = 0
            try database.sync { db in
                try db.scan("""
                    SELECT assignment_no, report_word, touch_no, first_touch_no FROM calls
                    WHERE org_id = ? AND started_at_unix_ms >= ? AND started_at_unix_ms < ? ORDER BY started_at_unix_ms
                    """, bindings: [org, now - year, now + 1]) { row in
                    rows &+= Int(row.int(0) &+ row.int(1) &+ row.int(2) &+ row.int(3))
                }
            }
            scanFloor.append(started.duration(to: .now).seconds * 1000)
        }
        let scanCPUPerReport = (CPUTime.current() - scanCPU) / Double(reports) / 1000

        func row(_ name: String, _ ours: String, _ floor: String = "", _ target: String = "") {
            print(name.padding(toLength: 52, withPad: " ", startingAt: 0) + ours.leftPad(14) + floor.leftPad(14) + target.leftPad(10))
        }
        print("")
        row("measurement", "ours", "SQLite floor", "target")
        row("subject search, server-side mean (µs)", String(format: "%.1f", serverSearch), String(format: "%.1f", floor.reduce(0, +) / Double(floor.count)),
            "< 100")
        row("subject search, client p50 / p99 (µs)", String(format: "%.0f / %.0f", percentile(latencies, 0.5), percentile(latencies, 0.99)),
            String(format: "%.1f", percentile(floor, 0.5)))
        for (index, report) in reportRows.enumerated() {
            // The floor is SQLite's own GROUP BY by source: the same index, nothing decoded into Swift.
            row("12-month report \(report.name), p50 / p99 (ms)", String(format: "%.0f / %.0f", report.p50, report.p99),
                index == 0 ? String(format: "%.0f", median(reportFloor)) : "", "< 500")
            row("  server mean; CPU per report, both halves (ms)", String(format: "%.0f; %.0f", report.server, report.cpu))
        }
        row("SQLite's scan of the period alone; CPU (ms)", "", String(format: "%.0f; %.0f", median(scanFloor), scanCPUPerReport))
    }

    /// Rows as the service writes them (sealed caller bytes, a 32-byte blind index, source from the
    /// tracking number), through its own database handle in one transaction, in time order as
    /// they arrive and a hundred to a statement. A joined call holds a visit of shortly before it
    /// and that visit's touch. The page cache is made big enough for the visits' indexes while
    /// loading (five million random keys), then put back to SQLite's default.
    func load(_ count: Int, org: String, sources: [String], now: Int64, year: Int64, into database: Database) throws {
        var random = BenchRandom()
        let callers = (0..<max(1, count * 2 / 5)).map { _ in random.bytes(32) }
        let sealed = Data(repeating: 0xA5, count: 41)
        let start = now - year
        // The marketing a visit came with: 20 campaigns, 10 keywords, 7 landing pages over 200 touches.
        func touch(ofVisit no: Int) -> Int64 { Int64(UInt64(no) &* 2_654_435_761 % 200) + 1 }
        try database.sync { db in
            let assignmentNo = Dictionary(uniqueKeysWithValues: try db.query("SELECT source, no FROM tracking_numbers WHERE org_id = ?", org)
                .compactMap { row in row.text("source").map { ($0, row.int("no") ?? 0) } })
            _ = try db.query("PRAGMA cache_size = -1048576")
            defer { _ = try? db.query("PRAGMA cache_size = -2000") }
            try db.transaction {
                try db.insertRows("callers", "org_id, caller_index, caller_no", count: callers.count) { caller, values in
                    values += [org, callers[caller], Int64(1000 + caller)]
                }
                try db.insertRows("attribution_touches", "no, org_id, utm_source, utm_medium, utm_campaign, utm_term, landing_path, referrer_host",
                                  count: 200) { touch, values in
                    values += [Int64(touch + 1), org, "google", "cpc", "campaign-\((touch + 1) % 20)", "keyword-\((touch + 1) / 20)",
                               "/page-\((touch + 1) % 7)", "www.google.com"]
                }
                try db.insertRows("website_visits", """
                    no, id, org_id, website_id, visitor_index, touch_no, click_ids, click_id_kinds, started_at_unix_ms, last_seen_at_unix_ms
                    """, count: visits) { visit, values in
                    let seen = start + Int64(visit) * year / Int64(visits) + Int64.random(in: 0..<max(1, year / Int64(visits)), using: &random)
                    values += [Int64(visit + 1), "vis_bench_\(visit)", org, "web_bench", random.bytes(32), touch(ofVisit: visit + 1), Data(), "", seen, seen]
                }
                try db.insertRows("calls", """
                    id, org_id, tracking_number, source, channel, campaign, caller_number, caller_index, caller_no, assignment_no,
                    direction, started_at_unix_ms, answered_at_unix_ms, ended_at_unix_ms, duration_ms, outcome, recording_id, callback_of, recorded,
                    enquiry, matter_opened, matter_reference, practice_area, visit_join, visit_no, touch_no, first_touch_no, suggested_enquiry
                    """, count: count) { row, values in
                    let caller = Int.random(in: 0..<callers.count, using: &random)
                    let source = Int.random(in: 0..<sources.count, using: &random)
                    let started = start + Int64(row) * year / Int64(count) + Int64.random(in: 0..<max(1, year / Int64(count)), using: &random)
                    // Two calls in five joined, to one of the visits of the hour or so before.
                    let visit = row % 5 < 2 && visits > 0
                        ? max(1, Int((started - start) * Int64(visits) / year) - Int.random(in: 0..<50, using: &random)) : 0
                    let outcome = [1, 1, 1, 1, 1, 1, 1, 2, 2, 3][row % 10]
                    let matter = row % 33 == 0
                    let none: String? = nil
                    values += [
                        "bench-\(row)", org, "+44118496\(String(format: "%04d", 10 + source))", sources[source], Int64(source % 8 + 1), "", sealed,
                        callers[caller], Int64(1000 + caller), assignmentNo[sources[source]] ?? 0,
                        Int64(1), started, Int64(0), Int64(0), Int64(60_000), Int64(outcome), "", "", Int64(1),
                        Int64(row % 4 == 0 ? 1 : 0), Int64(matter ? 1 : 0), none, Int64(matter ? 1 : 0), Int64(visit > 0 ? 2 : 1), Int64(visit),
                        visit > 0 ? touch(ofVisit: visit) : 0, visit > 0 ? Int64.random(in: 1...200, using: &random) : 0, Int64(row % 7 == 0 ? 1 : 0),
                    ]
                }
            }
        }
    }
}

extension Connection {
    /// Inserts `count` rows into `table`, a hundred to a statement: `row` appends row i's values
    /// in `columns`' order.
    func insertRows(_ table: String, _ columns: String, count: Int, _ row: (Int, inout [any SQLiteBindable]) -> Void) throws {
        let width = columns.split(separator: ",").count, batch = 100
        func statement(_ rows: Int) -> String {
            let group = "(" + Array(repeating: "?", count: width).joined(separator: ", ") + ")"
            return "INSERT INTO \(table) (\(columns)) VALUES " + Array(repeating: group, count: rows).joined(separator: ", ")
        }
        let full = statement(batch)
        var values: [any SQLiteBindable] = []
        values.reserveCapacity(batch * width)
        for first in stride(from: 0, to: count, by: batch) {
            let rows = min(batch, count - first)
            values.removeAll(keepingCapacity: true)
            for index in first..<first + rows { row(index, &values) }
            try execute(rows == batch ? full : statement(rows), bindings: values)
        }
    }
}
