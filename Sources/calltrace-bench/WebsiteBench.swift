import ArgumentParser
import CallTraceAPI
import CallTraceProto
import CallTraceRPC
import CallTraceTestSupport
import Foundation

/// The website tag's number requests (issue 32): many visitors on a site at once, each reserving
/// a number from one pool and renewing it at the tag's cadence (compressed), through transcript's `VisitorService` as the web gateway asks it.
/// Prints each request's p50 and p99 beside the issue's target. (Calls arriving meanwhile need
/// compliance's agreement check too: not here.)
struct WebsiteBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "websites", abstract: "Concurrent visitors reserving and renewing pool numbers: p50/p99 per request.")

    @Option(help: "Visitors at once.") var visitors = 1_000
    @Option(help: "Numbers in the pool.") var pool = 50
    @Option(help: "Renewals per visitor.") var renewals = 5
    @Option(help: "Seconds between a visitor's renewals (the tag's own is 60: this is six times as busy); visitors arrive spread over one interval.")
    var interval = 10.0

    /// Over ports and real mutual TLS, as deployed (the suite's default is the in-process transport).
    func run() async throws {
        try await TestTransport.$current.withValue(.tls) { try await measure() }
    }

    private func measure() async throws {
        let firm = try await TranscriptBench.Firm.start()
        defer { Task { await firm.stop() } }
        let numbers = (0..<pool).map { "+44118496\(String(format: "%04d", 1000 + $0))" }
        let admin = firm.admin
        let transcript = firm.transcript
        for number in numbers {
            _ = try await Calltrace_Transcript_V1_TrackingNumberServiceClient(try transcript.client()).assignTrackingNumber(.with {
                $0.orgID = firm.org; $0.number = number; $0.source = "Website"; $0.channel = .organic
            }, options: admin)
        }
        let websites = Calltrace_Transcript_V1_WebsiteServiceClient(try transcript.client())
        let site = try await websites.createWebsite(.with {
            $0.orgID = firm.org
            $0.settings = .with { $0.name = "Bench"; $0.origins = ["https://www.bench.example"]; $0.targetNumbers = ["02079460000"]; $0.source = "Website" }
        }, options: admin).website
        _ = try await websites.setPoolNumbers(.with { $0.orgID = firm.org; $0.websiteID = site.websiteID; $0.numbers = numbers }, options: admin)
        print("calltrace-bench websites: \(visitors) visitors on the site at once, a pool of \(pool), each renewing every \(interval) s, \(renewals) times...")

        // Several connections, as a web gateway's would be; each visitor's requests one after another.
        // (A connection takes at most 256 calls at once: the visitors over 16.)
        let connections = try (0..<16).map { _ in Calltrace_Transcript_V1_VisitorServiceClient(try transcript.newClient()) }
        let started = ContinuousClock.now
        let (reserves, renews) = try await withThrowingTaskGroup(of: (String, [Double]).self) { group in
            for visitor in 0..<visitors {
                let client = connections[visitor % connections.count]
                let arrival = Double.random(in: 0..<interval)
                group.addTask {
                    try await Task.sleep(for: .seconds(arrival))
                    var times: [Double] = []
                    var clock = ContinuousClock.now
                    let reserved = try await client.reserveNumber(.with {
                        $0.siteKey = site.siteKey; $0.origin = "https://www.bench.example"; $0.landingPath = "/page-\(visitor % 9)"
                        $0.utmCampaign = "campaign-\(visitor % 12)"; $0.clickIds = ["gclid": "Cj0KCQ-bench-\(visitor)"]
                    })
                    times.append(clock.duration(to: .now).milliseconds)
                    var renewTimes: [Double] = []
                    for _ in 0..<renewals {
                        try await Task.sleep(for: .seconds(interval))
                        clock = .now
                        _ = try await client.renewReservation(.with {
                            $0.siteKey = site.siteKey; $0.origin = "https://www.bench.example"; $0.visitID = reserved.visitID
                        })
                        renewTimes.append(clock.duration(to: .now).milliseconds)
                    }
                    return ("reserve", times + renewTimes.map { -$0 })
                }
            }
            var reserves: [Double] = [], renews: [Double] = []
            for try await (_, times) in group {
                reserves.append(times[0])
                renews += times.dropFirst().map { -$0 }
            }
            return (reserves, renews)
        }
        let seconds = started.duration(to: .now).seconds
        let status = try await websites.getPoolStatus(.with { $0.orgID = firm.org; $0.websiteID = site.websiteID }, options: admin)
        func percentile(_ values: [Double], _ p: Double) -> Double { values.sorted()[min(values.count - 1, Int(Double(values.count) * p))] }
        print("")
        print("request".padding(toLength: 36, withPad: " ", startingAt: 0) + "count".leftPad(8) + "p50 ms".leftPad(10) + "p99 ms".leftPad(10) + "target".leftPad(12))
        for (name, times, target) in [("ReserveNumber", reserves, "p99 < 20"), ("RenewReservation", renews, "p99 < 20")] {
            print(name.padding(toLength: 36, withPad: " ", startingAt: 0) + "\(times.count)".leftPad(8) + String(format: "%.2f", percentile(times, 0.5)).leftPad(10)
                  + String(format: "%.2f", percentile(times, 0.99)).leftPad(10) + target.leftPad(12))
        }
        print(String(format: "%.0f requests/s in all; the pool: %d visits, %d reservations, %d taken over (more visitors than numbers)",
                     Double(reserves.count + renews.count) / seconds, status.visits, status.reservations, status.takenOver))
    }
}
