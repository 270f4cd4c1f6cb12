// calltrace-bench: performance figures, always side by side with a baseline measured in the same run.
import ArgumentParser
import CallTraceAPI
import CallTraceKeys
import CallTraceProto
import CallTraceRPC
import CallTraceTestSupport
import Foundation
import Logging

@main
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calltrace-bench",
        abstract: "CallTrace benchmarks, each beside a floor measured in the same run.",
        subcommands: [RPCBench.self, MediaBench.self, StorageBench.self, ScaleBench.self, TranscriptBench.self, WebsiteBench.self, CClientBench.self, WebBench.self,
                      TelephonyBench.self])
}

/// ctrpc/1 against a plain C OpenSSL echo (ctrpc-floor), alternating each round, because loopback
/// latency on small VMs is bimodal and only ratios from one run compare.
struct RPCBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rpc", abstract: "Unary latency, calls/s and streaming throughput vs the C floor.")

    @Option(help: "Path to the ctrpc-floor executable (default: beside this one; `make bench` builds both).")
    var floor: String = productsDirectory.appendingPathComponent("ctrpc-floor").path
    @Option(help: "Rounds; each runs the floor and ctrpc once per measurement.")
    var rounds = 3
    @Option(help: "Round trips per latency measurement.")
    var count = 20_000
    @Option(help: "Seconds per calls/s measurement.")
    var seconds = 2.0
    @Option(help: "MiB per streaming measurement.")
    var streamMib = 256
    @Flag(help: "Only the unary latency measurement of ctrpc, no floor (for profiling with perf).")
    var latencyOnly = false

    func run() async throws {
        let pki = try TemporaryPKI()
        let serverIdentity = TemporaryPKI.identity("service", "media")
        let serverCredentials = try pki.credentials(for: serverIdentity)
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        let server = try RPCServer(
            configuration: .init(credentials: serverCredentials, info: .init(serviceName: "bench", version: "bench")),
            services: [EchoService(mode: .benchmark)], logger: logger)
        defer { server.stop() }
        let client = try RPCClient(target: .init(host: "127.0.0.1", port: server.port, identity: serverIdentity),
                                   configuration: .init(credentials: try pki.credentials(for: TemporaryPKI.identity("gateway", "bench"))))
        let floorArguments = [serverCredentials.certificateChainPath, serverCredentials.privateKeyPath, serverCredentials.trustRootsPath]
        let serverThreads = ServerThreads()

        if latencyOnly {
            let cpu = CPUTime.current(), user = CPUTime.current(userOnly: true)
            let figures = try await latency(client, server: serverThreads)
            let calls = Double(count + count / 10)
            print(String(format: "ctrpc unary p50 %.1f µs, p99 %.1f µs; per call: CPU %.1f µs, of which user %.1f µs, of which the server %.1f µs",
                         figures.p50, figures.p99, (CPUTime.current() - cpu) / calls, (CPUTime.current(userOnly: true) - user) / calls,
                         figures.serverCPU))
            return
        }
        print("calltrace-bench rpc: \(rounds) rounds, ctrpc/1 (Swift) vs ctrpc-floor (C, plain OpenSSL mTLS echo), alternating")
        print("host: \(ProcessInfo.processInfo.activeProcessorCount) CPUs; unary payload 100 B; stream chunks 64 KiB")
        var rows: [String: [(ours: Double, floor: Double)]] = [:]
        for round in 1...rounds {
            let floorCPU = CPUTime.children()
            let floorLatency = try await runFloor(floorArguments + ["latency", "\(count)"])
            let floorCPUPerCall = (CPUTime.children() - floorCPU) / Double(count + count / 10)
            let ourCPU = CPUTime.current()
            let ourLatency = try await latency(client, server: serverThreads)
            let ourCPUPerCall = (CPUTime.current() - ourCPU) / Double(count + count / 10)
            rows["CPU µs per unary call", default: []].append((ourCPUPerCall, floorCPUPerCall))
            rows["server CPU µs per call", default: []].append((ourLatency.serverCPU, floorLatency[2]))
            rows["unary p50 µs", default: []].append((ourLatency.p50, floorLatency[0]))
            rows["unary p99 µs", default: []].append((ourLatency.p99, floorLatency[1]))
            for callers in [1, 16] {
                let floorRate = try await runFloor(floorArguments + ["throughput", "\(callers)", "\(seconds)"])[0]
                let ourRate = try await throughput(client, callers: callers)
                rows["calls/s, \(callers) caller\(callers == 1 ? "" : "s")", default: []].append((ourRate, floorRate))
            }
            let floorStream = try await runFloor(floorArguments + ["stream", "\(streamMib)"])[0]
            let ourStream = try await stream(client)
            rows["stream MB/s", default: []].append((ourStream, floorStream))
            print("round \(round) done")
        }
        print("")
        print("metric".padding(toLength: 22, withPad: " ", startingAt: 0)
              + "ctrpc (median)".leftPad(16) + "C floor (median)".leftPad(18) + "ratio".leftPad(9) + "  target")
        let order = ["unary p50 µs", "unary p99 µs", "CPU µs per unary call", "server CPU µs per call", "calls/s, 1 caller",
                     "calls/s, 16 callers", "stream MB/s"]
        // Issue 29's targets. "CPU µs per unary call" is both ends (client and server) of each;
        // "server CPU" the serving threads alone: ctrpc's connection threads, the floor's echo thread.
        let targets = ["unary p50 µs": "≤ 1.2x floor", "server CPU µs per call": "≤ 1.3x floor",
                       "calls/s, 16 callers": "≥ 0.9x floor", "stream MB/s": "≥ 0.9x floor"]
        for name in order {
            guard let samples = rows[name] else { continue }
            let ours = median(samples.map(\.ours)), floor = median(samples.map(\.floor))
            // Ratio per round, then the median: each round's pair shares the machine's state.
            let ratio = median(samples.map { $0.ours / $0.floor })
            print(name.padding(toLength: 22, withPad: " ", startingAt: 0)
                  + String(format: "%.1f", ours).leftPad(16) + String(format: "%.1f", floor).leftPad(18)
                  + String(format: "%.2fx", ratio).leftPad(9) + "  " + (targets[name] ?? ""))
        }
    }

    /// The latency loop: percentiles, and the CPU the server's threads spent per measured call
    /// (the warm-up excluded, as the floor measures its server thread).
    private func latency(_ client: RPCClient, server: ServerThreads) async throws -> (p50: Double, p99: Double, serverCPU: Double) {
        var request = Calltrace_Testing_V1_EchoRequest()
        request.payload = Data(repeating: 7, count: 100)
        for _ in 0..<max(1, count / 10) { _ = try await client.unary(Calltrace_Testing_V1_EchoService.echo, request) }
        var samples: [Double] = []
        samples.reserveCapacity(count)
        let clock = ContinuousClock()
        let serverCPU = server.cpu()
        for _ in 0..<count {
            let start = clock.now
            _ = try await client.unary(Calltrace_Testing_V1_EchoService.echo, request)
            samples.append(start.duration(to: clock.now).microseconds)
        }
        let serverCPUPerCall = (server.cpu() - serverCPU) / Double(count)
        samples.sort()
        return (samples[count / 2], samples[Int(Double(count) * 0.99)], serverCPUPerCall)
    }

    private func throughput(_ client: RPCClient, callers: Int) async throws -> Double {
        let request = Calltrace_Testing_V1_EchoRequest.with { $0.payload = Data(repeating: 7, count: 100) }
        let start = ContinuousClock.now
        let end = start + .milliseconds(Int(seconds * 1000))
        let total = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<callers {
                group.addTask {
                    var calls = 0
                    while ContinuousClock.now < end {
                        _ = try await client.unary(Calltrace_Testing_V1_EchoService.echo, request)
                        calls += 1
                    }
                    return calls
                }
            }
            return try await group.reduce(0, +)
        }
        return Double(total) / start.duration(to: .now).seconds
    }

    private func stream(_ client: RPCClient) async throws -> Double {
        var chunk = Calltrace_Testing_V1_UploadRequest()
        chunk.chunk = Data(repeating: 1, count: 64 * 1024)
        let chunks = streamMib * 16
        let start = ContinuousClock.now
        let response = try await client.clientStreaming(Calltrace_Testing_V1_EchoService.upload) { writer in
            for _ in 0..<chunks { try await writer.send(chunk) }
        }
        let elapsed = start.duration(to: .now).seconds
        guard response.receivedBytes == UInt64(chunks * 64 * 1024) else {
            throw ValidationError("server received \(response.receivedBytes) bytes")
        }
        return Double(streamMib) * 1_048_576 / 1e6 / elapsed
    }

    private func runFloor(_ arguments: [String]) async throws -> [Double] {
        let result = try await CallTraceTestSupport.run(floor, arguments)
        guard result.status == 0 else { throw ValidationError("ctrpc-floor failed: \(result.stderr)") }
        return result.stdout.split(separator: " ").dropFirst().compactMap { Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }
}

