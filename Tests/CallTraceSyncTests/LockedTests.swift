import CallTraceSync
import Dispatch
import Testing

@Suite("Sync: the lock shared state is behind")
struct LockedTests {
    /// A read, then a write of what was read plus one: without exclusion two holders read the same
    /// value and one increment is lost, so the count comes out short.
    @Test("Increments from many tasks and threads at once under the lock give the exact count")
    func excludes() async {
        let count = Locked(0)
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<64 {
                group.addTask {
                    for _ in 0..<1_000 { count.withLock { let seen = $0; $0 = seen + 1 } }
                }
            }
        }
        #expect(count.withLock { $0 } == 64_000)
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            for _ in 0..<10_000 { count.withLock { let seen = $0; $0 = seen + 1 } }
        }
        #expect(count.withLock { $0 } == 144_000)
    }

    @Test("A body that throws leaves the state as it left it and the lock free; a body's result is returned")
    func throwsAndReturns() {
        struct Refused: Error {}
        let names = Locked<[String]>([])
        #expect(throws: Refused.self) {
            try names.withLock { names throws(Refused) in
                names.append("first")
                throw Refused()
            }
        }
        let count = names.withLock { names -> Int in
            names.append("second")
            return names.count
        }
        #expect(count == 2)
        #expect(names.withLock { $0 } == ["first", "second"])
    }

    @Test("The state is released with the lock")
    func releasesState() {
        final class Tracked: Sendable {}
        weak var tracked: Tracked?
        do {
            let lock = Locked(Tracked())
            tracked = lock.withLock { $0 }
            #expect(tracked != nil)
        }
        #expect(tracked == nil)
    }
}
