import Foundation

/// Which marketing produces real cases (P2): per source, channel or campaign, the calls and
/// callers it brought, how many were answered or missed, how many were new enquiries and how
/// many became matters, and which sources to credit with each matter — the caller's first call
/// in the period (first touch) and their last call up to the one where the matter was opened
/// (last touch). Conversion is matters opened over unique callers.
struct AttributionReport: Sendable {
    struct Line: Sendable, Equatable {
        var key: String
        var calls = 0
        var uniqueCallers = 0
        var answered = 0
        var missed = 0
        var newEnquiries = 0
        var mattersOpened = 0
        var firstTouch = 0
        var lastTouch = 0

        var conversionRate: Double { uniqueCallers == 0 ? 0 : Double(mattersOpened) / Double(uniqueCallers) }
    }

    let lines: [Line]
    let total: Line

    /// `counts` are summed per key in SQL; `facts` are the calls of callers with a matter, in
    /// caller then time order; `uniqueCallers` counts each caller of the period once.
    init(counts: [AttributionCounts], facts: [AttributionFact], uniqueCallers: Int) {
        var lines = counts.map {
            Line(key: $0.key, calls: $0.calls, uniqueCallers: $0.uniqueCallers, answered: $0.answered, missed: $0.missed,
                 newEnquiries: $0.newEnquiries, mattersOpened: $0.mattersOpened)
        }
        var position = Dictionary(uniqueKeysWithValues: lines.enumerated().map { ($1.key, $0) })
        func credit(_ key: String, _ field: WritableKeyPath<Line, Int>) {
            if position[key] == nil {
                position[key] = lines.count
                lines.append(Line(key: key))
            }
            lines[position[key]!][keyPath: field] += 1
        }
        // One caller's calls at a time: first touch is their first call in the period; each
        // matter credits the last call up to and including the one that opened it.
        var start = facts.startIndex
        while start < facts.endIndex {
            var end = start
            while end < facts.endIndex && facts[end].callerIndex == facts[start].callerIndex { end += 1 }
            let calls = facts[start..<end]
            for matter in calls where matter.matterOpened {
                credit(calls.first!.key, \.firstTouch)
                credit(matter.key, \.lastTouch)
            }
            start = end
        }
        self.lines = lines
        // Unique callers over the whole period are not the sum of the rows' (a caller may call
        // two sources); the total counts each caller once.
        var total = Line(key: "total", uniqueCallers: uniqueCallers)
        for line in lines {
            total.calls += line.calls
            total.answered += line.answered
            total.missed += line.missed
            total.newEnquiries += line.newEnquiries
            total.mattersOpened += line.mattersOpened
            total.firstTouch += line.firstTouch
            total.lastTouch += line.lastTouch
        }
        self.total = total
    }
}
