import CallTraceServiceHost
import CallTraceSync

/// How often the website tag's public endpoints may be asked, counted in memory in fixed
/// windows as identity counts failed sign-ins (a count and the time its window started, per
/// subject): per client address, per website key, and new visits per address, which take pool
/// numbers (a flood of them would hand every number to one machine).
final class TagRateLimits: Sendable {
    struct Limit: Sendable {
        let count: Int
        let windowMS: Int64
    }

    /// A visitor's page asks about three times on arrival and once a minute after: 60 a minute
    /// leaves room for an office of visitors behind one address.
    static let perAddress = Limit(count: 60, windowMS: 60_000)
    /// A busy firm's site: a thousand visitors renewing at once.
    static let perWebsite = Limit(count: 1_200, windowMS: 60_000)
    /// New visits (each holds a pool number for 20 minutes) from one address.
    static let newVisitsPerAddress = Limit(count: 10, windowMS: 10 * 60_000)
    /// Subjects counted at once; past it, expired windows are dropped, and if none has expired
    /// the request is refused rather than the table grown.
    static let maxSubjects = 100_000

    private struct Window {
        var started: Int64
        var count: Int
    }

    private let clock: any WallClock
    private let windows = Locked<[String: Window]>([:])

    init(clock: any WallClock) {
        self.clock = clock
    }

    /// Counts one request against each of `subjects`; when any is over its limit, counts
    /// nothing and returns the seconds until that window ends (for `Retry-After`).
    func admit(_ subjects: [(key: String, limit: Limit)]) -> Int? {
        let now = clock.nowUnixMs
        return windows.withLock { windows in
            if windows.count + subjects.count > Self.maxSubjects {
                windows = windows.filter { key, window in
                    subjects.contains { $0.key == key } || now - window.started < Self.longestWindow
                }
                if windows.count + subjects.count > Self.maxSubjects { return 60 }
            }
            for (key, limit) in subjects {
                if let window = windows[key], now - window.started < limit.windowMS, window.count >= limit.count {
                    return Int((window.started + limit.windowMS - now + 999) / 1000)
                }
            }
            for (key, limit) in subjects {
                if let window = windows[key], now - window.started < limit.windowMS {
                    windows[key]?.count = window.count + 1
                } else {
                    windows[key] = Window(started: now, count: 1)
                }
            }
            return nil
        }
    }

    private static let longestWindow = [perAddress, perWebsite, newVisitsPerAddress].map(\.windowMS).max()!
}
