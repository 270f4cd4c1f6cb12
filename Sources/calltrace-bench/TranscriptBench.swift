import ArgumentParser
import CallTraceAPI
import CallTraceKeys
import CallTraceProto
import CallTraceRPC
import CallTraceStorage
import CallTraceTestSupport
import Foundation
import IdentityDomain
import TranscriptDomain

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

    /// Identity and transcript in this process, and a firm with its admin signed in.
    struct Firm {
        let identity: InProcessService
        let transcript: InProcessService
        let org: String
        let metadata: Metadata
        var admin: CallOptions { CallOptions(metadata: metadata) }

        static func start() async throws -> Firm {
            // Logging as a deployment does (info): a debug line per call is not what is measured.
            let identity = try await InProcessService.start(IdentityService.self, logLevel: .info)
            let transcript = try await InProcessService.start(TranscriptService.self, peers: ["identity": identity.instance.port],
                                                              pki: identity.setup.pki, logLevel: .info)
            let email = "admin@bench.example"
            let org = try await identity.client(identity: TemporaryPKI.identity("operator", "ops"))
                .unary(Calltrace_Identity_V1_IdentityService.createOrganization, .with { $0.name = "Bench LLP"; $0.firstAdminEmail = email }).orgID
            let gateway = try identity.client()
            _ = try await gateway.unary(Calltrace_Identity_V1_IdentityService.redeemInvitation, .with {
                $0.invitationToken = try! identity.setup.deliveredToken(to: email)!; $0.password = "correct horse battery staple"
            }, options: .endUser)
            let token = try await gateway.unary(Calltrace_Identity_V1_IdentityService.login, .with {
                $0.orgID = org; $0.email = email; $0.password = "correct horse battery staple"
            }, options: .endUser).token
            var metadata = Metadata()
            try metadata.add("authorization", "Bearer \(token)")
            return Firm(identity: identity, transcript: transcript, org: org, metadata: metadata)
        }

        func stop() async {
            await transcript.stop()
            await identity.stop()
        }
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
        let year: Int64 = 365 * 86_400_000
        let now = clock.nowUnixMs
        let sources = ["Google Ads – PI", "Google Ads – family", "Facebook", "Organic search", "Yell", "Law Society directory", "Referral – GP",
                       "Radio", "Newsletter", "Other"]
        for (index, source) in sources.enumerated() {
            _ = try await numbers.assignTrackingNumber(.with {
                $0.orgID = org; $0.number = "0118 496 00\(10 + index)"; $0.source = source; $0.channel = .init(rawValue: index % 8 + 1)!
                $0.effectiveFromUnixMs = now - year - 86_400_000
            }, options: admin)
        }
        for index in 0..<10 {
            _ = try await calls.startCall(.with {
                $0.callID = "subject-\(index)"; $0.trackingNumber = "01184960010"; $0.callerNumber = "07700 900123"; $0.direction = .inbound
                $0.startedAtUnixMs = now - Int64(index) * 86_400_000
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

        // The 12-month attribution report, by source.
        var reportTimes: [Double] = []
        let reportBefore = try await serverSeconds("AttributionReport")
        for _ in 0..<reports {
            let started = ContinuousClock.now
            let report = try await calls.attributionReport(.with { $0.orgID = org; $0.fromUnixMs = now - year; $0.beforeUnixMs = now + 1 },
                                                           options: CallOptions(timeout: .seconds(60), metadata: metadata))
            reportTimes.append(started.duration(to: .now).seconds * 1000)
            if report.total.calls < UInt64(self.calls) { throw ValidationError("the report counted \(report.total.calls) calls") }
        }
        let reportAfter = try await serverSeconds("AttributionReport")
        let serverReport = (reportAfter.seconds - reportBefore.seconds) / Double(reportAfter.calls - reportBefore.calls) * 1000
        // The same report by website campaign: each call's visit touch, first touch from the visitor's first visit.
        var campaignTimes: [Double] = []
        for _ in 0..<reports {
            let started = ContinuousClock.now
            let report = try await calls.attributionReport(.with {
                $0.orgID = org; $0.fromUnixMs = now - year; $0.beforeUnixMs = now + 1; $0.groupBy = .utmCampaign
            }, options: CallOptions(timeout: .seconds(60), metadata: metadata))
            campaignTimes.append(started.duration(to: .now).seconds * 1000)
            if report.joinedCalls == 0 || report.rows.count < 20 { throw ValidationError("the campaign report joined \(report.joinedCalls) calls in \(report.rows.count) rows") }
        }
        let campaignAfter = try await serverSeconds("AttributionReport")
        let serverCampaign = (campaignAfter.seconds - reportAfter.seconds) / Double(campaignAfter.calls - reportAfter.calls) * 1000
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

        // The scan the report makes, alone: SQLite stepping the covering index, nothing tallied.
        var scanFloor: [Double] = []
        for _ in 0..<reports {
            let started = ContinuousClock.now
            var rows = 0
            try database.sync { db in
                try db.scan("""
                    SELECT assignment_no, caller_no, outcome + 8 * enquiry + 64 * matter_opened FROM calls
                    WHERE org_id = ? AND started_at_unix_ms >= ? AND started_at_unix_ms < ? ORDER BY started_at_unix_ms
                    """, bindings: [org, now - year, now + 1]) { row in rows &+= Int(row.int(0) &+ row.int(1) &+ row.int(2)) }
            }
            scanFloor.append(started.duration(to: .now).seconds * 1000)
        }

        func percentile(_ values: [Double], _ p: Double) -> Double { values.sorted()[min(values.count - 1, Int(Double(values.count) * p))] }
        print("")
        print("measurement".padding(toLength: 44, withPad: " ", startingAt: 0) + "ours".leftPad(12) + "SQLite floor".leftPad(14) + "target".leftPad(12))
        print("subject search, server-side mean (µs)".padding(toLength: 44, withPad: " ", startingAt: 0)
              + String(format: "%.1f", serverSearch).leftPad(12) + String(format: "%.1f", floor.reduce(0, +) / Double(floor.count)).leftPad(14) + "< 100".leftPad(12))
        print("subject search, client p50 / p99 (µs)".padding(toLength: 44, withPad: " ", startingAt: 0)
              + String(format: "%.0f / %.0f", percentile(latencies, 0.5), percentile(latencies, 0.99)).leftPad(12)
              + String(format: "%.1f", percentile(floor, 0.5)).leftPad(14) + "".leftPad(12))
        print("12-month attribution report, server (ms)".padding(toLength: 44, withPad: " ", startingAt: 0)
              + String(format: "%.0f", serverReport).leftPad(12) + String(format: "%.0f", median(reportFloor)).leftPad(14) + "< 500".leftPad(12))
        print("12-month attribution report, client (ms)".padding(toLength: 44, withPad: " ", startingAt: 0)
              + String(format: "%.0f", median(reportTimes)).leftPad(12) + "".leftPad(14) + "".leftPad(12))
        print("  by website campaign, server (ms)".padding(toLength: 44, withPad: " ", startingAt: 0)
              + String(format: "%.0f", serverCampaign).leftPad(12) + "".leftPad(14) + "< 500".leftPad(12))
        print("  by website campaign, client (ms)".padding(toLength: 44, withPad: " ", startingAt: 0)
              + String(format: "%.0f", median(campaignTimes)).leftPad(12) + "".leftPad(14) + "".leftPad(12))
        print("  of which SQLite's scan, columns read (ms)".padding(toLength: 44, withPad: " ", startingAt: 0)
              + "".leftPad(12) + String(format: "%.0f", median(scanFloor)).leftPad(14) + "".leftPad(12))
    }

    /// Rows as the service writes them (sealed caller bytes, a 32-byte blind index, source from the
    /// tracking number), through its own database handle in one transaction: a year of calls in seconds.
    func load(_ count: Int, org: String, sources: [String], now: Int64, year: Int64, into database: Database) throws {
        var generator = SystemRandomNumberGenerator()
        let callers = (0..<max(1, count * 2 / 5)).map { _ in Data((0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }) }
        let sealed = Data(repeating: 0xA5, count: 41)
        try database.sync { db in
            let assignmentNo = Dictionary(uniqueKeysWithValues: try db.query("SELECT source, no FROM tracking_numbers WHERE org_id = ?", org)
                .compactMap { row in row.text("source").map { ($0, row.int("no") ?? 0) } })
            try db.transaction {
                for (caller, index) in callers.enumerated() {
                    try db.execute("INSERT INTO callers (org_id, caller_index, caller_no) VALUES (?, ?, ?)", org, index, 1000 + caller)
                }
                // The websites' marketing: 20 campaigns by 10 keywords, and the visits that carried it.
                for touch in 1...200 {
                    try db.execute("""
                        INSERT INTO attribution_touches (no, org_id, utm_source, utm_medium, utm_campaign, utm_term, landing_path, referrer_host)
                        VALUES (?, ?, 'google', 'cpc', ?, ?, ?, 'www.google.com')
                        """, bindings: [Int64(touch), org, "campaign-\(touch % 20)", "keyword-\(touch / 20)", "/page-\(touch % 7)"])
                }
                for visit in 0..<visits {
                    let seen = now - Int64.random(in: 0..<year)
                    try db.execute("""
                        INSERT INTO website_visits (no, id, org_id, website_id, visitor_index, touch_no, click_ids, click_id_kinds,
                        started_at_unix_ms, last_seen_at_unix_ms) VALUES (?, ?, ?, 'web_bench', ?, ?, ?, '', ?, ?)
                        """, bindings: [Int64(visit + 1), "vis_bench_\(visit)", org, Data((0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }),
                                        Int64.random(in: 1...200), Data(), seen, seen])
                }
                for row in 0..<count {
                    let caller = Int.random(in: 0..<callers.count)
                    let joined = row % 5 < 2
                    let source = Int.random(in: 0..<sources.count)
                    let outcome = [1, 1, 1, 1, 1, 1, 1, 2, 2, 3][row % 10]
                    let matter = row % 33 == 0
                    try db.execute("""
                        INSERT INTO calls (id, org_id, tracking_number, source, channel, campaign, caller_number, caller_index, caller_no, assignment_no,
                        direction, started_at_unix_ms, answered_at_unix_ms, ended_at_unix_ms, duration_ms, outcome, recording_id, callback_of, recorded,
                        enquiry, matter_opened, matter_reference, practice_area, visit_join, visit_no, touch_no, first_touch_no, suggested_enquiry)
                        VALUES (?, ?, ?, ?, ?, '', ?, ?, ?, ?, 1, ?, 0, 0, 60000, ?, '', '', 1, ?, ?, NULL, ?, ?, ?, ?, ?, ?)
                        """, bindings: ["bench-\(row)", org, "+44118496\(String(format: "%04d", 10 + source))", sources[source], source % 8 + 1, sealed,
                                        callers[caller], 1000 + caller, assignmentNo[sources[source]] ?? 0, now - Int64.random(in: 0..<year), outcome,
                                        row % 4 == 0 ? 1 : 0, matter, matter ? 1 : 0, joined ? 2 : 1,
                                        joined ? Int64.random(in: 1...Int64(max(1, visits))) : 0, joined ? Int64.random(in: 1...200) : 0,
                                        joined ? Int64.random(in: 1...200) : 0, row % 7 == 0 ? 1 : 0])
                }
            }
        }
    }
}
