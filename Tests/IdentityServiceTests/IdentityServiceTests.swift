import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceStorage
import CallTraceTestSupport
import Foundation
import IdentityDomain
import Testing

/// Identity — as a process, or in this test process with a `TestClock` — and clients for an
/// operator, the web gateway and a service.
final class IdentityDeployment: @unchecked Sendable {
    typealias Identity = Calltrace_Identity_V1_IdentityService
    enum Mode { case process, inProcess }
    let setup: ServiceSetup
    private let running: RunningProcess?
    private let inProcess: InProcessService?
    let operatorClient: RPCClient
    let gateway: RPCClient
    let media: RPCClient

    /// The running process (process mode only).
    var process: RunningProcess { running! }
    /// The clock identity's rules read (in-process mode only): move it instead of sleeping.
    var clock: TestClock { inProcess!.clock }
    /// Identity's database (in-process mode only).
    var database: Database { inProcess!.instance.database }

    /// - Parameters:
    ///   - blocking: in process, the pool identity's scrypt runs on.
    ///   - deployment: as a process, the deployment file it reads (`--deployment`), written first.
    init(_ mode: Mode = .inProcess, blocking: BlockingPool = .shared, deployment: String? = nil) async throws {
        switch mode {
        case .process:
            setup = try ServiceSetup(service: "identity")
            var flags = setup.flags + ["--log-format", "json", "--log-level", "trace"]
            if let deployment {
                let path = setup.pki.directory.appendingPathComponent("deployment.json").path
                try Data(deployment.utf8).write(to: URL(fileURLWithPath: path))
                flags += ["--deployment", path]
            }
            running = try setup.start(flags)
            inProcess = nil
        case .inProcess:
            let service = try await InProcessService.start(IdentityService.self, blocking: blocking)
            setup = service.setup
            running = nil
            inProcess = service
        }
        port = inProcess?.instance.port ?? setup.port
        operatorClient = try Self.client(TemporaryPKI.identity("operator", "ops"), setup: setup, port: port, inProcess: inProcess)
        gateway = try Self.client(TemporaryPKI.identity("gateway", "web"), setup: setup, port: port, inProcess: inProcess)
        media = try Self.client(TemporaryPKI.identity("service", "media"), setup: setup, port: port, inProcess: inProcess)
        try await setup.waitUntilServing(operatorClient)
    }

    /// The port identity listens on.
    let port: Int

    /// Call options carrying a user's bearer token.
    static func bearer(_ token: String) throws -> CallOptions {
        var metadata = Metadata()
        try metadata.add("authorization", "Bearer \(token)")
        return CallOptions(metadata: metadata)
    }

    /// Another client of identity, presenting `identity`.
    func client(_ identity: String) throws -> RPCClient {
        try Self.client(identity, setup: setup, port: port, inProcess: inProcess)
    }

    /// The process's clients over TLS; the in-process service's over its transport.
    private static func client(_ identity: String, setup: ServiceSetup, port: Int, inProcess: InProcessService?) throws -> RPCClient {
        if let inProcess { return try inProcess.newClient(identity: identity) }
        return try RPCClient(target: .init(host: "127.0.0.1", port: port, identity: TemporaryPKI.identity("service", "identity")),
                             configuration: .init(credentials: try setup.pki.credentials(for: identity)))
    }

    /// A new organisation with an active admin; returns the org and the admin's token.
    func organisationWithAdmin(email: String = "Head.Of.Intake@Firm.example") async throws -> (org: String, adminToken: String) {
        let created = try await operatorClient.unary(Identity.createOrganization, .with {
            $0.name = "Smith & Co Solicitors"
            $0.firstAdminEmail = email
            $0.firstAdminDisplayName = "Alex Smith"
        })
        let invitation = try delivered(to: email.lowercased())
        _ = try await gateway.unary(Identity.redeemInvitation, .with {
            $0.invitationToken = invitation
            $0.password = "correct horse battery staple"
        }, options: .endUser)
        let login = try await gateway.unary(Identity.login, .with {
            $0.orgID = created.orgID
            $0.email = email.lowercased()
            $0.password = "correct horse battery staple"
        }, options: .endUser)
        return (created.orgID, login.token)
    }

