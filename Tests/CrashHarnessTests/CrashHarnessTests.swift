import CallTraceTestSupport
import Foundation
import Testing

@Suite("P9, P10, P11, P13, P15 under kill -9: a random service or gateway killed at a random moment of ingest, a call through Twilio's webhooks, deletion over RPC or on the web app's page, retention, erasure and offboarding, then the whole deployment's invariants", .serialized)
struct CrashHarnessTests {
    /// `make crash` runs 200 (`CRASH_TRIALS`); the suite a few.
    static let trials = Int(ProcessInfo.processInfo.environment["CRASH_TRIALS"] ?? "") ?? 4
    /// A run is replayed (the same work, victims and moments, as far as timing allows) with `CRASH_SEED`.
    static let seed = UInt64(ProcessInfo.processInfo.environment["CRASH_SEED"] ?? "") ?? UInt64.random(in: 1...UInt64.max)

    @Test("Each trial kills one of the four services or a gateway mid-work and starts it again: no recording without its call or lost on its way from Twilio, no call half-deleted, every deletion, retention run and erasure finished, every file and key named, no job given up, the audit chain intact with each event once")
    func killAndCheck() async throws {
        print("crash harness: \(Self.trials) trials, seed \(Self.seed)")
        let harness = try await CrashHarness.start(seed: Self.seed)
        defer { Task { await harness.stop() } }
        let started = ContinuousClock.now
        var checked = 0, violations: [String] = []
        for trial in 1...Self.trials {
            let result = try await harness.trial()
            checked += result.checked
            violations += result.violations.map { "trial \(trial): \($0)" }
            if trial % 20 == 0 && trial < Self.trials {
                print("crash harness: \(trial) of \(Self.trials) trials, \(checked) invariants checked, \(violations.count) violations")
            }
        }
        let seconds = Double((ContinuousClock.now - started).components.seconds)
        print("""
            crash harness (seed \(Self.seed)): \(Self.trials) trials in \(Int(seconds)) s; killed \(harness.kills.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")); \
            \(harness.killsDuringCalls) of them during the work's calls, the rest during the jobs it left; work \(harness.work.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")); \
            invariants checked \(checked); violations \(violations.count)
            """)
        #expect(violations.isEmpty, "\(violations.prefix(30).joined(separator: "\n"))")
    }

    @Test("The invariants can fail: a recording's file gone and an unfinished file left in media's folder are each found, and nothing else")
    func invariantsSeeDamage() async throws {
        let harness = try await CrashHarness.start(seed: Self.seed)
        defer { Task { await harness.stop() } }
        var found: [String] = []
        for _ in 0..<3 where harness.recordingsStored.isEmpty { _ = try await harness.trial() }
        var clean: [String] = []
        _ = try await harness.check(into: &clean)
        #expect(clean.isEmpty, "\(clean)")

        let folder = harness.deployment.recordingsFolder
        let victim = try #require(try FileManager.default.contentsOfDirectory(atPath: folder).sorted().first)
        try FileManager.default.moveItem(atPath: "\(folder)/\(victim)", toPath: "\(folder)/../\(victim).aside")
        try Data("half".utf8).write(to: URL(fileURLWithPath: "\(folder)/rec_planted.partial"))
        _ = try await harness.check(into: &found)
        #expect(found.count == 2 && found.contains { $0.contains("without its file \(victim)") } && found.contains { $0.hasSuffix("rec_planted.partial") },
                "\(found)")
    }
}
