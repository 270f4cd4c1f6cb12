import ArgumentParser
import CallTraceAPI
import CallTraceProto
import CallTraceRPC
import CallTraceTestSupport
import Foundation

/// The website tag's number requests (issue 32): many visitors at once reserving a number from
/// one pool and renewing it, while calls to the pool's numbers arrive and are joined to visits,
/// through transcript's `VisitorService` as the web gateway asks it. Prints each request kind's
/// p50 and p99 beside the issue's target.
struct WebsiteBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "websites", abstract: "Concurrent visitors reserving and renewing pool numbers while calls arrive: p50/p99 per request.")

    @Option(help: "Visitors at once.") var visitors = 1_000
    @Option(help: "Numbers in the pool.") var pool = 50
    @Option(help: "Renewals per visitor.") var renewals = 5
    @Option(help: "Calls started meanwhile.") var calls = 500

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
        print("calltrace-bench websites: \(visitors) visitors at once, a pool of \(pool), \(renewals) renewals each, \(calls) calls meanwhile...")

        // Several connections, as a web gateway's would be; each visitor's requests one after another.
        let connections = try (0..<8).map { _ in Calltrace_Transcript_V1_VisitorServiceClient(try transcript.newClient()) }
        let callers = Calltrace_Transcript_V1_CallServiceClient(try transcript.client(identity: TemporaryPKI.telephony))
        let started = ContinuousClock.now
        let (reserves, renews, callTimes) = try await withThrowingTaskGroup(of: (String, [Double]).self) { group in
            for visitor in 0..<visitors {
                let client = connections[visitor % connections.count]
                group.addTask {
                    var times: [Double] = []
                    var clock = ContinuousClock.now
                    let reserved = try await client.reserveNumber(.with {
                        $0.siteKey = site.siteKey; $0.origin = "https://www.bench.example"; $0.landingPath = "/page-\(visitor % 9)"
                        $0.utmCampaign = "campaign-\(visitor % 12)"; $0.clickIds = ["gclid": "Cj0KCQ-bench-\(visitor)"]
                    })
                    times.append(clock.duration(to: .now).milliseconds)
                    var renewTimes: [Double] = []
                    for _ in 0..<renewals {
                        clock = .now
                        _ = try await client.renewReservation(.with {
                            $0.siteKey = site.siteKey; $0.origin = "https://www.bench.example"; $0.visitID = reserved.visitID
                        })
                        renewTimes.append(clock.duration(to: .now).milliseconds)
                    }
                    return ("reserve", times + renewTimes.map { -$0 })
                }
            }
            for call in 0..<calls {
                group.addTask {
                    let clock = ContinuousClock.now
                    _ = try await callers.startCall(.with {
                        $0.callID = "bench-call-\(call)"; $0.trackingNumber = numbers[call % numbers.count]; $0.callerNumber = "07700 9\(String(format: "%05d", call))"
                        $0.direction = .inbound
                    })
                    return ("call", [clock.duration(to: .now).milliseconds])
                }
            }
            var reserves: [Double] = [], renews: [Double] = [], callTimes: [Double] = []
            for try await (kind, times) in group {
                if kind == "call" { callTimes += times; continue }
                reserves.append(times[0])
                renews += times.dropFirst().map { -$0 }
            }
            return (reserves, renews, callTimes)
        }
        let seconds = started.duration(to: .now).seconds
        let status = try await websites.getPoolStatus(.with { $0.orgID = firm.org; $0.websiteID = site.websiteID }, options: admin)
        func percentile(_ values: [Double], _ p: Double) -> Double { values.sorted()[min(values.count - 1, Int(Double(values.count) * p))] }
        print("")
        print("request".padding(toLength: 36, withPad: " ", startingAt: 0) + "count".leftPad(8) + "p50 ms".leftPad(10) + "p99 ms".leftPad(10) + "target".leftPad(12))
        for (name, times, target) in [("ReserveNumber", reserves, "p99 < 20"), ("RenewReservation", renews, "p99 < 20"), ("StartCall (joined)", callTimes, "")] {
            print(name.padding(toLength: 36, withPad: " ", startingAt: 0) + "\(times.count)".leftPad(8) + String(format: "%.2f", percentile(times, 0.5)).leftPad(10)
                  + String(format: "%.2f", percentile(times, 0.99)).leftPad(10) + target.leftPad(12))
        }
        print(String(format: "%.0f requests/s in all; the pool: %d visits, %d reservations, %d taken over (more visitors than numbers)",
                     Double(reserves.count + renews.count + callTimes.count) / seconds, status.visits, status.reservations, status.takenOver))
    }
}
