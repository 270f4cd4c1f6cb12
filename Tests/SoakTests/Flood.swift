import CallTraceSync
import CallTraceTestSupport
import Foundation

/// An idle-connection flood and a slowloris against listeners, beside the soak's traffic: for
/// each listener, `idle` connections that never send a byte and `slow` ones that send a request
/// (an HTTP request line and headers, or a TLS record header and its ClientHello) one byte a
/// second and never finish it. A connection the listener closes is opened again on the next
/// tick, so the pressure stays the same for the whole run; the tally says how many the listener
/// shed (its handshake and header timeouts at work) and how many it refused outright.
///
/// It comes from an address of its own, `source` (127.0.0.2), as an attacker would: the RPC
/// listeners budget handshakes per address, so from the gateways' own address it would cut
/// their handshakes, which is that budget working, not the flood being shrugged off.
final class Flood: Sendable {
    enum Kind: Sendable { case tls, http }
    struct Tally: Sendable {
        var opened = 0
        var closedByListener = 0
        var refused = 0
    }

    private struct Slot {
        let listener: Int
        let slow: Bool
        var fd: Int32 = -1
        var sent = 0
        var lastByte = ContinuousClock.now
    }
    private let listeners: [(name: String, port: Int, kind: Kind)]
    private let tallies: Locked<[Tally]>
    private let task = Locked<Task<Void, Never>?>(nil)
    let idle: Int, slow: Int
    static let source = "127.0.0.2"

    init(_ listeners: [(name: String, port: Int, kind: Kind)], idle: Int, slow: Int) {
        self.listeners = listeners
        self.idle = idle
        self.slow = slow
        tallies = Locked(Array(repeating: Tally(), count: listeners.count))
    }

    var tally: [(name: String, tally: Tally)] {
        let counted = tallies.withLock { $0 }
        return listeners.indices.map { (listeners[$0].name, counted[$0]) }
    }

    func start() {
        var slots: [Slot] = []
        for index in listeners.indices {
            slots += Array(repeating: Slot(listener: index, slow: false), count: idle)
            slots += Array(repeating: Slot(listener: index, slow: true), count: slow)
        }
        task.withLock { [slots] in
            $0 = Task.detached { [self] in
                var slots = slots
                while !Task.isCancelled {
                    tick(&slots)
                    try? await Task.sleep(for: .milliseconds(250))  // the flood's pace, not a wait for anything
                }
                for slot in slots where slot.fd >= 0 { close(slot.fd) }
            }
        }
    }

    func stop() async {
        let running = task.withLock { $0 }
        running?.cancel()
        await running?.value
    }

    /// The bytes a slow connection dribbles: a request it never ends.
    private func opening(_ kind: Kind) -> [UInt8] {
        switch kind {
        case .http: Array("GET /calls HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ".utf8) + Array(repeating: UInt8(ascii: "a"), count: 10_000)
        // A TLS handshake record of 512 bytes announced, then its ClientHello begun.
        case .tls: [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03] + Array(repeating: 0x42, count: 10_000)
        }
    }

    private func tick(_ slots: inout [Slot]) {
        let now = ContinuousClock.now
        var buffer = [UInt8](repeating: 0, count: 4096)
        for index in slots.indices {
            let listener = listeners[slots[index].listener]
            if slots[index].fd < 0 {
                guard let fd = try? RawTLSClient.plainTCP(port: listener.port, from: Self.source) else {
                    tallies.withLock { $0[slots[index].listener].refused += 1 }
                    continue
                }
                _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
                slots[index].fd = fd
                slots[index].sent = 0
                slots[index].lastByte = now
                tallies.withLock { $0[slots[index].listener].opened += 1 }
                continue
            }
            let fd = slots[index].fd
            // Whatever the listener says (a timeout's answer, an alert) is read; its end closes ours.
            var closed = false
            while true {
                let got = recv(fd, &buffer, buffer.count, 0)
                if got > 0 { continue }
                closed = got == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)
                break
            }
            if !closed && slots[index].slow && slots[index].lastByte.duration(to: now) >= .seconds(1) {
                let bytes = opening(listener.kind)
                var byte = bytes[slots[index].sent % bytes.count]
                if send(fd, &byte, 1, Int32(MSG_NOSIGNAL)) == 1 {
                    slots[index].sent += 1
                    slots[index].lastByte = now
                } else if errno != EAGAIN && errno != EWOULDBLOCK {
                    closed = true
                }
            }
            if closed {
                close(fd)
                slots[index].fd = -1
                tallies.withLock { $0[slots[index].listener].closedByListener += 1 }
            }
        }
    }
}
