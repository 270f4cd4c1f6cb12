import ArgumentParser
import CallTraceRPC
import CallTraceTestSupport
import Foundation
import Logging

/// libcalltrace (clients/c) against the same Swift echo server the `rpc` benchmark uses, beside a
/// raw C client of that server (no library: what any C client must do for the same calls) and
/// the C floor (ctrpc-floor: plain OpenSSL, C to C, no protocol), alternating each round.
struct CClientBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "c-client", abstract: "The C client's unary latency, calls/s and streaming throughput vs the C floor.")

    @Option(help: "Path to ctrpc-floor (default: beside this executable).")
    var floor: String = productsDirectory.appendingPathComponent("ctrpc-floor").path
    @Option(help: "Path to calltrace-c-bench (default: c/ beside this executable, where `make bench-c` builds it).")
    var client: String = productsDirectory.appendingPathComponent("c/calltrace-c-bench").path
    @Option(help: "Rounds.") var rounds = 3
    @Option(help: "Round trips per latency measurement.") var count = 20_000
    @Option(help: "Seconds per calls/s measurement.") var seconds = 2.0
    @Option(help: "MiB per streaming measurement.") var streamMib = 256

    func run() async throws {
        let pki = try TemporaryPKI()
        let serverIdentity = TemporaryPKI.identity("service", "media")
        let serverCredentials = try pki.credentials(for: serverIdentity)
        let clientCredentials = try pki.credentials(for: TemporaryPKI.identity("gateway", "bench"))
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        let server = try RPCServer(configuration: .init(credentials: serverCredentials, info: .init(serviceName: "bench", version: "bench")),
                                   services: [EchoService(mode: .benchmark)], logger: logger)
        defer { server.stop() }
        let floorArguments = [serverCredentials.certificateChainPath, serverCredentials.privateKeyPath, serverCredentials.trustRootsPath]
        let clientArguments = ["127.0.0.1", "\(server.port)", clientCredentials.certificateChainPath, clientCredentials.privateKeyPath,
                               clientCredentials.trustRootsPath, serverIdentity]
        print("calltrace-bench c-client: \(rounds) rounds against the Swift echo server, alternating: libcalltrace (C), a raw C client")
        print("with no library (blocking OpenSSL, protoc-c frames, one connection per caller), and ctrpc-floor (C to C, no protocol)")
        var rows: [String: [(ours: Double, raw: Double, floor: Double)]] = [:]
        for round in 1...rounds {
            // CPU per call on both sides: the children's (the C programs) and, for the two
            // clients of the Swift server, this process's (the server's).
            let calls = Double(count + count / 10)
            var cpu = (CPUTime.current(), CPUTime.children())
            func cpuPerCall() -> Double {
                let now = (CPUTime.current(), CPUTime.children())
                defer { cpu = now }
                return (now.0 - cpu.0 + now.1 - cpu.1) / calls
            }
            let floorLatency = try await measure(floor, floorArguments + ["latency", "\(count)"])
            let floorCPU = cpuPerCall()
            let rawLatency = try await measure(client, clientArguments + ["raw-latency", "\(count)"])
            let rawCPU = cpuPerCall()
            let ourLatency = try await measure(client, clientArguments + ["latency", "\(count)"])
            rows["CPU µs per unary call", default: []].append((cpuPerCall(), rawCPU, floorCPU))
            rows["unary p50 µs", default: []].append((ourLatency[0], rawLatency[0], floorLatency[0]))
            rows["unary p99 µs", default: []].append((ourLatency[1], rawLatency[1], floorLatency[1]))
            for callers in [1, 16] {
                let floorRate = try await measure(floor, floorArguments + ["throughput", "\(callers)", "\(seconds)"])[0]
                let rawRate = try await measure(client, clientArguments + ["raw-throughput", "\(callers)", "\(seconds)"])[0]
                let ourRate = try await measure(client, clientArguments + ["throughput", "\(callers)", "\(seconds)"])[0]
                rows["calls/s, \(callers) caller\(callers == 1 ? "" : "s")", default: []].append((ourRate, rawRate, floorRate))
            }
            let floorStream = try await measure(floor, floorArguments + ["stream", "\(streamMib)"])[0]
            let rawStream = try await measure(client, clientArguments + ["raw-stream", "\(streamMib)"])[0]
            let ourStream = try await measure(client, clientArguments + ["stream", "\(streamMib)"])[0]
            rows["stream MB/s", default: []].append((ourStream, rawStream, floorStream))
            print("round \(round) done")
        }
        print()
        var heading = "metric".padding(toLength: 22, withPad: " ", startingAt: 0) + "libcalltrace".leftPad(14)
        heading += "raw C".leftPad(10) + "vs raw".leftPad(9) + "C floor".leftPad(10) + "vs floor".leftPad(10) + "  target"
        print(heading)
        for name in ["unary p50 µs", "unary p99 µs", "CPU µs per unary call", "calls/s, 1 caller", "calls/s, 16 callers", "stream MB/s"] {
            guard let samples = rows[name] else { continue }
            let target = name.hasPrefix("unary p50") ? "≤ 1.1x" : name.hasPrefix("calls") || name.hasPrefix("stream") ? "≥ 0.9x" : ""
            let ours = median(samples.map(\.ours)), raw = median(samples.map(\.raw)), floorValue = median(samples.map(\.floor))
            let versusRaw = median(samples.map { $0.ours / $0.raw }), versusFloor = median(samples.map { $0.ours / $0.floor })
            var line = name.padding(toLength: 22, withPad: " ", startingAt: 0)
            line += String(format: "%.1f", ours).leftPad(14) + String(format: "%.1f", raw).leftPad(10)
            line += String(format: "%.2fx", versusRaw).leftPad(9) + String(format: "%.1f", floorValue).leftPad(10)
            line += String(format: "%.2fx", versusFloor).leftPad(10) + "  " + target
            print(line)
        }
    }

    private func measure(_ program: String, _ arguments: [String]) async throws -> [Double] {
        let result = try await CallTraceTestSupport.run(program, arguments)
        guard result.status == 0 else { throw ValidationError("\(program) failed: \(result.stderr)") }
        return result.stdout.split(separator: " ").dropFirst().compactMap { Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }
}
