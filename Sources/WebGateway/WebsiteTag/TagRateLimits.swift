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
    /// Subjects counted at once; past it, closed windows are dropped (a sweep reads every entry,
    /// so a full table is swept at most once a second), and if none has closed a request that
    /// would add a subject is refused rather than the table grown. Subjects already counted are
    /// counted on.
    static let maxSubjects = 100_000
    static let sweepIntervalMS: Int64 = 1_000

    private struct Window {
        var started: Int64
        var count: Int
        let length: Int64

        func isOpen(at now: Int64) -> Bool { now - started < length }
    }

    private struct Table {
        var windows: [String: Window] = [:]
        var swept: Int64?
    }

    private let clock: any WallClock
    private let table = Locked(Table())

    init(clock: any WallClock) {
        self.clock = clock
    }

    /// How many subjects are counted now (for tests).
    var counted: Int { table.withLock { $0.windows.count } }

    /// Counts one request against each of `subjects`; when any is over its limit, counts
    /// nothing and returns the seconds until that window ends (for `Retry-After`).
    func admit(_ subjects: [(key: String, limit: Limit)]) -> Int? {
        let now = clock.nowUnixMs
        return table.withLock { table in
            let fresh = subjects.count { table.windows[$0.key] == nil }
            if fresh > 0, table.windows.count + fresh > Self.maxSubjects {
                // (A wall clock set back counts as time passed: it never holds off the sweep.)
                if table.swept.map({ now - $0 >= Self.sweepIntervalMS || now < $0 }) ?? true {
                    table.windows = table.windows.filter { $0.value.isOpen(at: now) }
                    table.swept = now
                }
                if table.windows.count + fresh > Self.maxSubjects { return 60 }
            }
            for (key, limit) in subjects {
                if let window = table.windows[key], window.isOpen(at: now), window.count >= limit.count {
                    return Int((window.started + window.length - now + 999) / 1000)
                }
            }
            for (key, limit) in subjects {
                if let window = table.windows[key], window.isOpen(at: now) {
                    table.windows[key]?.count = window.count + 1
                } else {
                    table.windows[key] = Window(started: now, count: 1, length: limit.windowMS)
                }
            }
            return nil
        }
    }
}