/// User plus system CPU time, in microseconds, of this process or of its finished children.
enum CPUTime {
    static func current(userOnly: Bool = false) -> Double { usage(RUSAGE_SELF, userOnly: userOnly) }
    static func children() -> Double { usage(RUSAGE_CHILDREN, userOnly: false) }
    private static func usage(_ who: __rusage_who, userOnly: Bool) -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(who.rawValue), &usage)
        let user = Double(usage.ru_utime.tv_sec) * 1e6 + Double(usage.ru_utime.tv_usec)
        return userOnly ? user : user + Double(usage.ru_stime.tv_sec) * 1e6 + Double(usage.ru_stime.tv_usec)
    }
}

/// CPU time, in microseconds, of the in-process server's connection thread (`ctrpc-conn`, the
/// I/O thread its handlers run on), from /proc/self/task/<tid>/schedstat (nanoseconds on a
/// CPU: the clock the floor reads for its server thread, CLOCK_THREAD_CPUTIME_ID). The client
/// runs on `ctrpc-client` and the cooperative pool, so it is not counted.
///
/// The threads are picked by name once, on the first reading, while the bench's one connection
/// is the only server thread: Linux copies a thread's name to the threads it creates, so a pool
/// thread started later from the I/O thread (say, during the stream) is called `ctrpc-conn` too.
final class ServerThreads: @unchecked Sendable {
    private var tasks: [String]?

