import CallTraceProto
public import CallTraceRPC
import CallTraceSync
import Foundation

/// `calltrace.testing.v1.EchoService`, for protocol tests and benchmarks. It records what it
/// observed (cancellations, deadlines) so tests can assert on the server's side of a call.
public final class EchoService: RPCService {
    /// What the service saw, by request tag.
    public struct Observations: Sendable {
        /// Calls whose handler started (tests wait for this instead of sleeping).
        public var startedTags: Set<String> = []
        public var cancelledTags: Set<String> = []
        public var completedTags: Set<String> = []
        public var recordCounts: [String: UInt64] = [:]
        /// Download chunks handed to the writer and accepted, by tag.
        public var chunksSent: [String: Int] = [:]
    }

    /// What the service does besides answering.
    public enum Mode: Sendable {
        /// Echo reports what the handler saw (identity, metadata, deadline, client address),
        /// Upload checksums what it receives: for tests.
        case testing
        /// Echo returns the payload only and Upload only counts, the work `ctrpc-floor`'s echo
        /// does: for benchmarks against it.
        case benchmark
    }

    private let observed = Locked(Observations())
    public let allow: PeerPolicy
    public let mode: Mode

    public init(allow: PeerPolicy = .anyPeer, mode: Mode = .testing) {
        self.allow = allow
        self.mode = mode
    }

    public var observations: Observations { observed.withLock { $0 } }

    /// Calls tagged `hold:…` wait until the test releases their tag: a call in flight for exactly
    /// as long as the test needs, without guessing a delay.
    private let holds = Locked<(released: Set<String>, waiting: [String: CheckedContinuation<Void, Never>])>(([], [:]))

    public func release(_ tag: String) {
        let waiter = holds.withLock { state -> CheckedContinuation<Void, Never>? in
            state.released.insert(tag)
            return state.waiting.removeValue(forKey: tag)
        }
        waiter?.resume()
    }

    private func held(_ tag: String) async {
        await withCheckedContinuation { continuation in
            let free = holds.withLock { state -> Bool in
                if state.released.contains(tag) { return true }
                state.waiting[tag] = continuation
                return false
            }
            if free { continuation.resume() }
        }
    }

    public func register(with router: inout RPCRouter) {
        let reportsContext = mode == .testing
        router.unary(Calltrace_Testing_V1_EchoService.echo, allow: allow) { [self] request, context in
            if reportsContext && !request.tag.isEmpty { observed.withLock { _ = $0.startedTags.insert(request.tag) } }
            if request.tag.hasPrefix("hold:") { await held(request.tag) }
            if request.delayMs > 0 {
                do {
                    try await Task.sleep(for: .milliseconds(Int(request.delayMs)))
                } catch {
                    observed.withLock { _ = $0.cancelledTags.insert(request.tag) }
                    throw error
                }
            }
            if request.failWithCode != 0 {
                throw RPCError(StatusCode(wireValue: request.failWithCode), "failing as asked")
            }
            var response = Calltrace_Testing_V1_EchoResponse()
            response.payload = request.payload
            guard reportsContext else { return response }
            response.callerIdentity = context.peer.uri
            response.echoedMetadata = context.metadata["x-echo"] ?? ""
            if let org = context.metadata["x-org"] { context.annotate(org: org) }
            response.clientAddress = context.clientAddress ?? ""
            if let remaining = context.timeRemaining {
                response.deadlineRemainingMs = UInt64(max(0, remaining.components.seconds * 1000
                                                         + remaining.components.attoseconds / 1_000_000_000_000_000))
            }
            if !request.tag.isEmpty { observed.withLock { _ = $0.completedTags.insert(request.tag) } }
            return response
        }
        let checksums = mode == .testing
        router.clientStreaming(Calltrace_Testing_V1_EchoService.upload, allow: allow) { requests, _ in
            var response = Calltrace_Testing_V1_UploadResponse()
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            for try await request in requests {
                response.receivedMessages += 1
                response.receivedBytes += UInt64(request.chunk.count)
                if checksums { hash = fnv1a(request.chunk, seed: hash) }
            }
            response.checksum = hash
            return response
        }
        router.serverStreaming(Calltrace_Testing_V1_EchoService.download, allow: allow) { [self] request, writer, _ in
            var chunk = Calltrace_Testing_V1_DownloadResponse()
            chunk.chunk = Data((0..<Int(request.chunkSizeBytes)).map { UInt8(truncatingIfNeeded: $0) })
            for _ in 0..<request.chunkCount {
                try await writer.send(chunk)
                if !request.tag.isEmpty { observed.withLock { $0.chunksSent[request.tag, default: 0] += 1 } }
            }
        }
        router.unary(Calltrace_Testing_V1_EchoService.record, allow: allow) { [self] request, _ in
            var response = Calltrace_Testing_V1_RecordResponse()
            response.timesSeen = observed.withLock { state in
                state.recordCounts[request.tag, default: 0] += 1
                return state.recordCounts[request.tag]!
            }
            return response
        }
    }
}

/// FNV-1a 64 over `data`, continuing from `seed`.
public func fnv1a(_ data: Data, seed: UInt64 = 0xcbf2_9ce4_8422_2325) -> UInt64 {
    var hash = seed
    data.withUnsafeBytes { bytes in
        for byte in bytes {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
    }
    return hash
}
