import CallTraceDeploymentSupport
import CallTraceTestSupport
import Foundation
import Testing
@testable import WebGateway

/// schemathesis (PyPI, in `.build/schemathesis`: `make test` installs it, `make api-contract` alone) against the
/// live gateway: examples generated from services/web/openapi.yaml, each answer checked against
/// it, with an admin's API token of a firm with one recorded call. Skipped where it is not installed.
@Suite(.serialized) struct SchemathesisTests {
    static let executable = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../.build/schemathesis/bin/schemathesis").standardized.path

    /// schemathesis run against `document` (under services/web) at `url`; its output with the token
    /// masked when it fails. Awaited, not waited on: the gateway under test runs in this process,
    /// on the threads a blocking wait would hold.
    static func schemathesis(_ document: String, url: String, token: String, headers: [String] = [], checks: String,
                             maxExamples: Int) async throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../services/web/\(document)").standardized.path
        let arguments = ["run", path, "--url", url, "-H", "Authorization: Bearer \(token)"] + headers.flatMap { ["-H", $0] }
            + ["--checks", checks, "--max-examples", "\(maxExamples)", "--generation-deterministic", "--no-color"]
        // In a temporary folder: its cache folder (.schemathesis) goes there.
        let result = try await run("/bin/sh", ["-c", #"cd "$1" && shift && exec "$@""#, "sh", FileManager.default.temporaryDirectory.path,
                                               executable] + arguments)
        #expect(result.status == 0, "\((result.stdout + result.stderr).replacingOccurrences(of: token, with: "ctk_…"))")
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: executable)))
    func theLiveAPIMatchesItsDocument() async throws {
        let d = try await WebDeployment()
        let (org, admin) = try await d.firm()
        _ = try await d.recordedCall("call-st", org: org, admin: admin, file: wavFile(samples: 8000))
        let token = try await d.apiToken(admin, org: org, [.reportsRead, .transcriptsRead, .recordingsPlay, .linksShare, .callsMark, .usersManage])
        try await Self.schemathesis("openapi.yaml", url: d.base + APIv1.base, token: token.secret, headers: ["CallTrace-Firm: \(org)"],
                                    checks: "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance",
                                    maxExamples: 25)
        await d.stop()
    }

    /// The relayed methods (services/web/openapi-rpc.json, generated from the protos): whatever
    /// body a client sends, the answer is the service's or the relay's refusal, never a server
    /// error, and an answer's JSON is the message the document names.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: executable)))
    func theRelayedMethodsMatchTheirDocument() async throws {
        let d = try await WebDeployment(telephony: true)
        let (org, admin) = try await d.firm()
        _ = try await d.recordedCall("call-st", org: org, admin: admin, file: wavFile(samples: 8000))
        let token = try await d.apiToken(admin, org: org, [.reportsRead, .transcriptsRead, .recordingsPlay, .linksShare, .callsMark, .usersManage,
                                                           .settingsManage, .auditRead, .requestsManage, .grantsManage, .callsPlace])
        try await Self.schemathesis("openapi-rpc.json", url: d.base, token: token.secret,
                                    checks: "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
                                    maxExamples: 5)
        await d.stop()
    }
}
