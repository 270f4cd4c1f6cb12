public import CallTraceRPC
import CCallTraceShims
import CallTraceSync
public import Foundation

/// The repository root, found from this file's location.
public let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// What a finished process printed and how it ended.
public struct ProcessResult: Sendable {
    public let status: Int32
    public let stdout: String
    public let stderr: String
}

/// Runs `executable` with `arguments` to completion (its standard input: `input`, then end of file).
public func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                input: Data? = nil) async throws -> ProcessResult {
    let process = try RunningProcess(path: executable, arguments, environment: environment ?? ProcessInfo.processInfo.environment,
                                     input: input ?? Data())
    guard let exit = await process.waitForExit(timeout: .seconds(300)) else {
        throw CocoaError(.executableLoad, userInfo: [NSLocalizedDescriptionKey: "\(executable) did not exit"])
    }
    return ProcessResult(status: exit.status, stdout: process.stdout, stderr: exit.stderr)
}

/// The folder holding the built executables (beside the test bundle).
public let productsDirectory: URL = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()

/// A running executable with captured output, for tests that start real services.
///
/// Started with `posix_spawn` itself, not Foundation's `Process`: on Linux, `Process.run()`
/// reads past a buffer while listing `/proc/self/fd` and crashes the test process now and then
/// (swift-corelibs-foundation#5472; it crashed one run in five of this suite under load).
///
/// Its standard output and error are read as they come, on threads of their own, so a chatty
/// service never blocks on a full pipe, and a test can wait for a line (`waitForOutput`) instead
/// of sleeping. It runs as the leader of a process group of its own, holding only its standard
/// descriptors (every other one is closed in the child), and is killed with its group when this
/// object is released. Its standard input is a lifeline: with `CALLTRACE_LIFELINE=stdin` a
/// service stops when it closes — when this test process dies, however it dies.
public final class RunningProcess: @unchecked Sendable {
    public let pid: pid_t
    private struct Captured {
        var stdout = Data()
        var stderr = Data()
        var openStreams = 2
        var exitStatus: Int32?
    }
    /// Shared with the reader and reaper threads, which must not keep this object (and its child) alive.
    private final class Output: Sendable {
        let state = Locked(Captured())
    }
    private let output = Output()
    /// The write end of the child's standard input.
    private let lifeline: Int32

