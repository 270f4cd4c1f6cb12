import CallTraceAPI
import CallTraceProto
import CallTraceRPC
import CallTraceDeploymentSupport
import CallTraceTestSupport
import Foundation
import Testing

typealias ShareLinks = Calltrace_Media_V1_ShareLinkServiceClient

@Suite("P7: share links — signed, unguessable, expiring, revocable")
struct ShareLinkTests {
    @Test("A link opens its recording for the gateway, counted and audited; revoked, expired, altered, unknown and deleted-recording links all get NOT_FOUND")
    func lifecycle() async throws {
        let deployment = try await MediaDeployment()
        let (org, admin) = try await deployment.organisation()
        let file = wavFile(samples: 30_000)
        let recording = try await deployment.upload(file, org: org).recordingID
        let links = ShareLinks(try deployment.media.client())
        let asAdmin = try bearer(admin)
        func open(_ token: String) async throws -> Data {
            try await links.openShareLink(.with { $0.token = token }, options: .endUser) { stream in
                var out = Data()
                for try await message in stream { out += message.data }
                return out
            }
        }
        func create(ttl: UInt32, note: String = "") async throws -> Calltrace_Media_V1_CreateShareLinkResponse {
            try await links.createShareLink(.with { $0.orgID = org; $0.recordingID = recording; $0.ttlSeconds = ttl; $0.note = note }, options: asAdmin)
        }

        let created = try await create(ttl: 3600, note: "matter M-123")
        #expect(created.token.count == 64)
        // A description only (a player's look at the size): checked, but no audio, no open counted, no audit.
        let described = try await links.openShareLink(.with { $0.token = created.token; $0.describeOnly = true }, options: .endUser) { stream in
            var messages: [Calltrace_Media_V1_OpenShareLinkResponse] = []
            for try await message in stream { messages.append(message) }
            return messages
        }
        #expect(described.count == 1 && described.first?.data.isEmpty == true)
        #expect(described.first?.recording.sizeBytes == UInt64(file.count) && described.first?.recording.recordingID == recording)
        #expect(try deployment.auditEvents().filter { $0.action == "share_link.opened" }.isEmpty)
        #expect(await code {
            _ = try await links.openShareLink(.with { $0.token = String(repeating: "A", count: 64); $0.describeOnly = true }, options: .endUser) { stream in
                for try await _ in stream {}
            }
        } == .notFound)
        #expect(try await open(created.token) == file)
        let listed = try await links.listShareLinks(.with { $0.orgID = org; $0.recordingID = recording }, options: asAdmin)
        #expect(listed.links.map(\.opens) == [1])
        #expect(listed.links.first?.note == "matter M-123")
        let events = try deployment.auditEvents()
        #expect(events.contains { $0.action == "share_link.created" && $0.resource == "share_link:\(created.link.linkID)" })
        #expect(events.contains { $0.action == "share_link.opened" && $0.detail.contains("client=192.0.2.10") })
        // Only a hash of the secret is stored: the database holds no token.
        let database = try deployment.media.storedBytes()
        #expect(database.range(of: Data(created.token.utf8)) == nil)

        var altered = Array(created.token)
        altered[40] = altered[40] == "A" ? "B" : "A"
        let bad = [String(altered), String(repeating: "A", count: 64), "short", ""]
        for token in bad {
            #expect(await code { _ = try await open(token) } == .notFound, "\(token)")
        }

        _ = try await links.revokeShareLink(.with { $0.orgID = org; $0.linkID = created.link.linkID }, options: asAdmin)
        #expect(await code { _ = try await open(created.token) } == .notFound)

        let brief = try await create(ttl: 60)
        deployment.media.clock.advance(by: .seconds(61))
        #expect(await code { _ = try await open(brief.token) } == .notFound)

        let last = try await create(ttl: 600)
        #expect(try await open(last.token) == file)
        _ = try await deployment.gateway.deleteRecording(.with { $0.orgID = org; $0.recordingID = recording }, options: asAdmin)
        #expect(await code { _ = try await open(last.token) } == .notFound)
        await deployment.stop()
    }

    @Test("Creating, listing and revoking need links.share in the recording's organisation; lifetimes are 1 s to 30 days")
    func refusals() async throws {
        let deployment = try await MediaDeployment()
        let (org, admin) = try await deployment.organisation()
        let (_, otherAdmin) = try await deployment.organisation("Other LLP")
        let analyst = try await deployment.user(.analyst, in: org, admin: admin)
        let recording = try await deployment.upload(wavFile(samples: 100), org: org).recordingID
        let links = ShareLinks(try deployment.media.client())
        func create(_ options: CallOptions, ttl: UInt32 = 60) async -> StatusCode? {
            await code { _ = try await links.createShareLink(.with { $0.orgID = org; $0.recordingID = recording; $0.ttlSeconds = ttl }, options: options) }
        }
        #expect(await create(CallOptions()) == .unauthenticated)
        #expect(await create(try bearer(analyst)) == .permissionDenied)
        #expect(await create(try bearer(otherAdmin)) == .permissionDenied)
        #expect(await create(try bearer(admin), ttl: 0) == .invalidArgument)
        #expect(await create(try bearer(admin), ttl: 30 * 86_400 + 1) == .invalidArgument)
        #expect(await code { _ = try await links.listShareLinks(.with { $0.orgID = org }, options: try bearer(otherAdmin)) } == .permissionDenied)
        let link = try await links.createShareLink(.with { $0.orgID = org; $0.recordingID = recording; $0.ttlSeconds = 60 }, options: try bearer(admin))
        func revoke(_ options: CallOptions) async -> StatusCode? {
            await code { _ = try await links.revokeShareLink(.with { $0.orgID = org; $0.linkID = link.link.linkID }, options: options) }
        }
        #expect(await revoke(CallOptions()) == .unauthenticated)
        #expect(await revoke(try bearer(analyst)) == .permissionDenied)
        #expect(await revoke(try bearer(otherAdmin)) == .permissionDenied)
        let asService = ShareLinks(try deployment.media.client(identity: TemporaryPKI.identity("service", "identity")))
        #expect(await code { _ = try await asService.listShareLinks(.with { $0.orgID = org }, options: try bearer(admin)) } == .permissionDenied)
        #expect(await revoke(try bearer(admin)) == .ok)
        // Opening is for gateways only: an operator, or a service, cannot.
        let asOperator = ShareLinks(try deployment.media.client(identity: TemporaryPKI.identity("operator", "ops")))
        #expect(await code {
            _ = try await asOperator.openShareLink(.with { $0.token = String(repeating: "A", count: 64) }) { stream in
                for try await _ in stream {}
            }
        } == .permissionDenied)
        await deployment.stop()
    }

    @Test("Each organisation sets its own longest link lifetime (an hour to 30 days, settings.manage); links beyond it are refused, naming it")
    func organisationMaximum() async throws {
        let deployment = try await MediaDeployment()
        let (org, admin) = try await deployment.organisation()
        let (other, otherAdmin) = try await deployment.organisation("Other LLP")
        let member = try await deployment.user(.member, in: org, admin: admin)
        let recording = try await deployment.upload(wavFile(samples: 100), org: org).recordingID
        let links = ShareLinks(try deployment.media.client())
        #expect(try await links.getShareLinkPolicy(.with { $0.orgID = org }, options: try bearer(admin)).policy.maxTtlSeconds == 30 * 86_400)
        for (seconds, who, expected) in [(UInt32(86_400), member, StatusCode.permissionDenied), (86_400, otherAdmin, .permissionDenied),
                                          (60, admin, .invalidArgument), (31 * 86_400, admin, .invalidArgument), (86_400, admin, .ok)] {
            let answer = await code { _ = try await links.setShareLinkPolicy(.with { $0.orgID = org; $0.maxTtlSeconds = seconds }, options: try bearer(who)) }
            #expect(answer == expected, "\(seconds) s")
        }
        let policy = try await links.getShareLinkPolicy(.with { $0.orgID = org }, options: try bearer(admin)).policy
        #expect(policy.maxTtlSeconds == 86_400 && policy.updatedBy.hasPrefix("user:"))
        var message = ""
        do {
            _ = try await links.createShareLink(.with { $0.orgID = org; $0.recordingID = recording; $0.ttlSeconds = 2 * 86_400 }, options: try bearer(admin))
        } catch let error as RPCError { message = "\(error.code): \(error.message)" }
        #expect(message.contains("INVALID_ARGUMENT") && message.contains("to 1 day (ttl_seconds)"), "\(message)")
        _ = try await links.createShareLink(.with { $0.orgID = org; $0.recordingID = recording; $0.ttlSeconds = 86_400 }, options: try bearer(admin))
        #expect(try await links.getShareLinkPolicy(.with { $0.orgID = other }, options: try bearer(otherAdmin)).policy.maxTtlSeconds == 30 * 86_400,
                "another organisation keeps the default")
        #expect(try deployment.auditEvents().contains { $0.action == "share_link.policy_set" && $0.detail == "max_ttl_seconds=86400" })
        await deployment.stop()
    }
}
