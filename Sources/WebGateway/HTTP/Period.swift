import Foundation

/// A period chosen on a page as two UK days, `from` and `to` inclusive (`<input type="date">`
/// values, `yyyy-MM-dd`), as the services take it: from the start of the first London day to
/// the start of the day after the last.
struct Period: Sendable {
    let from: String
    let to: String
    let fromUnixMs: Int64
    let beforeUnixMs: Int64

    /// The query's `from` and `to`. With `defaultDays`, a bounded period: `to` today when not
    /// given, `from` that many days before `to`; without, a side not given is unbounded.
    static func read(_ query: Form, now: Int64, defaultDays: Int?) throws -> Period {
        var from = query["from"], to = query["to"]
        if let defaultDays {
            if to.isEmpty { to = Formats.isoDay(unixMs: now) }
            if from.isEmpty { from = Formats.isoDay(unixMs: (Formats.startOfDay(to) ?? now) - Int64(defaultDays - 1) * 86_400_000) }
        }
        var fromMs: Int64 = 0, beforeMs: Int64 = 0
        if !from.isEmpty {
            guard let start = Formats.startOfDay(from) else { throw PageError.invalid("The ‘from’ date is not a date.") }
            fromMs = start
        }
        if !to.isEmpty {
            guard let start = Formats.startOfDay(to) else { throw PageError.invalid("The ‘to’ date is not a date.") }
            beforeMs = dayAfter(start)
        }
        if fromMs > 0, beforeMs > 0, beforeMs <= fromMs { throw PageError.invalid("The ‘to’ date is before the ‘from’ date.") }
        return Period(from: from, to: to, fromUnixMs: fromMs, beforeUnixMs: beforeMs)
    }

    /// The start of the next London day (23 or 25 hours on when the clocks change).
    private static func dayAfter(_ startOfDay: Int64) -> Int64 {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = Formats.london
        let next = calendar.date(byAdding: .day, value: 1, to: Date(timeIntervalSince1970: Double(startOfDay) / 1000))
        return next.map { Int64($0.timeIntervalSince1970 * 1000) } ?? startOfDay + 86_400_000
    }

    /// "1 Nov 2026 to 30 Nov 2026", "since 1 Nov 2026", "up to 30 Nov 2026" or "all time".
    var described: String {
        let first = fromUnixMs > 0 ? Formats.date(unixMs: fromUnixMs) : "", last = beforeUnixMs > 0 ? Formats.date(unixMs: beforeUnixMs - 1) : ""
        switch (first.isEmpty, last.isEmpty) {
        case (false, false): return "\(first) to \(last)"
        case (false, true): return "since \(first)"
        case (true, false): return "up to \(last)"
        case (true, true): return "all time"
        }
    }

    /// The query items that choose this period again.
    var queryItems: [(String, String)] { [("from", from), ("to", to)] }
}

/// `/path?name=value&…` of the non-empty items, each escaped whole (a `+`, `&` or `=` typed in
/// a filter comes back as typed).
func link(_ path: String, _ items: [(String, String)]) -> String {
    let allowed = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
    let query = items.filter { !$0.1.isEmpty }.map { name, value in
        "\(name)=\(value.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")"
    }.joined(separator: "&")
    return query.isEmpty ? path : path + "?" + query
}
