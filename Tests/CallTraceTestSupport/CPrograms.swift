import Foundation

/// The suite's C programs — libcalltrace's example and checks, and `ctrpc_health_check` — as
/// `make -C clients/c SANITIZE=… check-programs` builds them into `.build/c-checks/<sanitizer>`
/// (`asan` for "1": AddressSanitizer and UndefinedBehaviorSanitizer; `thread`). `make test`
/// builds them before the suite runs, so compiling is not the suite's time; here make runs once
/// per sanitizer and test run, rebuilding only what changed (everything when a test runs alone).
public enum CPrograms {
    /// The folder holding the programs built under `sanitize`.
    public static func folder(sanitize: String = "1") async throws -> String { try await builds.folder(sanitize) }

    /// One make per sanitizer, however many tests ask at once: the first starts it, the rest
    /// wait for the same run instead of racing it in the same folder.
    private actor Builds {
        var made: [String: Task<String, any Error>] = [:]
        func folder(_ sanitize: String) async throws -> String {
            if let build = made[sanitize] { return try await build.value }
            let build = Task { try await CPrograms.make(sanitize: sanitize) }
            made[sanitize] = build
            return try await build.value
        }
    }
    private static let builds = Builds()

    private static func make(sanitize: String) async throws -> String {
        let folder = repositoryRoot.appendingPathComponent(".build/c-checks/\(sanitize == "1" ? "asan" : sanitize)").path
        let made = try await run("/usr/bin/make", ["-s", "-C", repositoryRoot.appendingPathComponent("clients/c").path, "BUILD=\(folder)",
                                                   "SANITIZE=\(sanitize)", "check-programs"])
        guard made.status == 0 else {
            throw CocoaError(.executableLoad, userInfo: [NSLocalizedDescriptionKey: "make failed: \(made.stdout) \(made.stderr)"])
        }
        return folder
    }
}
