import ArgumentParser
import CallTraceAPI
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceTestSupport
import Foundation

/// The website tag's number requests (issue 32): many visitors on a site at once, each reserving
/// a number from one pool and renewing it at the tag's cadence (compressed), through transcript's
/// `VisitorService` as the web gateway asks it, while calls arrive at the pool's numbers (StartCall
/// and CompleteCall as the telephony gateway sends them; the firm accepted the processing
/// agreement, so compliance is asked at each start). Prints each request's p50 and p99 beside the
/// issue's target, and the share of the calls joined to a visit.
struct WebsiteBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "websites", abstract: "Concurrent visitors reserving and renewing pool numbers while calls arrive: p50/p99 per request, calls joined.")

    @Option(help: "Visitors at once.") var visitors = 1_000
    @Option(help: "Numbers in the pool.") var pool = 50
    @Option(help: "Renewals per visitor.") var renewals = 5
    @Option(help: "Seconds between a visitor's renewals (the tag's own is 60: this is six times as busy); visitors arrive spread over one interval.")
    var interval = 10.0
    @Option(help: "Calls a second to the pool's numbers while the visitors stay, each started and completed.")
    var callRate = 5.0

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
        print("calltrace-bench websites: \(visitors) visitors on the site at once, a pool of \(pool), each renewing every \(interval) s, \(renewals) times;"
              + " \(callRate) calls a second to the pool meanwhile...")

        // The service's clock follows the real one (as deployed): reservations age, and a call
        // starts at the time it arrives.
        let clock = transcript.clock
        let from = clock.nowUnixMs
        let ticking = Task {
            let origin = ContinuousClock.now
            var moved = Duration.zero
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(20))
                let elapsed = origin.duration(to: .now)
                clock.advance(by: elapsed - moved)
                moved = elapsed
            }
        }
        defer { ticking.cancel() }

        // Several connections, as a web gateway's would be; each visitor's requests one after another.
        // (A connection takes at most 256 calls at once: the visitors over 16.)
        let connections = try (0..<16).map { _ in Calltrace_Transcript_V1_VisitorServiceClient(try transcript.newClient()) }
        let started = ContinuousClock.now
        async let arriving = calls(to: numbers, until: started + .seconds(interval * Double(renewals + 1)), firm: firm)
        let (reserves, renews, sourceNumbers) = try await withThrowingTaskGroup(of: (reserve: Double, renews: [Double], source: Bool).self) { group in
            for visitor in 0..<visitors {
                let client = connections[visitor % connections.count]
                let arrival = Double.random(in: 0..<interval)
                group.addTask {
                    try await Task.sleep(for: .seconds(arrival))
                    var clock = ContinuousClock.now
                    let reserved = try await client.reserveNumber(.with {
                        $0.siteKey = site.siteKey; $0.origin = "https://www.bench.example"; $0.landingPath = "/page-\(visitor % 9)"
                        $0.utmCampaign = "campaign-\(visitor % 12)"; $0.clickIds = ["gclid": "Cj0KCQ-bench-\(visitor)"]
                    })
                    let reserve = clock.duration(to: .now).milliseconds
                    var renews: [Double] = []
                    for _ in 0..<renewals {
                        try await Task.sleep(for: .seconds(interval))
                        clock = .now
                        _ = try await client.renewReservation(.with {
                            $0.siteKey = site.siteKey; $0.origin = "https://www.bench.example"; $0.visitID = reserved.visitID
                        })
                        renews.append(clock.duration(to: .now).milliseconds)
                    }
                    return (reserve, renews, reserved.sourceNumber)
                }
            }
            var reserves: [Double] = [], renews: [Double] = [], sourceNumbers = 0
            for try await visitor in group {
                reserves.append(visitor.reserve)
                renews += visitor.renews
                if visitor.source { sourceNumbers += 1 }
            }
            return (reserves, renews, sourceNumbers)
        }
        let (starts, completions) = try await arriving
        let seconds = started.duration(to: .now).seconds
        let status = try await websites.getPoolStatus(.with { $0.orgID = firm.org; $0.websiteID = site.websiteID }, options: admin)
        let report = try await Calltrace_Transcript_V1_CallServiceClient(try transcript.client()).attributionReport(.with {
            $0.orgID = firm.org; $0.fromUnixMs = from; $0.beforeUnixMs = clock.nowUnixMs + 1; $0.groupBy = .utmCampaign
        }, options: admin)
        print("")
        print("request".padding(toLength: 36, withPad: " ", startingAt: 0) + "count".leftPad(8) + "p50 ms".leftPad(10) + "p99 ms".leftPad(10) + "target".leftPad(12))
        for (name, times, target) in [("ReserveNumber", reserves, "p99 < 20"), ("RenewReservation", renews, "p99 < 20"),
                                      ("StartCall (asks compliance)", starts, ""), ("CompleteCall", completions, "")] {
            print(name.padding(toLength: 36, withPad: " ", startingAt: 0) + "\(times.count)".leftPad(8) + String(format: "%.2f", percentile(times, 0.5)).leftPad(10)
                  + String(format: "%.2f", percentile(times, 0.99)).leftPad(10) + target.leftPad(12))
        }
        print(String(format: "%.0f number requests/s in all; the pool: %d visits, %d reservations, %d taken over, %d visitors shown the source's number (every number held, none idle 5 minutes)",
                     Double(reserves.count + renews.count) / seconds, status.visits, status.reservations, status.takenOver, sourceNumbers))
        print(String(format: "calls to the pool: %d, joined to a visit: %d (%.1f%%)", report.poolCalls, report.joinedCalls,
                     report.poolCalls == 0 ? 0 : Double(report.joinedCalls) * 100 / Double(report.poolCalls)))
    }

    /// Calls to the pool's numbers at `callRate` a second until `end`, each on time whatever the
    /// last one took (started and then completed as the telephony gateway does); each request's
    /// milliseconds.
    private func calls(to numbers: [String], until end: ContinuousClock.Instant, firm: TranscriptBench.Firm) async throws
        -> (starts: [Double], completions: [Double]) {
        let telephony = Calltrace_Transcript_V1_CallServiceClient(try firm.transcript.newClient(identity: TemporaryPKI.telephony))
        let org = firm.org
        return try await withThrowingTaskGroup(of: (Double, Double).self) { group in
            var due = ContinuousClock.now
            var call = 0
            while due < end {
                try await Task.sleep(until: due)
                let (id, number, caller) = ("bench-call-\(call)", numbers.randomElement()!, "+447700900\(String(format: "%03d", call % 1000))")
                group.addTask {
                    var clock = ContinuousClock.now
                    let started = try await telephony.startCall(.with {
                        $0.callID = id; $0.trackingNumber = number; $0.callerNumber = caller; $0.direction = .inbound
                    })
                    let start = clock.duration(to: .now).milliseconds
                    guard started.orgID == org, started.record else { throw ValidationError("call \(id) was not to be recorded: \(started.reason)") }
                    clock = .now
                    _ = try await telephony.completeCall(.with {
                        $0.callID = id; $0.orgID = org; $0.outcome = .answered; $0.durationMs = 60_000
                    })
                    return (start, clock.duration(to: .now).milliseconds)
                }
                call += 1
                due += .seconds(1 / callRate)
            }
            var starts: [Double] = [], completions: [Double] = []
            for try await (start, completion) in group {
                starts.append(start)
                completions.append(completion)
            }
            return (starts, completions)
        }
    }
}
