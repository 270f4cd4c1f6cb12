import CallTraceSync
import Foundation

/// The time a service's rules read: expiries of sessions, invitations, resets, support grants,
/// share links, retention and deadlines. Domain code takes one instead of calling `Date()`, so a
/// test moves time forward instead of sleeping.
public protocol WallClock: Sendable {
    /// Milliseconds since 1970-01-01 UTC.
    var nowUnixMs: Int64 { get }

    /// Calls `observer` each time the clock jumps forward (a test's clock; a real clock never
    /// jumps, and ignores it): what waits for a time, such as the job workers, looks again at once.
    func onJump(_ observer: @escaping @Sendable () -> Void)
}

extension WallClock {
    public func onJump(_ observer: @escaping @Sendable () -> Void) {}
}

/// The system's real-time clock.
public struct SystemClock: WallClock {
    public init() {}
    public var nowUnixMs: Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
}

/// A clock that stands still until a test moves it.
public final class TestClock: WallClock {
    private let now: Locked<Int64>
    private let observers = Locked<[@Sendable () -> Void]>([])

    /// Starts at `unixMs` (default: the real time now).
    public init(unixMs: Int64 = SystemClock().nowUnixMs) {
        now = Locked(unixMs)
    }

    public var nowUnixMs: Int64 { now.withLock { $0 } }

    /// Moves time forward by `duration`.
    public func advance(by duration: Duration) {
        now.withLock { $0 += duration.wholeMilliseconds }
        for observer in observers.withLock({ $0 }) { observer() }
    }

    public func onJump(_ observer: @escaping @Sendable () -> Void) {
        observers.withLock { $0.append(observer) }
    }
}

extension Duration {
    /// Whole milliseconds (rounded toward zero): what `WallClock` times are counted in.
    public var wholeMilliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }
}
