import CallTraceAPI
public import CallTraceRPC
import CallTraceS3
public import CallTraceServiceHost
public import CallTraceStorage
import Foundation

/// The media service: recordings — encrypted audio and its metadata (org, call id, format, size,
/// duration, checksum). Media never sees callers' phone numbers (DESIGN.md §3).
/// `services/media/main.swift` runs it as a process; tests run it in process.
public struct MediaService: CallTraceService {
    public typealias Settings = MediaSettings
    public static let name = "media"
    public static let defaultPort = DefaultPorts.media
    public static let requiredPeers: [String: String] = ["identity": "to authorise users and operators", "compliance": "to forward its audit events",
                                                         "transcript": "to queue each stored recording's transcription"]
    /// Its own tables, in order (the host's shared tables migrate on their own track first; the
    /// gaps in the numbering are versions those once took here).
    public static let migrations = [Migration(version: 4, SQLiteRecordingRepository.schema),
                                    Migration(version: 5, SQLiteRecordingRepository.shareLinks),
                                    Migration(version: 6, SQLiteRecordingRepository.blobVersions),
                                    Migration(version: 7, SQLiteRecordingRepository.linkPolicies),
                                    Migration(version: 8, SQLiteRecordingRepository.deletedCalls),
                                    Migration(version: 9, SQLiteRecordingRepository.redactionStates),
                                    Migration(version: 10, SQLiteRecordingRepository.receivedFiles)]

    let recordings: RecordingHandler
    let shareLinks: ShareLinkHandler

    public init(context: ServiceContext) throws {
        guard let authorizer = context.authorizer else { throw ConfigurationError("media needs its identity peer") }
        let settings = context.configuration[Settings.self]
        let blobs: any BlobStore
        if let bucket = try settings.s3() {
            let store = try S3BlobStore(client: S3Client(location: bucket))
            do { try store.claim(owner: try context.keys.verifyMasterKey()) } catch let error as S3Error {
                throw ConfigurationError("blob_store: \(error.description)")
            }
            blobs = store
            context.logger.notice("recordings kept in an S3-compatible bucket", metadata: ["blob_store": "\(bucket)"])
        } else {
            blobs = try FileBlobStore(folder: settings.blobStore ?? context.configuration.dataFolder() + "/recordings")
        }
        let rules = RecordingRules(repository: SQLiteRecordingRepository(database: context.database), blobs: blobs,
                                   keys: context.keys, outbox: context.outbox, jobs: context.jobs, clock: context.clock,
                                   blocking: context.blocking)
        // What an interrupted upload or deletion left behind goes before the first call; beside
        // replicas, what is younger than a day waits for the daily sweep.
        let swept = try rules.sweep(sparingSince: context.sweepCutoff(sparing: RecordingRules.sweepGrace))
        if !swept.isEmpty { context.logger.notice("start-up sweep removed unfinished recordings", metadata: [
            "removed": "\(swept.count)", "what": "\(Self.sweepSummary(swept))"]) }
        context.jobs.register(RecordingSweepJob(rules: rules) { [logger = context.logger] removed in
            logger.notice("daily sweep removed unfinished recordings", metadata: [
                "removed": "\(removed.count)", "what": "\(Self.sweepSummary(removed))"])
        })
        try context.jobs.schedule("sweep", every: .seconds(86_400), RecordingSweep())
        if let transcript = context.peers["transcript"] {
            // Waits out any outage of transcript: a recording is never left untranscribed for it.
            context.jobs.register(RecordingStoredJob(rules: rules, transcript: .init(transcript)), maxAttempts: Int.max)
        }
        recordings = RecordingHandler(rules: rules, authorizer: authorizer, calls: context.peers["transcript"].map { .init($0) },
                                      telephonyGateways: settings.telephonyGateways)
        shareLinks = ShareLinkHandler(rules: ShareLinkRules(recordings: rules), authorizer: authorizer)
    }

    public var rpcServices: [any RPCService] { [recordings, shareLinks] }

    /// Which files and keys a sweep removed, and why: after a restore the operator sees what the
    /// backup no longer named.
    static func sweepSummary(_ removed: [String]) -> String {
        removed.prefix(20).joined(separator: "; ") + (removed.count > 20 ? "; …" : "")
    }
}
