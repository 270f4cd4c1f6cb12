import CallTraceKeys
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceStorage
import CallTraceSync
import CallTraceTestSupport
import Foundation
@testable import IdentityDomain
import Testing

/// How a rule called directly ends: it succeeds, or refuses with a kind of domain error (any
/// other error is a failure of its own).
enum Outcome: Equatable {
    case ok
    case refused(DomainError.Kind)
    case failed(String)
}

func outcome(_ body: () async throws -> Void) async -> Outcome {
    do {
        try await body()
        return .ok
    } catch let error as DomainError {
        return .refused(error.kind)
    } catch {
        return .failed("\(error)")
    }
}

/// Identity's rules over its SQLite repository in a temporary folder, without sockets or
/// processes: every expiry is reached by moving a test clock.
final class RulesFixture: @unchecked Sendable {
    /// Keeps what the rules deliver, instead of mailing it.
    final class Mailbox: TokenDelivery, @unchecked Sendable {
        let messages = Locked<[TokenMessage]>([])
        func deliver(_ message: TokenMessage, in db: Connection) throws { messages.withLock { $0.append(message) } }
        func deliver(_ alert: AlertMessage, in db: Connection) throws {}
        func last(_ kind: TokenMessage.Kind) -> String? { messages.withLock { $0.last { $0.kind == kind }?.token } }
    }

    let clock = TestClock()
    let mailbox = Mailbox()
    let stores: TemporaryStores
    let rules: IdentityRules

    init() throws {
        stores = try TemporaryStores(IdentityService.self)
        let jobs = JobQueue(database: stores.database, clock: clock)
        rules = IdentityRules(repository: SQLiteIdentityRepository(database: stores.database), keys: stores.keys,
                              outbox: AuditOutbox(database: stores.database, service: "identity", jobs: jobs), delivery: mailbox, clock: clock,
                              hasher: PasswordHasher(logN: 10))
    }

    /// An organisation whose admin has set a password.
    func organisation() async throws -> String {
        let created = try await rules.createOrganization(name: "Rules LLP", adminEmail: "admin@rules.example", adminName: "Admin", by: "operator:ops")
        _ = try await rules.redeem(.invitation, token: try #require(mailbox.last(.invitation)), password: "correct horse battery staple")
        return created.org
    }

    func login(_ org: String, password: String = "correct horse battery staple", from address: String = "192.0.2.1") async throws -> String {
        try await rules.login(org: org, email: "admin@rules.example", password: password, totpCode: "", clientAddress: address).token
    }
}

@Suite("Identity rules, without sockets: expiries by the test clock")
struct IdentityRulesTests {
    @Test("An invitation is good for 72 hours of the clock, and once")
    func invitationExpiry() async throws {
        let fixture = try RulesFixture()
        _ = try await fixture.rules.createOrganization(name: "Late LLP", adminEmail: "late@rules.example", adminName: "", by: "operator:ops")
        let token = try #require(fixture.mailbox.last(.invitation))
        fixture.clock.advance(by: .seconds(72 * 3600))
        #expect(await outcome { _ = try await fixture.rules.redeem(.invitation, token: token, password: "correct horse battery staple") } == .refused(.notFound))

        _ = try await fixture.rules.createOrganization(name: "Prompt LLP", adminEmail: "prompt@rules.example", adminName: "", by: "operator:ops")
        let prompt = try #require(fixture.mailbox.last(.invitation))
        fixture.clock.advance(by: .seconds(72 * 3600 - 1))
        #expect(await outcome { _ = try await fixture.rules.redeem(.invitation, token: prompt, password: "correct horse battery staple") } == .ok)
        #expect(await outcome { _ = try await fixture.rules.redeem(.invitation, token: prompt, password: "another good passphrase") } == .refused(.notFound))
    }

    @Test("A session ends after the organisation's idle time, each allowed call renewing it, and at its maximum")
    func sessionExpiry() async throws {
        let fixture = try RulesFixture()
        let org = try await fixture.organisation()
        let token = try await fixture.login(org)
        for _ in 0..<3 {
            fixture.clock.advance(by: .seconds(29 * 60))
            #expect(await outcome { _ = try await fixture.rules.authorize(token: token, org: org, permission: .usersManage, from: .direct) } == .ok)
        }
        fixture.clock.advance(by: .seconds(30 * 60))
        #expect(await outcome { _ = try await fixture.rules.authorize(token: token, org: org, permission: .usersManage, from: .direct) } == .refused(.unauthenticated))

        // A one-hour maximum ends a busy session after an hour, however often it is used.
        try await fixture.rules.setPolicy(ranges: [], idleSeconds: 0, maxSeconds: 3600, requireTwoFactor: false, org: org, by: "user:admin")
        let busy = try await fixture.login(org)
        for _ in 0..<5 {
            fixture.clock.advance(by: .seconds(11 * 60))
            #expect(await outcome { _ = try await fixture.rules.authorize(token: busy, org: org, permission: .reportsRead, from: .direct) } == .ok)
        }
        fixture.clock.advance(by: .seconds(6 * 60))
        #expect(await outcome { _ = try await fixture.rules.authorize(token: busy, org: org, permission: .reportsRead, from: .direct) } == .refused(.unauthenticated))
    }

    @Test("Five wrong passwords lock the account for the 15-minute window of the clock; then it opens")
    func lockoutWindow() async throws {
        let fixture = try RulesFixture()
        let org = try await fixture.organisation()
        for attempt in 0..<5 {
            #expect(await outcome { _ = try await fixture.login(org, password: "wrong passphrase \(attempt)", from: "198.51.100.\(attempt)") }
                    == .refused(.unauthenticated))
        }
        #expect(await outcome { _ = try await fixture.login(org, from: "198.51.100.9") } == .refused(.tooMany))
        fixture.clock.advance(by: .seconds(15 * 60 + 1))
        #expect(await outcome { _ = try await fixture.login(org, from: "198.51.100.9") } == .ok)
    }

    @Test("A reset token lasts an hour of the clock; redeeming it ends every session and voids the other tokens")
    func resetExpiry() async throws {
        let fixture = try RulesFixture()
        let org = try await fixture.organisation()
        let session = try await fixture.login(org)
        try await fixture.rules.requestReset(org: org, email: "admin@rules.example", clientAddress: "192.0.2.10")
        let first = try #require(fixture.mailbox.last(.passwordReset))
        try await fixture.rules.requestReset(org: org, email: "Admin@Rules.example", clientAddress: "192.0.2.10")
        let second = try #require(fixture.mailbox.last(.passwordReset))
        fixture.clock.advance(by: .seconds(3599))
        #expect(await outcome { _ = try await fixture.rules.redeem(.reset, token: second, password: "a brand new passphrase") } == .ok)
        #expect(await outcome { _ = try await fixture.rules.redeem(.reset, token: first, password: "a brand new passphrase") } == .refused(.notFound))
        #expect(await outcome { _ = try await fixture.rules.authorize(token: session, org: org, permission: .reportsRead, from: .direct) } == .refused(.unauthenticated))

        try await fixture.rules.requestReset(org: org, email: "admin@rules.example", clientAddress: "192.0.2.10")
        let late = try #require(fixture.mailbox.last(.passwordReset))
        fixture.clock.advance(by: .seconds(3600))
        #expect(await outcome { _ = try await fixture.rules.redeem(.reset, token: late, password: "yet another passphrase") } == .refused(.notFound))
    }
}
