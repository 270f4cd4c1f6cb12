import ArgumentParser
import CallTraceAPI
import CallTraceDeploymentSupport
import CallTraceProto
import CallTraceRPC
import CallTraceTestSupport
import Foundation

/// Issue 34: the transcript service's calls per second on its footings, in one run on this
/// machine: a SQLite database; a PostgreSQL database (15, from Debian's packages, in a
/// temporary folder, over TLS) with the key store a SQLite file, then in PostgreSQL too; and two
/// replicas sharing that PostgreSQL database and key store. A write-heavy load (the telephony gateway starting and completing calls) and a
/// read-heavy one (a firm's admin listing its calls), each from `callers` callers at once over
/// real mutual TLS. Identity and compliance run beside it in this process, as in the suite.
///
/// Both replicas share this process's two cores: the figure says what a second replica costs
/// or keeps (the database's one write lock, the round trips), not what a second machine adds.
struct ScaleBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scale",
        abstract: "Calls/s of StartCall+CompleteCall and of ListCalls on SQLite, on PostgreSQL (key store in SQLite, then in PostgreSQL), and on two replicas.")

    @Option(help: "Seconds each load runs.") var seconds = 10
    @Option(help: "Callers at once.") var callers = 16

    enum Footing: String, CaseIterable {
        case sqlite = "SQLite, one process"
        case postgres = "PostgreSQL, SQLite key store"
        case sharedKeys = "PostgreSQL, key store too"
        case replicas = "PostgreSQL, two replicas"
    }

    func run() async throws {
        try await TestTransport.$current.withValue(.tls) {
            let pki = try TemporaryPKI()
            try await withTemporaryPostgres(pki: pki) { server in
                print("calltrace-bench scale: transcript's calls/s, \(callers) callers at once, \(seconds) s each (PostgreSQL 15 at \(server.folder))")
                print("footing                      StartCall+CompleteCall/s   ListCalls/s")
                for footing in Footing.allCases {
                    let (writes, reads) = try await TestDatabases.$postgres.withValue(footing == .sqlite ? nil : server) {
                        try await TestDatabases.$sharedKeyStore.withValue([.sharedKeys, .replicas].contains(footing)) { try await measure(footing) }
                    }
                    print(footing.rawValue.padding(toLength: 29, withPad: " ", startingAt: 0)
                          + String(format: "%24.0f   %11.0f", writes, reads))
                }
            }
        }
    }

    /// Calls completed per second, then lists per second, on `footing`.
    private func measure(_ footing: Footing) async throws -> (writes: Double, reads: Double) {
        let firm = try await TranscriptBench.Firm.start()
        let second = footing == .replicas ? try await firm.transcript.replica() : nil
        defer {
            Task {
                await second?.stop()
                await firm.stop()
            }
        }
        let replicas = [firm.transcript] + (second.map { [$0] } ?? [])
        _ = try await Calltrace_Transcript_V1_TrackingNumberServiceClient(try firm.transcript.client()).assignTrackingNumber(.with {
            $0.orgID = firm.org; $0.number = "0118 496 0010"; $0.source = "Google Ads"; $0.channel = .googleAds
        }, options: firm.admin)
        let (org, admin) = (firm.org, firm.admin)

        // Write-heavy: each caller starts and completes calls, on the replicas in turn.
        let telephony = try replicas.map { Calltrace_Transcript_V1_CallServiceClient(try $0.newClient(identity: TemporaryPKI.telephony)) }
        let writes = try await load { caller, n in
            let id = "scale-\(caller)-\(n)"
            let client = telephony[(caller + n) % telephony.count]
            _ = try await client.startCall(.with {
                $0.callID = id; $0.trackingNumber = "01184960010"; $0.callerNumber = "+447700900\(String(format: "%03d", n % 1000))"; $0.direction = .inbound
            })
            _ = try await client.completeCall(.with { $0.callID = id; $0.orgID = org; $0.outcome = .answered; $0.durationMs = 60_000 })
        }
        // Read-heavy: the firm's admin lists its newest 50 calls, on the replicas in turn.
        let lists = try replicas.map { Calltrace_Transcript_V1_CallServiceClient(try $0.newClient()) }
        let reads = try await load { caller, n in
            let page = try await lists[(caller + n) % lists.count].listCalls(.with { $0.orgID = org; $0.pageSize = 50 }, options: admin)
            guard page.calls.count == 50 else { throw ValidationError("a page of \(page.calls.count) calls, not 50") }
        }
        return (writes, reads)
    }

    /// Runs `work` from `callers` callers for `seconds`; how many finished per second.
    private func load(_ work: @escaping @Sendable (_ caller: Int, _ n: Int) async throws -> Void) async throws -> Double {
        let end = ContinuousClock.now + .seconds(seconds)
        let started = ContinuousClock.now
        let done = try await withThrowingTaskGroup(of: Int.self) { group in
            for caller in 0..<callers {
                group.addTask {
                    var n = 0
                    while ContinuousClock.now < end {
                        try await work(caller, n)
                        n += 1
                    }
                    return n
                }
            }
            return try await group.reduce(0, +)
        }
        return Double(done) / started.duration(to: .now).seconds
    }
}