    func invite(_ role: Calltrace_Identity_V1_Role, in org: String, adminToken: String, email: String) async throws -> String {
        var metadata = Metadata()
        try metadata.add("authorization", "Bearer \(adminToken)")
        let invited = try await gateway.unary(Identity.inviteUser, .with {
            $0.orgID = org
            $0.email = email
            $0.displayName = "Sam Jones"
            $0.role = role
        }, options: .init(metadata: metadata))
        #expect(!invited.userID.isEmpty)
        let invitation = try delivered(to: email)
        _ = try await gateway.unary(Identity.redeemInvitation, .with {
            $0.invitationToken = invitation
            $0.password = "a long and unusual passphrase"
        }, options: .endUser)
        return try await gateway.unary(Identity.login, .with {
            $0.orgID = org
            $0.email = email
            $0.password = "a long and unusual passphrase"
        }, options: .endUser).token
    }

    /// The token identity delivered to `email` (its mail outbox), or a test failure.
    func delivered(to email: String, kind: String = "invitation") throws -> String {
        guard let token = try setup.deliveredToken(to: email, kind: kind) else {
            throw RPCError(.notFound, "no \(kind) was delivered to \(email)")
        }
        return token
    }

    /// - Parameters:
    ///   - gateway: the gateway that presented the token, as the asking service names it.
    ///   - address: the end user's address, as the asking service received it.
    func authorize(_ token: String, org: String, _ permission: Calltrace_Identity_V1_Permission,
                   via client: RPCClient? = nil, gateway: String = "", from address: String = "") async throws -> Calltrace_Identity_V1_Principal {
        try await (client ?? media).unary(Identity.authorize, .with {
            $0.token = token
            $0.orgID = org
            $0.permission = permission
            $0.gateway = gateway
            $0.clientAddress = address
        }).principal
    }

    /// Stops identity; returns what it logged.
    func stop() async -> String {
        if let inProcess {
            await inProcess.stop()
            return inProcess.log.text
        }
        process.signal(SIGTERM)
        return await process.waitForExit()?.stderr ?? ""
    }
}

@Suite("P6/P15: identity — organisations, named users, login, authorisation for other services")
struct IdentityServiceTests {
    typealias Identity = Calltrace_Identity_V1_IdentityService

    @Test("Onboarding: operator creates an org, the first admin redeems, logs in, and is authorised for users.manage")
    func onboarding() async throws {
        // A process logging JSON at trace level: everything it writes is checked for secrets.
        let deployment = try await IdentityDeployment(.process)
        let (org, token) = try await deployment.organisationWithAdmin()
        let principal = try await deployment.authorize(token, org: org, .usersManage)
        #expect(principal.orgID == org)
        #expect(principal.role == .admin)
        #expect(!principal.userID.isEmpty)
        let logs = await deployment.stop()
        // Passwords and tokens never reach the logs; e-mails neither.
        #expect(!logs.contains("correct horse battery staple"))
        #expect(!logs.contains(token))
        #expect(!logs.lowercased().contains("head.of.intake"))
        #expect(logs.contains("\"org\":\"\(org)\""))
        // P4: the database file holds e-mails, names and the organisation's name only sealed.
        let files = [deployment.setup.database, deployment.setup.database + "-wal"]
        let bytes = files.compactMap { FileManager.default.contents(atPath: $0) }.reduce(Data(), +)
        #expect(!bytes.isEmpty)
        for clear in ["head.of.intake@firm.example", "Alex Smith", "Smith & Co Solicitors"] {
            #expect(bytes.range(of: Data(clear.utf8)) == nil, "\(clear) stored in clear")
        }
    }

