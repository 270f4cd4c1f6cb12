import CallTraceAPI
import CallTraceKeys
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceStorage
import Foundation
import SwiftProtobuf

/// What goes into a bundle of each kind.
struct BundleContents: Sendable {
    let services: any CallDataServices
    let trail: AuditTrail
    let requests: SubjectRequestRules
    /// The offboarding export carries a signed checkpoint of the trail it holds.
    let checkpoints: AuditCheckpoints

    func write(_ bundle: BundleRow, into archive: TarArchive) async throws {
        var about: [String: Any] = [:]
        var calls: [String] = []
        switch bundle.kind {
        case .subjectAccess:
            let request = try await requests.request(bundle.subject, org: bundle.org)
            calls = try await SubjectRequestRules.calls(of: request, services: services).map(\.callID)
            about = ["subject_request": request.id, "received_on": request.receivedOn.description,
                     "phone_numbers": request.details.phoneNumbers.map(PhoneNumber.masked)]
            try archive.add("README.txt", Self.readme(bundle, """
                Everything this firm holds about the data subject through CallTrace: for each call, its record and
                transcript as JSON (call.json) and as text (call.txt), and its recordings in their original format.
                """))
            for call in calls { try await addCall(call, org: bundle.org, folder: "calls/\(Self.entryName(call))/", recordings: true, into: archive) }
        case .matter:
            calls = [bundle.subject]
            about = ["call": bundle.subject, "matter_reference": bundle.matterReference]
            try archive.add("README.txt", Self.readme(bundle, """
                One call for the matter file: its record, transcript and summary as JSON (call.json) and text (call.txt),
                its recordings, and the audit trail's events about it (audit-excerpt.jsonl).
                """))
            guard try await addCall(bundle.subject, org: bundle.org, folder: "", recordings: true, into: archive) else {
                throw PermanentJobFailure("call \(bundle.subject) no longer exists")
            }
            try await addAuditExcerpt(call: bundle.subject, org: bundle.org, into: archive)
        case .offboarding:
            about = ["organisation": bundle.org]
            try archive.add("README.txt", Self.readme(bundle, """
                Everything the organisation kept in CallTrace: every call's record, transcript and summary (calls/),
                every recording in its original format (recordings/), and the whole audit trail as JSON lines
                (audit/trail.jsonl), oldest first, each event with its chain index and link.
                """))
            var token = ""
            repeat {
                let page = try await services.callPage(org: bundle.org, pageToken: token)
                for call in page.ids where try await addCall(call, org: bundle.org, folder: "calls/\(Self.entryName(call))/", recordings: false, into: archive) {
                    calls.append(call)
                }
                token = page.next
            } while !token.isEmpty
            repeat {
                let page = try await services.recordingPage(org: bundle.org, callID: nil, pageToken: token)
                for recording in page.recordings { try await addRecording(recording, org: bundle.org, folder: "recordings/", into: archive) }
                token = page.next
            } while !token.isEmpty
            // Streamed, never held whole (a firm's trail can run to millions of events): a first
            // pass up to today's head measures it for the entry's header, the second writes it.
            // That head is checkpointed (signed with the deployment key), and the checkpoint goes
            // beside the trail, so the firm can show later that what it took away was whole.
            let current = try await checkpoints.current(org: bundle.org, reason: .export)
            let head = current.headIndex
            if let checkpoint = current.checkpoint {
                let document = Data(checkpoint.document.utf8)
                try archive.begin("audit/checkpoint.txt", size: UInt64(document.count))
                try archive.body(document)
                try archive.end()
                about["audit_checkpoint"] = current.withheld
                    ? "the trail no longer matches checkpoint \(checkpoint.id) (event \(checkpoint.index)): verify the trail to see which events are missing"
                    : "audit/checkpoint.txt signs event \(checkpoint.index), the last in audit/trail.jsonl"
            }
            var size: UInt64 = 0
            try await trail.export(org: bundle.org, from: 0, before: 0, through: head) { size += UInt64($0.count) }
            try archive.begin("audit/trail.jsonl", size: size)
            try await trail.export(org: bundle.org, from: 0, before: 0, through: head) { try archive.body($0) }
            try archive.end()
        }
        about["calls"] = calls
        try archive.index(["bundle_id": bundle.id, "kind": BundleRules.name(bundle.kind), "organisation": bundle.org,
                           "created_at": iso(bundle.createdAt), "requested_by": bundle.requestedBy, "about": about])
    }

    /// A call id as a folder name in an archive: leading dots become "%2E" (a call id may be "."
    /// or "..", which would name the folder itself or its parent when unpacked). "%" is never in
    /// a call id, so no two calls share a folder.
    static func entryName(_ callID: String) -> String {
        let dots = callID.prefix { $0 == "." }.count
        return String(repeating: "%2E", count: dots) + callID.dropFirst(dots)
    }

    /// The call's record and transcript, and (with `recordings`) its recordings, under `folder`; false when the call is gone.
    @discardableResult
    private func addCall(_ call: String, org: String, folder: String, recordings: Bool, into archive: TarArchive) async throws -> Bool {
        guard let export = try await services.exportCall(org: org, callID: call) else { return false }
        try archive.add(folder + "call.json", Data(export.json.utf8))
        try archive.add(folder + "call.txt", Data(export.text.utf8))
        guard recordings else { return true }
        var token = ""
        repeat {
            let page = try await services.recordingPage(org: org, callID: call, pageToken: token)
            for recording in page.recordings { try await addRecording(recording, org: org, folder: folder, into: archive) }
            token = page.next
        } while !token.isEmpty
        return true
    }

    private func addRecording(_ recording: StoredRecording, org: String, folder: String, into archive: TarArchive) async throws {
        try archive.begin(folder + "\(recording.id).\(recording.fileExtension)", size: recording.sizeBytes)
        try await services.exportRecording(org: org, recordingID: recording.id) { piece in try archive.body(piece) }
        try archive.end()
    }

    private func addAuditExcerpt(call: String, org: String, into archive: TarArchive) async throws {
        var resources = ["call:\(call)"]
        var token = ""
        repeat {
            let page = try await services.recordingPage(org: org, callID: call, pageToken: token)
            resources += page.recordings.map { "recording:\($0.id)" }
            token = page.next
        } while !token.isEmpty
        var events: [ChainedAuditEvent] = []
        for resource in resources {
            events += try await trail.list(org: org, filter: .init(resource: resource), pageSize: 500, pageToken: "").events
        }
        let lines = try events.sorted { $0.chainIndex < $1.chainIndex }.map { try $0.jsonLine(protoFieldNames: false) }.joined()
        try archive.add("audit-excerpt.jsonl", Data(lines.utf8))
    }

    static func readme(_ bundle: BundleRow, _ body: String) -> Data {
        Data("""
            CallTrace \(BundleRules.name(bundle.kind)) \(bundle.id)
            Organisation \(bundle.org), made \(iso(bundle.createdAt)) for \(bundle.requestedBy).

            \(body)

            index.json, the last entry, lists every other entry with its size in bytes and its SHA-256.

            """.utf8)
    }
}

func iso(_ ms: Int64) -> String {
    ms == 0 ? "" : ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
}

/// A bundle's archive: tar, sealed in chunks as it is written, digested with OpenSSL's SHA-256.
typealias TarArchive = TarWriter

extension TarWriter.Failure {
    /// What the bundle's job does about it: a source that stopped early is tried again soon;
    /// the rest never heal.
    var jobFailure: any Error {
        if case .shorterThanStated = self { return RetryLater(description, after: .seconds(1)) }
        return PermanentJobFailure(description)
    }
}
