public import CallTraceAPI
import CallTraceKeys
public import CallTraceProto
public import CallTraceRPC
public import CallTraceServiceHost
import CallTraceStorage
public import CallTraceTestSupport
public import Foundation
import IdentityDomain
import MediaDomain
import TranscriptDomain

public typealias Media = Calltrace_Media_V1_RecordingServiceClient

/// Identity, transcript (which owns calls), compliance and media in this test process, one deployment PKI,
/// real mutual TLS; clients for the web gateway, the telephony gateway, an operator and services.
public final class MediaDeployment: @unchecked Sendable {
    public let pki = try! TemporaryPKI()
    public let calls: CallLedger
    public let media: InProcessService
    /// The web gateway, to media and to identity.
    public let gateway: Media
    /// The telephony gateway, to media: it uploads.
    public let telephony: Media
    public let identityGateway: RPCClient
    public var identity: InProcessService { calls.identity }

    /// - Parameters:
    ///   - adjustIdentity: identity's settings beyond the test's (`admin_operators`, say).
    ///   - adjustMedia: media's (`blob_store`, say).
    public init(adjustIdentity: (inout ServiceConfiguration) -> Void = { _ in },
                adjustMedia: (inout ServiceConfiguration) -> Void = { _ in }) async throws {
        let identity = try await InProcessService.start(IdentityService.self, pki: pki, adjust: adjustIdentity)
        // Media and transcript name each other: transcript starts first, told the port media will
        // take (below the ephemeral range, so no parallel test's connection takes it meanwhile).
        var started: (CallLedger, InProcessService)?
        var lastError: (any Error)?
        for _ in 0..<3 where started == nil {
            let port = try freePort()
            let calls = try await CallLedger(pki: pki, identity: identity, mediaPort: port)
            do {
                started = (calls, try await InProcessService.start(MediaService.self, peers: [
                    "identity": identity.instance.port, "transcript": calls.transcript.instance.port,
                ], pki: pki) { configuration in
                    configuration.listen = "127.0.0.1:\(port)"
                    adjustMedia(&configuration)
                })
            } catch {
                lastError = error  // the port was taken meanwhile: again, with another
                await calls.compliance.stop()
                await calls.transcript.stop()
            }
        }
        guard let started else { throw lastError ?? ConfigurationError("media did not start") }
        (calls, media) = started
        gateway = Media(try media.client())
        telephony = Media(try media.client(identity: CallLedger.telephony))
        identityGateway = try identity.client()
    }

    /// Media as `identity` (a gateway, an operator or a service) sees it.
    public func media(as identity: String) throws -> Media { Media(try media.client(identity: identity)) }

    /// Where media keeps its sealed files.
    public var blobFolder: String { (media.setup.database as NSString).deletingLastPathComponent + "/recordings" }

    public func stop() async {
        await media.stop()
        await calls.stop()
    }

    /// A new organisation (with a tracking number) and its admin's session token.
    public func organisation(_ name: String = "Smith & Co Solicitors") async throws -> (org: String, admin: String) {
        try await calls.organisation(name)
    }

    /// Uploads `file` for `call`, as the telephony gateway does: the call (from `caller`) started first.
    public func upload(_ file: Data, org: String, call: String = "call-1", caller: String = "07700900123",
                       format: Calltrace_Media_V1_AudioFormat = .wavPcm16, declaredSHA: Data? = nil,
                       piece: Int = 100_000) async throws -> Calltrace_Media_V1_Recording {
        try await calls.start(call, in: org, caller: caller)
        return try await telephony.upload(file, org: org, call: call, format: format, declaredSHA: declaredSHA, piece: piece)
    }

    /// A user of `org` in `role`, invited by its admin; their session token.
    public func user(_ role: Calltrace_Identity_V1_Role, in org: String, admin: String) async throws -> String {
        try await identity.newUser(role, in: org, admin: admin)
    }

    /// The recordings whose own key is in media's key store.
    public func keyedRecordings() throws -> [String] {
        try media.instance.keyStore.sync { db in try db.query("SELECT object_id FROM object_keys").compactMap { $0.text("object_id") } }
    }

    /// Media's audit outbox: (action, resource, detail) of every event recorded so far.
    public func auditEvents() throws -> [(action: String, resource: String, detail: String)] {
        try media.instance.database.sync { db in
            try db.query("SELECT event FROM audit_outbox ORDER BY id").map { row in
                let event = try Calltrace_Compliance_V1_AuditEvent(serializedBytes: row.blob("event") ?? Data())
                return (event.action, event.resource, event.detail)
            }
        }
    }
}

/// Call options carrying a user's bearer token.
/// A mono 16-bit PCM WAV file of `samples` samples at `rate` Hz: a ramp, so every byte differs
/// from its neighbours.
public func wavFile(samples: Int, rate: UInt32 = 8000, channels: UInt16 = 1, encoding: UInt16 = 1, bits: UInt16 = 16) -> Data {
    var data = Data()
    func le32(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) } }
    func le16(_ value: UInt16) { withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) } }
    let bytesPerSample = Int(bits / 8) * Int(channels)
    let body = samples * bytesPerSample
    data.append(contentsOf: "RIFF".utf8); le32(UInt32(36 + body)); data.append(contentsOf: "WAVE".utf8)
    data.append(contentsOf: "fmt ".utf8); le32(16); le16(encoding); le16(channels); le32(rate)
    le32(rate * UInt32(bytesPerSample)); le16(UInt16(bytesPerSample)); le16(bits)
    data.append(contentsOf: "data".utf8); le32(UInt32(body))
    data.append(contentsOf: (0..<body).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 8) })
    return data
}


extension Media {
    /// Uploads `file` in pieces of `piece` bytes for `call`, declaring `format` (and the file's own SHA-256 unless `declaredSHA` is given).
    public func upload(_ file: Data, org: String, call: String = "call-1", format: Calltrace_Media_V1_AudioFormat = .wavPcm16,
                declaredSHA: Data? = nil, piece: Int = 100_000, options: CallOptions = CallOptions()) async throws -> Calltrace_Media_V1_Recording {
        try await uploadRecording(options: options) { writer in
            try await writer.send(.with {
                $0.header = .with {
                    $0.orgID = org; $0.callID = call; $0.format = format; $0.sampleRateHz = 8000; $0.channels = 1
                    $0.durationMs = 0; $0.sha256 = declaredSHA ?? sha256(file)
                }
            })
            var offset = 0
            while offset < file.count {
                let end = min(file.count, offset + piece)
                try await writer.send(.with { $0.chunk = file.subdata(in: offset..<end) })
                offset = end
            }
        }.recording
    }

    /// Plays bytes `offset..<offset+length` (length 0: to the end) and returns them whole.
    public func play(_ id: String, org: String, offset: UInt64 = 0, length: UInt64 = 0, reason: String = "", options: CallOptions) async throws -> Data {
        try await playRecording(.with { $0.orgID = org; $0.recordingID = id; $0.offset = offset; $0.length = length; $0.reason = reason },
                                options: options) { stream in
            var out = Data()
            for try await message in stream { out += message.data }
            return out
        }
    }
}
