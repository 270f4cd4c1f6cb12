import CallTraceProto
import Synchronization

/// Per-method counters and a latency histogram, updated as each call ends.
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
    }
    private let methods = Mutex<[String: Method]>([:])

    func record(method: String, code: StatusCode, duration: Duration) {
        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        let bucket = Self.bounds.firstIndex { seconds <= $0 }
        methods.withLock { all in
            all[method, default: Method()].record(code: code, seconds: seconds, bucket: bucket)
        }
    }

    func snapshot() -> [Calltrace_Ops_V1_MethodMetrics] {
        methods.withLock { all in
            all.sorted { $0.key < $1.key }.map { name, method in
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
}