    func cpu() -> Double {
        let tasks = self.tasks ?? {
            let all = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
            let server = all.filter {
                (try? String(contentsOfFile: "/proc/self/task/\($0)/comm", encoding: .utf8))?
                    .trimmingCharacters(in: .whitespacesAndNewlines) == "ctrpc-conn"
            }
            self.tasks = server
            return server
        }()
        return tasks.reduce(0) { total, task in
            let stat = try? String(contentsOfFile: "/proc/self/task/\(task)/schedstat", encoding: .utf8)
            return total + (stat?.split(separator: " ").first.flatMap { Double($0) } ?? 0) / 1000
        }
    }
}

/// Uploads `mib` copies of `block` (whose SHA-256 is `sha`) as an MP3 recording of org-bench's `call`.
func uploadRecording(_ gateway: Calltrace_Media_V1_RecordingServiceClient, call: String, block: Data, mib: Int, sha: Data) async throws
    -> Calltrace_Media_V1_Recording {
    try await gateway.uploadRecording(options: .init(timeout: .seconds(600))) { writer in
        try await writer.send(.with { $0.header = .with {
            $0.orgID = "org-bench"; $0.callID = call; $0.format = .mp3; $0.channels = 1; $0.sha256 = sha
        } })
        for _ in 0..<mib { try await writer.send(.with { $0.chunk = block }) }
    }.recording
}

