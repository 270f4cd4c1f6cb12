import CallTraceSync
import Foundation
import Logging
import ServiceLifecycle
import UnixSignals

/// A serving instance under swift-service-lifecycle: one `ServiceGroup` runs it until a stop
/// comes (SIGTERM, SIGINT, or the lifeline closing), then drains it — NOT_SERVING, calls in
/// flight finish within the drain time, jobs stop after the one running, databases close — and
/// SIGHUP reloads its TLS material meanwhile.
enum ServingLifecycle {
    static func run(_ instance: ServiceInstance, stops: StopTriggers, drain: Duration, revocationList: String?, logger: Logger) async throws {
        let serving = Serving(instance: instance, drain: drain, stops: stops, revocationList: revocationList, logger: logger)
        // Companions (a gateway's HTTP listener) stop before the RPC server drains: the group
        // shuts its services down in reverse order.
        let group = ServiceGroup(configuration: .init(services: [.init(service: serving)] + instance.companions.map { .init(service: $0) },
                                                      logger: logger))
        try await withThrowingTaskGroup(of: Bool.self) { tasks in
            tasks.addTask {
                try await group.run()
                return true
            }
            tasks.addTask {
                // The group's own signal handling knows no lifeline and would not say which signal stopped the service.
                if await stops.first() != nil { await group.triggerGracefulShutdown() }
                return false
            }
            // Until the group has drained and returned: cancelling it would cut the drain short
            // (its waits would end at once, and spin).
            while let groupReturned = try await tasks.next() {
                if groupReturned {
                    tasks.cancelAll()
                    return
                }
            }
        }
    }

    /// The instance as the group's one service.
    private struct Serving: Service {
        let instance: ServiceInstance
        let drain: Duration
        let stops: StopTriggers
        let revocationList: String?
        let logger: Logger

        func run() async throws {
            let reloads = stops.reloads
            await withTaskGroup(of: Void.self) { tasks in
                tasks.addTask {
                    // A renewed certificate or a new revocation list, for the connections accepted from now on.
                    for await _ in reloads.cancelOnGracefulShutdown() {
                        do {
                            try instance.server.reloadCredentials()
                            logger.notice("TLS material reloaded", metadata: ["revocation_list": "\(revocationList ?? "none")"])
                        } catch {
                            logger.error("TLS material not reloaded; serving with the previous", metadata: ["error": "\(error)"])
                        }
                    }
                }
                try? await gracefulShutdown()
                tasks.cancelAll()
            }
            logger.notice("stopping", metadata: ["signal": "\(stops.cause ?? "stop")", "drain_seconds": "\(drain.components.seconds)"])
            await instance.stop(gracePeriod: drain)
            logger.notice("stopped")
        }
    }
}

/// What stops a serving process: SIGTERM or SIGINT — or, with `CALLTRACE_LIFELINE=stdin`,
/// standard input closing: a supervisor (a test harness, a development script) that holds the
/// other end takes the service with it when it dies, however it dies. Heard from the moment
/// `listen()` returns.
final class StopTriggers: Sendable {
    private let stops: AsyncStream<String>
    private let continuation: AsyncStream<String>.Continuation
    private let signals: UnixSignalsSequence
    /// SIGHUP, trapped from the start as the stops are: a `systemctl reload` as soon as the
    /// service is up reloads it, and never meets SIGHUP's default action (the end of the process).
    let reloads: UnixSignalsSequence
    private let firstCause = Locked<String?>(nil)

    private init(signals: UnixSignalsSequence, reloads: UnixSignalsSequence) {
        (stops, continuation) = AsyncStream.makeStream(of: String.self, bufferingPolicy: .bufferingOldest(1))
        self.signals = signals
        self.reloads = reloads
    }

    static func listen() async -> StopTriggers {
        let triggers = StopTriggers(signals: await UnixSignalsSequence(trapping: .sigterm, .sigint),
                                    reloads: await UnixSignalsSequence(trapping: .sighup))
        let continuation = triggers.continuation
        Task {
            for await signal in triggers.signals {
                continuation.yield(signal == .sigterm ? "SIGTERM" : signal == .sigint ? "SIGINT" : "\(signal)")
            }
        }
        if ProcessInfo.processInfo.environment["CALLTRACE_LIFELINE"] == "stdin" {
            let watcher = Thread {
                var buffer = [UInt8](repeating: 0, count: 64)
                while true {
                    let n = read(STDIN_FILENO, &buffer, buffer.count)
                    if n > 0 || (n < 0 && errno == EINTR) { continue }
                    break
                }
                continuation.yield("lifeline closed")
            }
            watcher.name = "calltrace-lifeline"
            watcher.start()
        }
        return triggers
    }

    /// The first stop, once it comes (nil if the wait is cancelled).
    func first() async -> String? {
        for await cause in stops {
            firstCause.withLock { $0 = $0 ?? cause }
            return cause
        }
        return nil
    }

    /// What stopped the process, once something did.
    var cause: String? { firstCause.withLock { $0 } }
}
