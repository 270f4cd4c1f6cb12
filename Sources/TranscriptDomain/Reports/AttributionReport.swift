import Foundation

/// Which marketing produces real cases (P2): per source, channel or campaign, the calls and
/// callers it brought, how many were answered or missed, how many were new enquiries and how
/// many became matters, and which sources to credit with each matter — the caller's first call
/// in the period (first touch) and the call on which the matter was opened (last touch).
/// Conversion is matters opened over unique callers.
///
/// Built in one pass over the period's calls in time order (`Builder`), tallied per tracking
/// number assignment and then merged per key: a year of a busy firm's calls (1M) is one
/// index scan, never a row per call in memory. The rules scan the two halves of the period at
/// once, on two read connections, and merge them.
struct AttributionReport: Sendable {
    struct Line: Sendable, Equatable {
        var key: String
        /// By a website visit: the calls joined to no visit (`key` empty), never merged with a value a visit brought.
        var noVisit = false
        var calls = 0
        var uniqueCallers = 0
        var answered = 0
        var missed = 0
        var newEnquiries = 0
        var mattersOpened = 0
        var firstTouch = 0
        var lastTouch = 0
        /// Not marked by staff, but new according to the AI analysis (apart from `newEnquiries`).
        var suggestedNewEnquiries = 0

        var conversionRate: Double { uniqueCallers == 0 ? 0 : Double(mattersOpened) / Double(uniqueCallers) }

        /// Adds `other`'s counts; unique callers are counted apart, from the union of their callers.
        mutating func add(_ other: Line) {
            calls += other.calls
            answered += other.answered
            missed += other.missed
            newEnquiries += other.newEnquiries
            mattersOpened += other.mattersOpened
            firstTouch += other.firstTouch
            lastTouch += other.lastTouch
            suggestedNewEnquiries += other.suggestedNewEnquiries
        }
    }

    let lines: [Line]
    let total: Line
    /// Inbound calls to website pool numbers, and those joined to a visit.
    var poolCalls = 0
    var joinedCalls = 0

    /// Outcome, enquiry and visit-join values (transcript.proto).
    static let answered = 1, missed = 2, newEnquiry = 1, unmarked = 0
    /// The joins of calls to pool numbers, as bits (1 << join): a set looked up a million times a report cost a hash each.
    static let joined = VisitJoin.joined.rawValue
    static let poolJoins = 1 << VisitJoin.joined.rawValue | 1 << VisitJoin.lapsed.rawValue | 1 << VisitJoin.noReservation.rawValue

    /// Tallies one stretch of the period's calls, read in time order. Stretches scanned apart
    /// (the halves of the period, at once) merge, earlier into later, into the period's tallies.
    struct Builder: Sendable {
        /// Per key: a tracking number assignment, or a visit's touch.
        struct Tally: Sendable {
            var key: Int64
            var calls = 0, answered = 0, missed = 0, newEnquiries = 0, matters = 0, suggested = 0
            var callers = Bits()

            /// The same assignment's tally from another stretch.
            mutating func add(_ other: Tally) {
                calls += other.calls
                answered += other.answered
                missed += other.missed
                newEnquiries += other.newEnquiries
                matters += other.matters
                suggested += other.suggested
                callers.formUnion(other.callers)
            }

            /// As a report line under `key`, crediting `firstTouch` matters to it.
            func line(key: String, firstTouch: Int) -> Line {
                Line(key: key, calls: calls, answered: answered, missed: missed, newEnquiries: newEnquiries, mattersOpened: matters,
                     firstTouch: firstTouch, lastTouch: matters, suggestedNewEnquiries: suggested)
            }
        }
        private var tallies: [Tally] = []
        /// Where each key's tally is in `tallies`.
        private var slots: [Int64: Int] = [:]
        private var lastKey: Int64 = -1, lastSlot = 0
        private var poolCalls = 0, joinedCalls = 0
        /// What a row is tallied by: its assignment (source, channel, campaign), or its visit's
        /// touch with the visitor's first visit's touch for first-touch credit.
        let byVisit: Bool
        /// The slot of each caller's first call in the stretch (by caller number), -1 when none.
        private var firstCall: [Int32]
        /// The caller of each matter opened, in order: credited to the source of that caller's
        /// first call (first touch) once every stretch is merged.
        private var matterCallers: [Int32] = []

        /// `callers`: how many caller numbers the organisation has (the arrays grow past it if needed).
        init(callers: Int = 0, byVisit: Bool = false) {
            firstCall = [Int32](repeating: -1, count: max(0, callers))
            self.byVisit = byVisit
        }

        /// The slot of `key`'s tally, made on its first call.
        private mutating func slot(_ key: Int64) -> Int {
            if key == lastKey { return lastSlot }
            let slot = slot(creating: key, callers: firstCall.count)
            (lastKey, lastSlot) = (key, slot)
            return slot
        }

        private mutating func slot(creating key: Int64, callers: Int) -> Int {
            if let slot = slots[key] { return slot }
            tallies.append(Tally(key: key, callers: Bits(capacity: callers)))
            slots[key] = tallies.count - 1
            return tallies.count - 1
        }

