/// The deadlines of one connection's calls in flight, earliest first.
///
/// A binary min-heap with lazy removal: a call that ends is dropped from `live` at once (O(1)),
/// and its heap entry is skipped when it reaches the top; the heap is rebuilt from `live` when
/// stale entries outnumber live ones, so memory follows the calls in flight, not the calls made.
/// Inserting and expiring cost O(log n) — 20,000 calls with long timeouts on one connection cost
/// what 20 do, per call.
struct DeadlineQueue {
    private typealias Entry = (at: ContinuousClock.Instant, callID: UInt64)
    private var heap: [Entry] = []
    private var live: [UInt64: ContinuousClock.Instant] = [:]

    /// Calls with a deadline.
    var count: Int { live.count }
    /// Heap entries, stale ones included (at most about twice `count`).
    var storedEntries: Int { heap.count }

    mutating func insert(_ callID: UInt64, at deadline: ContinuousClock.Instant) {
        live[callID] = deadline
        heap.append((deadline, callID))
        siftUp(heap.count - 1)
    }

    /// The call ended: its deadline no longer matters.
    mutating func remove(_ callID: UInt64) {
        guard live.removeValue(forKey: callID) != nil else { return }
        compactIfStale()
    }

    /// Removes and returns the calls whose deadline is at or before `now`.
    mutating func popExpired(now: ContinuousClock.Instant) -> [UInt64] {
        var expired: [UInt64] = []
        while let top = heap.first, top.at <= now {
            popTop()
            if live[top.callID] == top.at {
                live[top.callID] = nil
                expired.append(top.callID)
            }
        }
        compactIfStale()
        return expired
    }

    /// Rebuilds the heap from the live deadlines once stale entries outnumber them.
    private mutating func compactIfStale() {
        guard heap.count > 2 * live.count + 64 else { return }
        heap = live.map { ($0.value, $0.key) }
        for index in stride(from: heap.count / 2 - 1, through: 0, by: -1) { siftDown(index) }
    }

    /// The earliest deadline of a call still in flight.
    mutating func next() -> ContinuousClock.Instant? {
        while let top = heap.first, live[top.callID] != top.at { popTop() }
        return heap.first?.at
    }

    private mutating func popTop() {
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            siftDown(0)
        }
    }

    private mutating func siftUp(_ index: Int) {
        var child = index
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].at < heap[parent].at else { return }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(_ index: Int) {
        var parent = index
        while true {
            let left = 2 * parent + 1, right = left + 1
            var smallest = parent
            if left < heap.count && heap[left].at < heap[smallest].at { smallest = left }
            if right < heap.count && heap[right].at < heap[smallest].at { smallest = right }
            guard smallest != parent else { return }
            heap.swapAt(parent, smallest)
            parent = smallest
        }
    }
}
