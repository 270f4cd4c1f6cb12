import CallTraceKeys
import CallTraceRPC
import CallTraceServiceHost
import Foundation

/// Share links (P7): a link to one recording that a firm pastes into its CRM — signed,
/// unguessable, expiring and revocable.
///
/// The token is base64url of a random 128-bit secret and an HMAC-SHA256 over (secret, org,
/// recording, expiry) under the organisation's own key (its index key, separated by purpose).
/// Only a SHA-256 of the secret is stored, so the database alone opens nothing. An expired,
/// revoked, altered or unknown link, or one whose recording was deleted, all get the same
/// answer after the same work.
struct ShareLinkRules: Sendable {
    /// The longest a link may live: 30 days, or less where the organisation says so.
    static let maxTTLSeconds: UInt32 = 30 * 86_400
    /// The shortest maximum an organisation may set: an hour.
    static let minPolicySeconds: UInt32 = 3600
    static let refusal = DomainError.notFound("this link is not valid: expired, revoked or unknown")

    let recordings: RecordingRules
    var repository: any RecordingRepository { recordings.repository }
    var keys: KeyRing { recordings.keys }
    var clock: any WallClock { recordings.clock }

    struct Created: Sendable {
        let link: ShareLinkRow
        let token: String
    }

    func create(recording id: String, org: String, ttlSeconds: UInt32, note: String, by actor: String) async throws -> Created {
        let maximum = try await policy(org: org).maxTTLSeconds
        guard (1...maximum).contains(ttlSeconds) else {
            throw DomainError.invalid("a link of this organisation lives from 1 second to \(Self.describe(maximum)) (ttl_seconds)")
        }
        guard note.count <= 500 else { throw DomainError.invalid("a note is at most 500 characters") }
        _ = try await recordings.recording(id, org: org)
        let secret = try SecretBytes.random(16)
        let now = clock.nowUnixMs
        let expires = now + Int64(ttlSeconds) * 1000
        let linkID = "lnk_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let link = ShareLinkRow(id: linkID, secretHash: OpaqueToken.storageHash(secret.hexString), org: org, recording: id, expiresAt: expires,
                                sealedNote: try keys.seal(Data(note.utf8), org: org, table: "share_links", column: "note", row: linkID),
                                createdBy: actor, createdAt: now, revokedAt: nil, opens: 0)
        let signature = try signature(secret: secret, org: org, recording: id, expires: expires)
        try await repository.write { [outbox = recordings.outbox] tx in
            try tx.insert(link)
            try outbox.record(AuditRecord(org: org, actor: actor, action: .shareLinkCreated, resource: .shareLink(linkID), outcome: .success,
                                          detail: "recording=\(id); expires=\(expires)"), in: tx.connection)
        }
        return Created(link: link, token: Self.base64url(Data(secret) + signature))
    }

    /// The organisation's longest link lifetime (30 days unless it set less).
    func policy(org: String) async throws -> (maxTTLSeconds: UInt32, updatedAt: Int64, updatedBy: String) {
        try OrganizationID.validate(org)
        return try await repository.read { tx in try tx.shareLinkPolicy(org: org) } ?? (Self.maxTTLSeconds, 0, "")
    }

    func setPolicy(org: String, maxTTLSeconds: UInt32, by actor: String) async throws -> (maxTTLSeconds: UInt32, updatedAt: Int64, updatedBy: String) {
        try OrganizationID.validate(org)
        guard (Self.minPolicySeconds...Self.maxTTLSeconds).contains(maxTTLSeconds) else {
            throw DomainError.invalid("max_ttl_seconds must be from 3600 (an hour) to \(Self.maxTTLSeconds) (30 days)")
        }
        let now = clock.nowUnixMs
        try await repository.write { [outbox = recordings.outbox] tx in
            try tx.putShareLinkPolicy(org: org, maxTTLSeconds: maxTTLSeconds, at: now, by: actor)
            try outbox.record(AuditRecord(org: org, actor: actor, action: .shareLinkPolicySet, resource: .organisation(org), outcome: .success,
                                          detail: "max_ttl_seconds=\(maxTTLSeconds)"), in: tx.connection)
        }
        return (maxTTLSeconds, now, actor)
    }

    static func describe(_ seconds: UInt32) -> String {
        func unit(_ n: UInt32, _ name: String) -> String { "\(n) \(name)\(n == 1 ? "" : "s")" }
        return seconds % 86_400 == 0 ? unit(seconds / 86_400, "day") : seconds % 3600 == 0 ? unit(seconds / 3600, "hour") : unit(seconds, "second")
    }

    /// The recording a token opens, with the link; the open is counted and audited unless
    /// `counting` is false (a description only: no audio leaves).
    func open(token: String, clientAddress: String?, by actor: String, counting: Bool = true) async throws -> (link: ShareLinkRow, recording: RecordingRow) {
        // One answer, after the same work, for every way a link can be bad.
        guard let raw = Self.decode(token), raw.count == 48 else {
            _ = OpaqueToken.storageHash(token)
            throw Self.refusal
        }
        let secret = [UInt8](raw.prefix(16)), presented = [UInt8](raw.suffix(32))
        let hash = OpaqueToken.storageHash(secret.hexString)
        let now = clock.nowUnixMs
        let found = try await repository.read { tx -> (ShareLinkRow, RecordingRow?)? in
            guard let link = try tx.shareLink(secretHash: hash) else { return nil }
            return (link, try tx.recording(link.recording, org: link.org))
        }
        guard let (link, recording) = found,
              let expected = try? signature(secret: secret, org: link.org, recording: link.recording, expires: link.expiresAt),
              SecretBytes.equal(presented, [UInt8](expected)),
              link.revokedAt == nil, link.expiresAt > now, let recording
        else { throw Self.refusal }
        guard counting else { return (link, recording) }
        try await repository.write { [outbox = recordings.outbox] tx in
            try tx.countOpen(link.id)
            try outbox.record(AuditRecord(org: link.org, actor: actor, action: .shareLinkOpened, resource: .shareLink(link.id),
                                          outcome: .success, detail: "recording=\(link.recording); client=\(clientAddress ?? "unknown")"),
                              in: tx.connection)
        }
        return (link, recording)
    }

    func revoke(_ linkID: String, org: String, by actor: String) async throws {
        try OrganizationID.validate(org)
        let now = clock.nowUnixMs
        try await repository.write { [outbox = recordings.outbox] tx in
            guard try tx.revokeShareLink(linkID, org: org, at: now) else {
                throw DomainError.notFound("share link \(linkID.prefix(64)) not found or already revoked")
            }
            try outbox.record(AuditRecord(org: org, actor: actor, action: .shareLinkRevoked, resource: .shareLink(linkID),
                                          outcome: .success), in: tx.connection)
        }
    }

    /// The organisation's links (of one recording, when named), newest first, notes opened.
    func list(org: String, recording: String?) async throws -> [(link: ShareLinkRow, note: String)] {
        try OrganizationID.validate(org)
        let links = try await repository.read { tx in try tx.shareLinks(org: org, recording: recording) }
        return try links.map { link in
            (link, String(decoding: try keys.open(link.sealedNote, org: org, table: "share_links", column: "note", row: link.id), as: UTF8.self))
        }
    }

    private func signature(secret: [UInt8], org: String, recording: String, expires: Int64) throws -> Data {
        try keys.blindIndex("\(secret.hexString):\(org):\(recording):\(expires)", kind: "share-link", org: org)
    }


    static func base64url(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func decode(_ token: String) -> Data? {
        guard token.utf8.count == 64, token.utf8.allSatisfy({ $0 < 0x80 }) else { return nil }
        let base64 = token.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        return Data(base64Encoded: base64)
    }
}
