import CallTraceAPI
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceSync
import CallTraceTestSupport
import Testing

/// Identity as a table: which token holds which permissions; every question it was asked, kept.
final class PermissionTable: Authorizing {
    let users: [String: (id: String, may: Set<Calltrace_Identity_V1_Permission>)]
    let asked = Locked<[String]>([])

    init(_ users: [String: (id: String, may: Set<Calltrace_Identity_V1_Permission>)]) {
        self.users = users
    }

    func authorizeUser(token: String, org: String, permission: Calltrace_Identity_V1_Permission,
                       gateway: String, clientAddress: String?) async throws -> Principal {
        asked.withLock { $0.append("\(gateway) \(org) \(permission)") }
        guard let user = users[token] else { throw RPCError(.unauthenticated, "the token is not valid") }
        guard user.may.contains(permission) else { throw RPCError(.permissionDenied, "the role does not allow \(permission)") }
        return Principal(org: org, acting: .user(id: user.id, role: .member))
    }

    func authorizeOperator(name: String, org: String, permission: Calltrace_Identity_V1_Permission) async throws -> Principal {
        asked.withLock { $0.append("operator:\(name) \(org) \(permission)") }
        throw RPCError(.permissionDenied, "no support grant names \(name)")
    }
}

@Suite("API: the access a method declares in its proto is checked by the generated registration, before the handler")
struct DeclaredAccessTests {
    static let web = TemporaryPKI.identity("gateway", "web")

    @Test("Without the declared permission (settings.manage for SetRouting, reports.read for ListTrackingNumbers) the handler is never reached; with it, it gets the principal")
    func refusedBeforeTheHandler() async throws {
        let identity = PermissionTable(["tok_analyst": ("u_analyst", [.reportsRead]), "tok_admin": ("u_admin", [.reportsRead, .settingsManage])])
        let handler = TrackingNumbers(authorizer: identity, listing: .gateways | .operators | .services)  // a service too, for the route check to refuse
        let fixture = try HandlerServer([handler], identity: TemporaryPKI.identity("service", "transcript"))
        let web = Calltrace_Transcript_V1_TrackingNumberServiceClient(try fixture.client(Self.web))
        func bearer(_ token: String) throws -> CallOptions { CallOptions(metadata: try Metadata(["authorization": "Bearer \(token)"])) }
        let route: Calltrace_Transcript_V1_SetRoutingRequest = .with { $0.orgID = "org_1"; $0.number = "01184960000" }

        let refusals: [(String, StatusCode, String, () async throws -> Void)] = [
            ("a role without settings.manage", .permissionDenied, "the role does not allow settingsManage",
             { _ = try await web.setRouting(route, options: try bearer("tok_analyst")) }),
            ("no token", .unauthenticated, "this call needs a user's bearer token", { _ = try await web.setRouting(route) }),
            ("an unknown token", .unauthenticated, "the token is not valid", { _ = try await web.setRouting(route, options: try bearer("tok_gone")) }),
            ("a malformed org id", .invalidArgument, "org_id is not a valid organisation id",
             { _ = try await web.setRouting(.with { $0.orgID = "ORG 1" }, options: try bearer("tok_admin")) }),
            ("an operator without a grant", .permissionDenied, "no support grant names ops",
             { _ = try await Calltrace_Transcript_V1_TrackingNumberServiceClient(try fixture.client(TemporaryPKI.identity("operator", "ops")))
                 .listTrackingNumbers(.with { $0.orgID = "org_1" }) }),
            ("a service, which acts for no user", .permissionDenied, "acts for no user",
             { _ = try await Calltrace_Transcript_V1_TrackingNumberServiceClient(try fixture.client(TemporaryPKI.identity("service", "compliance")))
                 .listTrackingNumbers(.with { $0.orgID = "org_1" }) }),
        ]
        for (who, status, message, call) in refusals {
            let error = await #expect(throws: RPCError.self, "\(who)") { try await call() }
            #expect(error?.code == status && error?.message.contains(message) == true, "\(who): \(String(describing: error))")
        }
        #expect(handler.reached.withLock { $0 }.isEmpty)
        #expect(identity.asked.withLock { $0 } == ["web org_1 settingsManage", "web org_1 settingsManage", "operator:ops org_1 reportsRead"])

        _ = try await web.listTrackingNumbers(.with { $0.orgID = "org_1" }, options: try bearer("tok_analyst"))
        _ = try await web.assignTrackingNumber(.with { $0.orgID = "org_1"; $0.number = "01184960000" }, options: try bearer("tok_admin"))
        #expect(handler.reached.withLock { $0 } == ["user:u_analyst", "user:u_admin"])
    }
}