        mutating func add(_ row: AttributionScanRow) {
            let slot = slot(byVisit ? row.touch : row.assignment)
            let caller = Int(row.caller)
            tallies[slot].calls += 1
            if row.outcome == AttributionReport.answered { tallies[slot].answered += 1 }
            if row.outcome == AttributionReport.missed { tallies[slot].missed += 1 }
            if row.enquiry == AttributionReport.newEnquiry { tallies[slot].newEnquiries += 1 }
            if row.enquiry == AttributionReport.unmarked && row.suggestedEnquiry == AttributionReport.newEnquiry { tallies[slot].suggested += 1 }
            if AttributionReport.poolJoins >> row.visitJoin & 1 == 1 {
                poolCalls += 1
                if row.visitJoin == AttributionReport.joined { joinedCalls += 1 }
            }
            // A caller's first call of a stretch is also the first call to any source: only then is
            // `firstCall` (a second random access) read. By visit, first touch is the visitor's
            // first visit's touch, not this call's.
            if tallies[slot].callers.insert(caller) {
                if caller >= firstCall.count { firstCall += [Int32](repeating: -1, count: max(caller + 1 - firstCall.count, firstCall.count)) }
                if firstCall[caller] < 0 {
                    firstCall[caller] = Int32(byVisit && row.firstTouch > 0 && row.firstTouch != row.touch
                                              ? self.slot(creating: row.firstTouch, callers: firstCall.count) : slot)
                }
            }
            if row.matterOpened {
                tallies[slot].matters += 1
                matterCallers.append(Int32(caller))
            }
        }

        /// Adds the tallies of the stretch that follows this one.
        mutating func merge(later: Builder) {
            var moved = [Int](repeating: 0, count: later.tallies.count)
            for (index, tally) in later.tallies.enumerated() {
                let slot = slot(creating: tally.key, callers: 0)
                moved[index] = slot
                tallies[slot].add(tally)
            }
            if later.firstCall.count > firstCall.count { firstCall += [Int32](repeating: -1, count: later.firstCall.count - firstCall.count) }
            for (caller, slot) in later.firstCall.enumerated() where slot >= 0 && firstCall[caller] < 0 { firstCall[caller] = Int32(moved[Int(slot)]) }
            matterCallers += later.matterCallers
            poolCalls += later.poolCalls
            joinedCalls += later.joinedCalls
            lastKey = -1
        }

        var keys: Set<Int64> { Set(slots.keys) }

        /// Merges the tallies by `key` (an assignment's source, channel or campaign; a touch's
        /// campaign, keyword, landing page or referrer), biggest first. By visit, the calls
        /// joined to none (touch 0) are a line of their own, whatever a touch's value reads.
        func report(key: (Int64) -> String) -> AttributionReport {
            var firstTouch = [Int](repeating: 0, count: tallies.count)
            for caller in matterCallers { firstTouch[Int(firstCall[Int(caller)])] += 1 }
            struct Name: Hashable { let key: String, noVisit: Bool }
            var merged: [Name: (line: Line, callers: Bits)] = [:]
            var everyone = Bits()
            for (slot, tally) in tallies.enumerated() {
                let noVisit = byVisit && tally.key == 0
                let name = Name(key: noVisit ? "" : key(tally.key), noVisit: noVisit)
                var entry = merged[name] ?? (Line(key: name.key, noVisit: noVisit), Bits())
                entry.line.add(tally.line(key: name.key, firstTouch: firstTouch[slot]))
                entry.callers.formUnion(tally.callers)
                everyone.formUnion(tally.callers)
                merged[name] = entry
            }
            let lines = merged.values.map { entry -> Line in
                var line = entry.line
                line.uniqueCallers = entry.callers.count
                return line
            }.sorted { (a: Line, b: Line) -> Bool in
                if a.calls != b.calls { return a.calls > b.calls }
                if a.key != b.key { return a.key < b.key }
                return !a.noVisit && b.noVisit
            }
            var total = Line(key: "total", uniqueCallers: everyone.count)
            for line in lines { total.add(line) }
            return AttributionReport(lines: lines, total: total, poolCalls: poolCalls, joinedCalls: joinedCalls)
        }
    }

    /// A set of small non-negative integers (caller numbers) as a bit array.
    struct Bits: Sendable {
        private var words: [UInt64] = []

        init(capacity: Int = 0) {
            words = [UInt64](repeating: 0, count: (capacity + 63) >> 6)
        }

        /// Adds `value`; true if it was not there yet.
        @discardableResult @inline(__always)
        mutating func insert(_ value: Int) -> Bool {
            let word = value >> 6, bit: UInt64 = 1 << UInt64(value & 63)
            if word >= words.count { words += [UInt64](repeating: 0, count: max(word + 1 - words.count, words.count)) }
            let old = words[word]
            words[word] = old | bit
            return old & bit == 0
        }

        mutating func formUnion(_ other: Bits) {
            if other.words.count > words.count { words += [UInt64](repeating: 0, count: other.words.count - words.count) }
            for (index, word) in other.words.enumerated() { words[index] |= word }
        }

        var count: Int { words.reduce(0) { $0 + $1.nonzeroBitCount } }
    }
}