    @Test("P6: roles decide permissions — an analyst reads reports but not transcripts or audio")
    func roles() async throws {
        let deployment = try await IdentityDeployment()
        let (org, admin) = try await deployment.organisationWithAdmin()
        let analyst = try await deployment.invite(.analyst, in: org, adminToken: admin, email: "analyst@firm.example")
        let member = try await deployment.invite(.member, in: org, adminToken: admin, email: "member@firm.example")
        #expect(try await deployment.authorize(analyst, org: org, .reportsRead).role == .analyst)
        #expect(await code { _ = try await deployment.authorize(analyst, org: org, .transcriptsRead) } == .permissionDenied)
        #expect(await code { _ = try await deployment.authorize(analyst, org: org, .recordingsPlay) } == .permissionDenied)
        #expect(try await deployment.authorize(member, org: org, .transcriptsRead).role == .member)
        #expect(await code { _ = try await deployment.authorize(member, org: org, .usersManage) } == .permissionDenied)
        // A member may not invite users.
        var metadata = Metadata()
        try metadata.add("authorization", "Bearer \(member)")
        #expect(await code {
            _ = try await deployment.gateway.unary(Identity.inviteUser, .with {
                $0.orgID = org
                $0.email = "someone@firm.example"
                $0.role = .member
            }, options: .init(metadata: metadata))
        } == .permissionDenied)
        _ = await deployment.stop()
    }

    @Test("P6: no client can see another client's calls — a token of org A is refused for org B")
    func organisationScoped() async throws {
        let deployment = try await IdentityDeployment()
        let (orgA, adminA) = try await deployment.organisationWithAdmin(email: "a@firm-a.example")
        let (orgB, _) = try await deployment.organisationWithAdmin(email: "b@firm-b.example")
        #expect(try await deployment.authorize(adminA, org: orgA, .transcriptsRead).orgID == orgA)
        #expect(await code { _ = try await deployment.authorize(adminA, org: orgB, .transcriptsRead) } == .permissionDenied)
        _ = await deployment.stop()
    }

    @Test("Refusals: no token, a bogus token, a logged-out token; Authorize from a non-service; operator-only onboarding")
    func refusals() async throws {
        let deployment = try await IdentityDeployment()
        let (org, admin) = try await deployment.organisationWithAdmin()
        #expect(await code { _ = try await deployment.authorize("", org: org, .reportsRead) } == .unauthenticated)
        #expect(await code { _ = try await deployment.authorize("not-a-real-token", org: org, .reportsRead) } == .unauthenticated)
        #expect(await code { _ = try await deployment.authorize(admin, org: org, .reportsRead, via: deployment.gateway) } == .permissionDenied)
        #expect(await code {
            _ = try await deployment.gateway.unary(Identity.createOrganization, .with { $0.name = "x"; $0.firstAdminEmail = "x@y.example" })
        } == .permissionDenied)
        #expect(await code {
            _ = try await deployment.gateway.unary(Identity.inviteUser, .with { $0.orgID = org; $0.email = "n@firm.example"; $0.role = .member })
        } == .unauthenticated)
        var metadata = Metadata()
        try metadata.add("authorization", "Bearer \(admin)")
        _ = try await deployment.gateway.unary(Identity.logout, .init(), options: .init(metadata: metadata))
        #expect(await code { _ = try await deployment.authorize(admin, org: org, .reportsRead) } == .unauthenticated)
        _ = await deployment.stop()
    }

    @Test("Login: a wrong password and an unknown e-mail get the same answer")
    func loginIndistinguishable() async throws {
        let deployment = try await IdentityDeployment()
        let (org, _) = try await deployment.organisationWithAdmin(email: "admin@firm.example")
        func failure(_ email: String, _ password: String) async -> RPCError? {
            do {
                _ = try await deployment.gateway.unary(Identity.login, .with { $0.orgID = org; $0.email = email; $0.password = password }, options: .endUser)
                return nil
            } catch { return error as? RPCError }
        }
        let wrongPassword = await failure("admin@firm.example", "not the right passphrase")
        let unknownEmail = await failure("nobody@firm.example", "not the right passphrase")
        #expect(wrongPassword != nil)
        #expect(wrongPassword == unknownEmail)
        #expect(wrongPassword?.code == .unauthenticated)
        _ = await deployment.stop()
    }

    @Test("Invitations are single use, and weak passwords are refused without using them up")
    func invitations() async throws {
        let deployment = try await IdentityDeployment()
        let created = try await deployment.operatorClient.unary(Identity.createOrganization, .with {
            $0.name = "Jones Law"
            $0.firstAdminEmail = "owner@jones.example"
        })
        #expect(!created.orgID.isEmpty)
        let invitation = try deployment.delivered(to: "owner@jones.example")
        for weak in ["short", "password12345", "aaaaaaaaaaaaaaaa"] {
            #expect(await code {
                _ = try await deployment.gateway.unary(Identity.redeemInvitation, .with {
                    $0.invitationToken = invitation
                    $0.password = weak
                }, options: .endUser)
            } == .invalidArgument, "\(weak)")
        }
        _ = try await deployment.gateway.unary(Identity.redeemInvitation, .with {
            $0.invitationToken = invitation
            $0.password = "an acceptable passphrase"
        }, options: .endUser)
        #expect(await code {
            _ = try await deployment.gateway.unary(Identity.redeemInvitation, .with {
                $0.invitationToken = invitation
                $0.password = "another acceptable passphrase"
            }, options: .endUser)
        } == .notFound)
        _ = await deployment.stop()
    }
}