    /// Starts `executable` from the products folder, with this process's environment (minus any
    /// `CALLTRACE_*` setting) and `environment` on top.
    /// - Parameter descriptorLimit: run the executable under `ulimit -n` of this many descriptors.
    public convenience init(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                            descriptorLimit: Int? = nil) throws {
        let path = productsDirectory.appendingPathComponent(executable).path
        var inherited = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("CALLTRACE_") }
        inherited["CALLTRACE_LIFELINE"] = "stdin"
        inherited.merge(environment) { $1 }
        if let descriptorLimit {
            // The shell sets the limit and replaces itself with the executable (same process id).
            try self.init(path: "/bin/sh", ["-c", "ulimit -n \(descriptorLimit) && exec \"$0\" \"$@\"", path] + arguments,
                          environment: inherited, input: nil)
        } else {
            try self.init(path: path, arguments, environment: inherited, input: nil)
        }
    }

    /// - Parameter input: written to standard input, which is then closed; nil keeps it open
    ///   (the lifeline) until `cutLifeline()` or release.
    public init(path: String, _ arguments: [String], environment: [String: String], input: Data?) throws {
        func pipePair() throws -> (read: Int32, write: Int32) {
            var fds: [Int32] = [0, 0]
            guard ctshim_pipe_cloexec(&fds) == 0 else { throw CocoaError(.fileWriteUnknown) }
            return (fds[0], fds[1])
        }
        let stdin = try pipePair(), stdout = try pipePair(), stderr = try pipePair()
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, stdin.read, 0)
        posix_spawn_file_actions_adddup2(&actions, stdout.write, 1)
        posix_spawn_file_actions_adddup2(&actions, stderr.write, 2)
        ctshim_spawn_close_from(&actions, 3)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // A group of its own; the signals this test process ignores (SIGPIPE) or blocks, reset.
        var defaults = sigset_t(), mask = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD] { sigaddset(&defaults, signal) }
        sigemptyset(&mask)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setsigmask(&attributes, &mask)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var spawnedPID: pid_t = 0
        let spawned = posix_spawn(&spawnedPID, path, &actions, &attributes, argv, envp)
        let pid = spawnedPID
        for fd in [stdin.read, stdout.write, stderr.write] { close(fd) }
        guard spawned == 0 else {
            for fd in [stdin.write, stdout.read, stderr.read] { close(fd) }
            throw CocoaError(.executableLoad, userInfo: [NSLocalizedDescriptionKey: "cannot start \(path): \(String(cString: strerror(spawned)))"])
        }
        self.pid = pid
        lifeline = stdin.write
        for (fd, isError) in [(stdout.read, false), (stderr.read, true)] {
            Thread { [output] in
                var buffer = [UInt8](repeating: 0, count: 65_536)
                while true {
                    let n = read(fd, &buffer, buffer.count)
                    if n < 0 && errno == EINTR { continue }
                    output.state.withLock { state in
                        if n <= 0 {
                            state.openStreams -= 1
                        } else if isError {
                            state.stderr.append(contentsOf: buffer[0..<n])
                        } else {
                            state.stdout.append(contentsOf: buffer[0..<n])
                        }
                    }
                    if n <= 0 { close(fd); return }
                }
            }.start()
        }
        Thread { [output] in
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            // Exit code, or 128 + the signal that ended it (as a shell reports it).
            let code = (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
            output.state.withLock { $0.exitStatus = code }
        }.start()
        if let input {
            input.withUnsafeBytes { bytes in
                var done = 0
                while done < bytes.count {
                    let n = write(stdin.write, bytes.baseAddress! + done, bytes.count - done)
                    if n <= 0 { break }
                    done += n
                }
            }
            cutLifeline()
        }
    }

    /// Kills the whole group when the test lets go of it — a failed test included.
    deinit {
        if isRunning { kill(-pid, SIGKILL) }
        cutLifeline()
    }

    /// Whether it has not exited yet.
    public var isRunning: Bool { output.state.withLock { $0.exitStatus == nil } }

    /// Closes the child's lifeline, as the death of this test process would.
    public func cutLifeline() {
        output.state.withLock { _ in
            if lifelineOpen {
                close(lifeline)
                lifelineOpen = false
            }
        }
    }
    private var lifelineOpen = true

    /// Sends `signal` (default SIGTERM) to the process.
    public func signal(_ number: Int32 = SIGTERM) { kill(pid, number) }

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

    /// Waits for the exit and the end of its output; nil if it did not exit in time.
    public func waitForExit(timeout: Duration = .seconds(60)) async -> (status: Int32, stderr: String)? {
        let exited = await eventually(timeout: timeout) { [output] in
            output.state.withLock { $0.exitStatus != nil && $0.openStreams == 0 }
        }
        guard exited, let status = output.state.withLock({ $0.exitStatus }) else { return nil }
        return (status, stderr)
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

private let handedOutPorts = Locked<Set<Int>>([])

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

/// How long a test waits for what must come — an answer, a condition, a stop — before it calls
/// it hung: a call's timeout, a drain's grace period. Generous on purpose, since what comes
/// returns at once: in the stress run (the suite on two cores kept busy by two loops, beside
/// other builds) every test is set up at once, the first answers come after about 40 seconds,
/// and a 30-second guard ended calls that were only waiting their turn (DEADLINE_EXCEEDED).
public let patience: Duration = .seconds(180)

/// Waits until `condition` holds, checking it every 10 ms, for at most `timeout` (`patience`: a
/// loaded machine may be slow; a condition that holds returns at once). Tests wait for an
/// observable event this way instead of sleeping for a guessed time.
public func eventually(timeout: Duration = patience, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return try await condition()
}

/// The status a call ends with: `.ok` when `body` succeeds, the `RPCError`'s code when it fails,
/// nil for any other error.
public func code(_ body: () async throws -> Void) async -> StatusCode? {
    do {
        try await body()
        return .ok
    } catch let error as RPCError {
        return error.code
    } catch {
        return nil
    }
}
