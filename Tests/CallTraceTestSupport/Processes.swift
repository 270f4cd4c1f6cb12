public import Foundation
import Synchronization

/// The repository root, found from this file's location.
public let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// What a finished process printed and how it ended.
public struct ProcessResult: Sendable {
    public let status: Int32
    public let stdout: String
    public let stderr: String
}

/// Runs `executable` with `arguments` to completion, off the cooperative pool.
public func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                input: Data? = nil) async throws -> ProcessResult {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread {
            do {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: executable)
                process.arguments = arguments
                if let environment { process.environment = environment }
                let out = Pipe(), err = Pipe()
                process.standardOutput = out
                process.standardError = err
                let stdin = Pipe()
                process.standardInput = stdin
                try process.run()
                if let input { stdin.fileHandleForWriting.write(input) }
                try? stdin.fileHandleForWriting.close()
                let outData = out.fileHandleForReading.readDataToEndOfFile()
                let errData = err.fileHandleForReading.readDataToEndOfFile()
                process.waitUntilExit()
                continuation.resume(returning: ProcessResult(status: process.terminationStatus,
                                                             stdout: String(decoding: outData, as: UTF8.self),
                                                             stderr: String(decoding: errData, as: UTF8.self)))
            } catch {
                continuation.resume(throwing: error)
            }
        }
        thread.start()
    }
}

/// The folder holding the built executables (beside the test bundle).
public let productsDirectory: URL = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()

/// A running executable with captured output, for tests that start real services.
///
/// Its standard output and error are read as they come, on threads of their own, so a chatty
/// service never blocks on a full pipe, and a test can wait for a line (`waitForOutput`) instead
/// of sleeping. The process is killed when this object is released.
public final class RunningProcess: @unchecked Sendable {
    public let process = Process()
    private struct Captured {
        var stdout = Data()
        var stderr = Data()
        var openStreams = 2
    }
    /// Shared with the reader threads, which must not keep this object (and its child) alive.
    private final class Output: Sendable {
        let state = Mutex(Captured())
    }
    private let output = Output()
    /// The write end of the child's standard input. The child (with `CALLTRACE_LIFELINE=stdin`)
    /// stops when it closes — when this test process dies, however it dies.
    private let lifeline = Pipe()

    /// - Parameter descriptorLimit: run the executable under `ulimit -n` of this many descriptors.
    public init(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                descriptorLimit: Int? = nil) throws {
        let path = productsDirectory.appendingPathComponent(executable).path
        // Foundation starts each child as the leader of a process group of its own, so the
        // group can be stopped as a whole (`deinit`).
        if let descriptorLimit {
            // The shell sets the limit and replaces itself with the executable (same process id).
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", "ulimit -n \(descriptorLimit) && exec \"$0\" \"$@\"", path] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: path)
            process.arguments = arguments
        }
        var inherited = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("CALLTRACE_") }
        inherited["CALLTRACE_LIFELINE"] = "stdin"
        inherited.merge(environment) { $1 }
        process.environment = inherited
        let stdoutPipe = Pipe(), stderrPipe = Pipe()
        process.standardError = stderrPipe
        process.standardOutput = stdoutPipe
        process.standardInput = lifeline
        try process.run()
        try? lifeline.fileHandleForReading.close()
        for (pipe, isError) in [(stdoutPipe, false), (stderrPipe, true)] {
            let reader = pipe.fileHandleForReading
            Thread { [output] in
                while true {
                    let chunk = reader.availableData
                    output.state.withLock { state in
                        if chunk.isEmpty {
                            state.openStreams -= 1
                        } else if isError {
                            state.stderr.append(chunk)
                        } else {
                            state.stdout.append(chunk)
                        }
                    }
                    if chunk.isEmpty { return }
                }
            }.start()
        }
    }

    /// Kills the whole group when the test lets go of it — a failed test included.
    deinit {
        if process.isRunning { kill(-process.processIdentifier, SIGKILL) }
    }

    /// Closes the child's lifeline, as the death of this test process would.
    public func cutLifeline() { try? lifeline.fileHandleForWriting.close() }

    /// Sends `signal` (default SIGTERM) to the process.
    public func signal(_ number: Int32 = SIGTERM) { kill(process.processIdentifier, number) }

    /// What the process wrote to standard error so far.
    public var stderr: String { output.state.withLock { String(decoding: $0.stderr, as: UTF8.self) } }

    /// What the process wrote to standard output so far.
    public var stdout: String { output.state.withLock { String(decoding: $0.stdout, as: UTF8.self) } }

    /// Waits until standard error contains `text` (at least `count` times); false if the process
    /// exits or `timeout` passes first.
    public func waitForOutput(containing text: String, count: Int = 1, timeout: Duration = .seconds(60)) async -> Bool {
        func found() -> (Bool, closed: Bool) {
            output.state.withLock { state in
                (String(decoding: state.stderr, as: UTF8.self).components(separatedBy: text).count - 1 >= count, state.openStreams == 0)
            }
        }
        _ = await eventually(timeout: timeout) {
            let (seen, closed) = found()
            return seen || closed
        }
        return found().0
    }

    /// Waits for the exit, off the cooperative pool; nil if it did not exit in time.
    public func waitForExit(timeout: Duration = .seconds(60)) async -> (status: Int32, stderr: String)? {
        let exited = await eventually(timeout: timeout) { [self] in
            !process.isRunning && output.state.withLock { $0.openStreams == 0 }
        }
        guard exited else { return nil }
        return (process.terminationStatus, stderr)
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago, for a service process to listen on.
///
/// It is chosen below Linux's ephemeral range (32768–60999), where the kernel never hands out
/// ports by itself: a port the kernel picked could be taken, before the service binds it, as
/// the source port of any connection a parallel test opens. Ports are not reused within a run.
public func freePort() throws -> Int {
    for _ in 0..<200 {
        let port = Int.random(in: 20_000..<32_000)
        guard handedOutPorts.withLock({ $0.insert(port).inserted }) else { continue }
        if canBind(port) { return port }
    }
    throw CocoaError(.fileWriteUnknown)
}

private let handedOutPorts = Mutex<Set<Int>>([])

private func canBind(_ port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    } == 0
}

/// Runs blocking `work` on a thread of its own, off the cooperative pool.
public func onThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try work() }) }.start()
    }
}

/// Waits until `condition` holds, checking it every 10 ms, for at most `timeout` (generous: a
/// loaded machine may be slow; a condition that holds returns at once). Tests wait for an
/// observable event this way instead of sleeping for a guessed time.
public func eventually(timeout: Duration = .seconds(30), _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return try await condition()
}
