import CallTraceProto
import CallTraceSync
import Synchronization

/// Per-method counters and a latency histogram, updated as each call ends.
///
/// Striped: each connection records into one of a few tables, chosen when it opens, so the I/O
/// threads of many connections do not queue on one lock (one lock spun for 2% of the server's
/// CPU with 16 connections busy); a snapshot adds the tables up.
final class CallMetrics: Sendable {
    /// Latency bucket upper bounds, seconds (Prometheus-style, +Inf implied).
    static let bounds: [Double] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

    private struct Method {
        var calls: UInt64 = 0
        /// Indexed by the status code's wire value.
        var byCode = [UInt64](repeating: 0, count: StatusCode.allCases.count)
        var buckets = [UInt64](repeating: 0, count: CallMetrics.bounds.count)
        var sum: Double = 0

        mutating func record(code: StatusCode, seconds: Double, bucket: Int?) {
            calls += 1
            byCode[Int(code.rawValue)] += 1
            sum += seconds
            if let bucket { buckets[bucket] += 1 }
        }

        mutating func add(_ other: Method) {
            calls += other.calls
            for index in byCode.indices { byCode[index] += other.byCode[index] }
            for index in buckets.indices { buckets[index] += other.buckets[index] }
            sum += other.sum
        }
    }
    private final class Table: Sendable {
        let methods = Locked<[String: Method]>([:])
    }
    private let tables: [Table] = (0..<8).map { _ in Table() }
    private let nextStripe = Atomic<Int>(0)

    /// The table a new connection records into.
    func stripe() -> Int { nextStripe.add(1, ordering: .relaxed).oldValue % tables.count }

    func record(method: String, code: StatusCode, duration: Duration, stripe: Int) {
        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        let bucket = Self.bounds.firstIndex { seconds <= $0 }
        tables[stripe % tables.count].methods.withLock { all in
            all[method, default: Method()].record(code: code, seconds: seconds, bucket: bucket)
        }
    }

    func snapshot() -> [Calltrace_Ops_V1_MethodMetrics] {
        var all: [String: Method] = [:]
        for table in tables {
            table.methods.withLock { methods in
                for (name, method) in methods { all[name, default: Method()].add(method) }
            }
        }
        return all.sorted { $0.key < $1.key }.map { name, method in
            var metrics = Calltrace_Ops_V1_MethodMetrics()
            metrics.method = name
            metrics.calls = method.calls
            metrics.statuses = StatusCode.allCases.filter { method.byCode[Int($0.rawValue)] > 0 }.map { code in
                var count = Calltrace_Ops_V1_StatusCount()
                count.code = code.description
                count.count = method.byCode[Int(code.rawValue)]
                return count
            }
            var running: UInt64 = 0
            metrics.cumulativeBucketCounts = method.buckets.map { running += $0; return running } + [method.calls]
            metrics.durationSumSeconds = method.sum
            return metrics
        }
    }
}
