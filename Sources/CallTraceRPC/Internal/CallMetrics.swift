import CallTraceProto
import Synchronization

/// Per-method counters and a latency histogram, updated as each call ends.
final class CallMetrics: Sendable {
    /// Latency bucket upper bounds, seconds (Prometheus-style, +Inf implied).
    static let bounds: [Double] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

    private struct Method {
        var calls: UInt64 = 0
        var byCode: [StatusCode: UInt64] = [:]
        var buckets = [UInt64](repeating: 0, count: CallMetrics.bounds.count)
        var sum: Double = 0
    }
    private let methods = Mutex<[String: Method]>([:])

    func record(method: String, code: StatusCode, duration: Duration) {
        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        let bucket = Self.bounds.firstIndex { seconds <= $0 }
        methods.withLock { all in
            all[method, default: Method()].calls += 1
            all[method]!.byCode[code, default: 0] += 1
            all[method]!.sum += seconds
            if let bucket { all[method]!.buckets[bucket] += 1 }
        }
    }

    func snapshot() -> [Calltrace_Ops_V1_MethodMetrics] {
        methods.withLock { all in
            all.sorted { $0.key < $1.key }.map { name, method in
                var metrics = Calltrace_Ops_V1_MethodMetrics()
                metrics.method = name
                metrics.calls = method.calls
                metrics.statuses = method.byCode.sorted { $0.key.rawValue < $1.key.rawValue }.map {
                    var count = Calltrace_Ops_V1_StatusCount()
                    count.code = $0.key.description
                    count.count = $0.value
                    return count
                }
                var running: UInt64 = 0
                metrics.cumulativeBucketCounts = method.buckets.map { running += $0; return running } + [method.calls]
                metrics.durationSumSeconds = method.sum
                return metrics
            }
        }
    }
}
