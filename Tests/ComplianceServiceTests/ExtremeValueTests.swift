import CallTraceAPI
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceTestSupport
import Foundation
import SwiftProtobuf
import Testing

/// No request may terminate a process: every RPC of every service, generated from `proto/`
/// (protoc's descriptor set, so a new RPC or field is in the table without anyone adding it),
/// receives the extreme values of each of its fields, one field at a time on top of a request
/// that names a real firm's call, recording and share link (so a rule past validation sees the
/// value), then all fields at once, then every field twice. Each answer must be a status, and
/// every service must still answer SERVING at the end.
@Suite("Hostile values: every RPC, every field's extremes")
struct ExtremeValueTests {
    @Test("No request terminates a service: each answer is a status and all four still serve")
    func everyRPCSurvivesItsExtremes() async throws {
        let deployment = try await CallDataDeployment()
        defer { Task { await deployment.stop() } }
        let tracking = "+441632960001"
        let firm = try await deployment.organisation(tracking: tracking)
        let recording = try await deployment.call("call-extreme", org: firm.org, tracking: tracking, caller: "+447700900123",
                                                  at: CallDataDeployment.start)
        let link = try await Calltrace_Media_V1_ShareLinkServiceClient(try deployment.media.client(identity: CallDataDeployment.web))
            .createShareLink(.with { $0.orgID = firm.org; $0.recordingID = recording; $0.ttlSeconds = 3600 }, options: try bearer(firm.admin))
        let seeds: [String: String] = [
            "org_id": firm.org, "confirm_org_id": firm.org, "call_id": "call-extreme", "recording_id": recording,
            "token": link.token, "link_id": link.link.linkID, "tracking_number": tracking, "number": tracking,
            "caller_number": "+447700900123", "phone_number": "+447700900123",
        ]
        let catalogue = try await ProtoCatalogue.load()
        let hosts: [String: InProcessService] = [
            "identity": deployment.identity, "media": deployment.media, "transcript": deployment.transcript, "compliance": deployment.compliance,
        ]
        // Reads first and the firm's destruction last, so most methods meet a live firm.
        let methods = catalogue.methods.filter { !$0.hosts(among: Array(hosts.keys)).isEmpty }  // not the test-only echo service
            .sorted { ($0.risk, $0.fullName) < ($1.risk, $1.fullName) }
        var calls = 0, admitted = 0
        var failures: [String] = []
        for method in methods {
            for service in method.hosts(among: hosts.keys.sorted()) {
                guard let host = hosts[service] else { continue }
                let requests = catalogue.hostileRequests(for: method.input, seeds: seeds)
                // The first caller the route admits: the web gateway as the firm's admin, the
                // telephony gateway (calls and uploads), an operator, or the service peers (for
                // service-only methods).
                let callers = [CallDataDeployment.web, TemporaryPKI.telephony, TemporaryPKI.identity("operator", "ops")]
                    + ["identity", "media", "transcript", "compliance"].map { TemporaryPKI.identity("service", $0) }
                var chosen = callers[0]
                for caller in callers {
                    let answer = await Self.send(method, requests[0], to: host, as: caller, token: firm.admin)
                    if answer != .permissionDenied && answer != .unauthenticated { chosen = caller; admitted += 1; break }
                }
                for request in requests {
                    calls += 1
                    let answer = await Self.send(method, request, to: host, as: chosen, token: firm.admin)
                    if answer == nil || answer == .deadlineExceeded || answer == .unavailable {
                        failures.append("\(method.fullName) on \(service): \(answer.map { "\($0)" } ?? "no status")")
                    }
                }
            }
        }
        print("hostile values: \(calls) calls to \(methods.count) methods (\(admitted) admitted past the route)")
        #expect(failures.isEmpty, "\(failures.prefix(20))")
        #expect(methods.count >= 90)
        for (name, host) in hosts {
            let health = try await host.client().unary(Calltrace_Ops_V1_HealthService.check, .init(), options: .init(timeout: .seconds(10)))
            #expect(health.status == .serving, "\(name) no longer serves")
        }
    }

    /// Sends one request's bytes to `method`, whatever its kind (a client stream twice); the
    /// status it ends with (nil: the call ended without one, as when the connection broke).
    static func send(_ method: ProtoCatalogue.Method, _ bytes: Data, to host: InProcessService, as caller: String,
                     token: String) async -> StatusCode? {
        guard let client = try? host.client(identity: caller), var options = try? bearer(token) else { return nil }
        options.timeout = .seconds(60)
        return await method.call(bytes, on: client, options: options, times: 2).code
    }
}
