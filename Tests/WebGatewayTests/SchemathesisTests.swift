import CallTraceDeploymentSupport
import Foundation
import Testing
@testable import WebGateway

/// schemathesis (PyPI, in `.build/schemathesis`: `make test` installs it, `make api-contract` alone) against the
/// live gateway: examples generated from services/web/openapi.yaml, each answer checked against
/// it, with an admin's API token of a firm with one recorded call. Skipped where it is not installed.
@Suite struct SchemathesisTests {
    static let executable = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../.build/schemathesis/bin/schemathesis").standardized.path

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: executable)))
    func theLiveAPIMatchesItsDocument() async throws {
        let d = try await WebDeployment()
        let (org, admin) = try await d.firm()
        _ = try await d.recordedCall("call-st", org: org, admin: admin, file: wavFile(samples: 8000))
        let token = try await d.apiToken(admin, org: org, [.reportsRead, .transcriptsRead, .recordingsPlay, .linksShare, .callsMark, .usersManage])
        let document = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../services/web/openapi.yaml").standardized.path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.executable)
        process.currentDirectoryURL = FileManager.default.temporaryDirectory  // its cache folder (.schemathesis) goes there
        process.arguments = ["run", document, "--url", d.base + APIv1.base, "-H", "Authorization: Bearer \(token.secret)", "-H", "CallTrace-Firm: \(org)",
                             "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance",
                             "--max-examples", "25", "--generation-deterministic", "--no-color"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(text.replacingOccurrences(of: token.secret, with: "ctk_…"))")
        await d.stop()
    }

    /// The relayed methods (services/web/openapi-rpc.json, generated from the protos): whatever
    /// body a client sends, the answer is the service's or the relay's refusal, never a server
    /// error, and an answer's JSON is the message the document names.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: executable)))
    func theRelayedMethodsMatchTheirDocument() async throws {
        let d = try await WebDeployment()
        let (org, admin) = try await d.firm()
        _ = try await d.recordedCall("call-st", org: org, admin: admin, file: wavFile(samples: 8000))
        let token = try await d.apiToken(admin, org: org, [.reportsRead, .transcriptsRead, .recordingsPlay, .linksShare, .callsMark, .usersManage,
                                                           .settingsManage, .auditRead, .requestsManage, .grantsManage])
        let document = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../services/web/openapi-rpc.json").standardized.path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.executable)
        process.currentDirectoryURL = FileManager.default.temporaryDirectory
        process.arguments = ["run", document, "--url", d.base, "-H", "Authorization: Bearer \(token.secret)",
                             "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
                             "--max-examples", "5", "--generation-deterministic", "--no-color"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(text.replacingOccurrences(of: token.secret, with: "ctk_…"))")
        await d.stop()
    }
}
