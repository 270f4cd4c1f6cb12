@testable import CallTraceRPC
import Testing

@Suite("Deadline queue")
struct DeadlineQueueTests {
    @Test("Random inserts, removals and expiries agree with a plain list; ended calls do not pile up")
    func agreesWithReference() {
        var generator = SystemRandomNumberGenerator()
        var queue = DeadlineQueue()
        var reference: [UInt64: ContinuousClock.Instant] = [:]
        let start = ContinuousClock.now
        var now = start
        var nextID: UInt64 = 1
        for _ in 0..<20_000 {
            switch Int.random(in: 0..<10, using: &generator) {
            case 0..<5:
                let at = now + .milliseconds(Int.random(in: 1...5_000, using: &generator))
                queue.insert(nextID, at: at)
                reference[nextID] = at
                nextID += 1
            case 5..<9:
                if let id = reference.keys.randomElement(using: &generator) {
                    queue.remove(id)
                    reference[id] = nil
                }
            default:
                now += .milliseconds(Int.random(in: 0...50, using: &generator))
                let expired = Set(queue.popExpired(now: now))
                let expected = Set(reference.filter { $0.value <= now }.keys)
                #expect(expired == expected)
                for id in expected { reference[id] = nil }
            }
            #expect(queue.count == reference.count)
            #expect(queue.storedEntries <= 2 * reference.count + 65)
        }
        #expect(queue.next() == reference.values.min())
    }

    @Test("Twenty thousand calls with hour-long deadlines that end normally leave nothing behind")
    func longDeadlinesThatEnd() {
        var queue = DeadlineQueue()
        let far = ContinuousClock.now + .seconds(3600)
        for id in UInt64(1)...20_000 {
            queue.insert(id, at: far)
            queue.remove(id)
        }
        #expect(queue.count == 0)
        #expect(queue.storedEntries <= 65)
        #expect(queue.next() == nil)
    }
}
