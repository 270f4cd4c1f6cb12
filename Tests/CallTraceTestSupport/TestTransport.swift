// Testing is there only when tests are built: `make bench` builds this module without it.
#if canImport(Testing)
public import Testing
#endif

/// How the services a test starts in process (`InProcessService`) are reached — by their peers,
/// by the test's gateway, operator and service clients.
public enum TestTransport: Sendable {
    /// The in-process transport (`ServiceTransport.inProcess`): frames, admission, peer policies
    /// and deadlines as over a socket, each client presenting the identity its certificate would
    /// name; no TCP, no TLS handshakes. For domain and handler tests.
    case inProcess
    /// Ports and real mutual TLS, as a deployment runs: for tests of the wire, of certificates,
    /// and of anything a process or the `calltrace` command reaches.
    case tls

    /// The transport of services started in this task: in process unless a test or suite says
    /// `.overTLS` (or a deployment that runs a process beside them chooses `.tls`).
    @TaskLocal public static var current = TestTransport.inProcess
}

#if canImport(Testing)
/// A test or suite whose services run over real mutual TLS (`TestTransport.tls`).
public struct OverTLS: TestTrait, SuiteTrait, TestScoping {
    public var isRecursive: Bool { true }

    public func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        try await TestTransport.$current.withValue(.tls, operation: function)
    }
}

extension Trait where Self == OverTLS {
    /// Services started in the test (or in each of the suite's tests) run over real mutual TLS.
    public static var overTLS: Self { OverTLS() }
}
#endif
