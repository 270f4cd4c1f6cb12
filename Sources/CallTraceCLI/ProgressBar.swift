import ArgumentParser
import Foundation

/// Writes a stream to `path` through a temporary file created 0600 (renamed into place when
/// whole), with a progress bar on a terminal once the total is known; returns the bytes written.
package func saveStream(to path: String, label: String, _ body: (@escaping (_ total: Int?, Data) throws -> Void) async throws -> Void) async throws -> Int {
    let temporary = path + ".part"
    guard FileManager.default.createFile(atPath: temporary, contents: nil, attributes: [.posixPermissions: 0o600]),
          let handle = FileHandle(forWritingAtPath: temporary) else {
        throw ValidationError("\(path) cannot be written")
    }
    var written = 0
    var progress: ProgressBar?
    do {
        try await body { total, data in
            if let total { progress = ProgressBar(total: total, label: label) }
            try handle.write(contentsOf: data)
            written += data.count
            progress?.advance(by: data.count)
        }
        try handle.synchronize()
        try handle.close()
        progress?.finish()
        _ = try? FileManager.default.removeItem(atPath: path)
        try FileManager.default.moveItem(atPath: temporary, toPath: path)
    } catch {
        try? handle.close()
        try? FileManager.default.removeItem(atPath: temporary)
        throw error
    }
    return written
}

/// A progress bar on standard error, when it is a terminal: percentage and rate (of bytes, or
/// of another `unit` such as events).
package final class ProgressBar {
    private let total: Int
    private let label: String
    private let unit: String?
    private let enabled = isatty(STDERR_FILENO) == 1
    private var done = 0
    private let started = ContinuousClock.now
    private var lastDrawn = ContinuousClock.now - .seconds(1)

    package init(total: Int, label: String, unit: String? = nil) {
        self.total = max(total, 1)
        self.label = label
        self.unit = unit
    }

    package func advance(by bytes: Int) {
        done += bytes
        guard enabled, lastDrawn.duration(to: .now) > .milliseconds(100) else { return }
        lastDrawn = .now
        draw()
    }

    package func finish() {
        guard enabled else { return }
        draw()
        FileHandle.standardError.write(Data("\n".utf8))
    }

    private func draw() {
        let fraction = min(1, Double(done) / Double(total))
        let seconds = max(0.001, Double(started.duration(to: .now).components.attoseconds) / 1e18 + Double(started.duration(to: .now).components.seconds))
        let bar = String(repeating: "#", count: Int(fraction * 30)) + String(repeating: ".", count: 30 - Int(fraction * 30))
        let rate = unit.map { String(format: "%d of %d %@, %.0f/s", done, total, $0, Double(done) / seconds) }
            ?? String(format: "%.1f MB/s", Double(done) / seconds / 1e6)
        let line = String(format: "\r%@ [%@] %3.0f%%  %@", label, bar, fraction * 100, rate)
        FileHandle.standardError.write(Data(line.utf8))
    }
}