/// Plays a recording of org-bench whole, checking it is `expecting` bytes.
func playRecording(_ client: Calltrace_Media_V1_RecordingServiceClient, _ id: String, expecting: Int) async throws {
    let played = try await client.playRecording(.with { $0.orgID = "org-bench"; $0.recordingID = id }, options: .init(timeout: .seconds(600))) { stream in
        var bytes = 0
        for try await message in stream { bytes += message.data.count }
        return bytes
    }
    guard played == expecting else { throw ValidationError("played \(played) bytes of \(expecting)") }
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

/// The value below which a share `p` (0.5, 0.99) of `values` lies.
func percentile(_ values: [Double], _ p: Double) -> Double { values.sorted()[min(values.count - 1, Int(Double(values.count) * p))] }

/// SplitMix64, seeded once from the system: a bench's millions of made-up values without a
/// system call each (the system generator asks the kernel for every value).
struct BenchRandom: RandomNumberGenerator {
    private var state = UInt64.random(in: .min ... .max)

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// `count` random bytes (a multiple of 8).
    mutating func bytes(_ count: Int) -> Data {
        var data = Data(capacity: count)
        for _ in 0..<(count / 8) { withUnsafeBytes(of: next()) { data.append(contentsOf: $0) } }
        return data
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
    var microseconds: Double { seconds * 1e6 }
}

extension String {
    func leftPad(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}

/// The media service as a process, against the C floor's bulk mutual-TLS throughput: a
/// recording uploaded (TLS + SHA-256 + sealing + fsync) and played back (opening + TLS), with
/// the service's peak resident memory during each.
struct MediaBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "media", abstract: "Upload and playback MB/s of one large recording vs the C floor's bulk TLS; the service's RSS growth.")

    @Option(help: "Path to the ctrpc-floor executable (default: beside this one).")
    var floor: String = productsDirectory.appendingPathComponent("ctrpc-floor").path
    @Option(help: "Rounds.") var rounds = 3
    @Option(help: "MiB per recording.") var mib = 256

    func run() async throws {
        let setup = try ServiceSetup(service: "media")
        let process = try setup.start(setup.flags + ["--log-level", "error"])
        try await setup.waitUntilServing(try setup.client())
        let gateway = Calltrace_Media_V1_RecordingServiceClient(try setup.client(identity: TemporaryPKI.identity("gateway", "bench")))
        let transcript = Calltrace_Media_V1_RecordingServiceClient(try setup.client(identity: TemporaryPKI.identity("service", "transcript")))
        let serverCredentials = try setup.pki.credentials(for: TemporaryPKI.identity("service", "media"))
        let floorArguments = [serverCredentials.certificateChainPath, serverCredentials.privateKeyPath, serverCredentials.trustRootsPath]
        // One MiB of audio-like bytes, sent `mib` times; its SHA-256 computed once up front.
        let block = Data((0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) })
        let digest = try SHA256Stream()
        for _ in 0..<mib { digest.update(block) }
        let sha = digest.finish()
        print("calltrace-bench media: \(rounds) rounds, a \(mib) MiB recording, media as a process vs ctrpc-floor bulk TLS (C)")
        var rows: [String: [(ours: Double, floor: Double)]] = [:]
        var growth: [String: [Double]] = [:]
        for round in 1...rounds {
            let floorRate = try await runFloor(floorArguments + ["stream", "\(mib)"])[0]
            let before = try Memory.of(process.pid)
            try Memory.resetPeak(process.pid)
            let started = ContinuousClock.now
            let stored = try await uploadRecording(gateway, call: "bench-\(round)", block: block, mib: mib, sha: sha)
            let uploadRate = Double(mib << 20) / 1e6 / started.duration(to: .now).seconds
            growth["upload", default: []].append(Double(try Memory.of(process.pid).peak - before.current) / 1_048_576)
            rows["upload MB/s", default: []].append((uploadRate, floorRate))

            let idle = try Memory.of(process.pid)
            try Memory.resetPeak(process.pid)
            let playStarted = ContinuousClock.now
            try await playRecording(transcript, stored.recordingID, expecting: mib << 20)
            rows["playback MB/s", default: []].append((Double(mib << 20) / 1e6 / playStarted.duration(to: .now).seconds, floorRate))
            growth["playback", default: []].append(Double(try Memory.of(process.pid).peak - idle.current) / 1_048_576)
            print("round \(round) done")
        }
        process.signal(SIGTERM)
        _ = await process.waitForExit()
        print("")
        print("metric".padding(toLength: 22, withPad: " ", startingAt: 0) + "media (median)".leftPad(16) + "C floor (median)".leftPad(18)
              + "ratio".leftPad(9) + "  target")
        for (name, target) in [("upload MB/s", "≥ 0.4x floor"), ("playback MB/s", "≥ 0.5x floor")] {
            let samples = rows[name] ?? []
            print(name.padding(toLength: 22, withPad: " ", startingAt: 0)
                  + String(format: "%.1f", median(samples.map(\.ours))).leftPad(16) + String(format: "%.1f", median(samples.map(\.floor))).leftPad(18)
                  + String(format: "%.2fx", median(samples.map { $0.ours / $0.floor })).leftPad(9) + "  " + target)
        }
        for name in ["upload", "playback"] {
            let values = growth[name] ?? []
            print("RSS growth, \(name)".padding(toLength: 22, withPad: " ", startingAt: 0)
                  + String(format: "%.1f MiB", values.max() ?? 0).leftPad(16) + "(largest of \(values.count))".leftPad(18) + "".leftPad(9) + "  ≤ 16 MiB")
        }
    }

    private func runFloor(_ arguments: [String]) async throws -> [Double] {
        let result = try await CallTraceTestSupport.run(floor, arguments)
        guard result.status == 0 else { throw ValidationError("ctrpc-floor failed: \(result.stderr)") }
        return result.stdout.split(separator: " ").dropFirst().compactMap { Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }
}

/// A process's resident memory from /proc: now, and its peak since the last reset.
enum Memory {
    static func of(_ pid: pid_t) throws -> (current: Int, peak: Int) {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        func kilobytes(_ field: String) -> Int {
            status.split(separator: "\n").first { $0.hasPrefix(field) }.flatMap { Int($0.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") } ?? 0
        }
        return (kilobytes("VmRSS:") * 1024, kilobytes("VmHWM:") * 1024)
    }

    /// Resets the peak to the current resident size (`echo 5 > /proc/PID/clear_refs`).
    static func resetPeak(_ pid: pid_t) throws {
        try "5".write(toFile: "/proc/\(pid)/clear_refs", atomically: false, encoding: .utf8)
    }
}
