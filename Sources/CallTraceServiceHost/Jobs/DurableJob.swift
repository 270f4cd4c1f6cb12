import Foundation

/// A kind of durable work, typed: the type names its kind and is its payload, encoded one way
/// (JSON) for every kind. A service declares one per kind beside the rules that enqueue it,
/// and registers a `DurableJobHandler` for it by type:
///
///     struct RecordingStored: DurableJob {
///         static let kind = "media.recording_stored"
///         let org: String
///         let recording: String
///     }
///     try context.jobs.enqueue(RecordingStored(org: org, recording: id), idempotencyKey: "…", in: tx.connection)
///     context.jobs.register(RecordingStoredHandler(…))
public protocol DurableJob: Codable, Sendable {
    /// The kind, `<service>.<what>` (`media.recording_stored`): stored with each job, listed to
    /// operators (`calltrace-<svc> jobs`), unique in the service.
    static var kind: String { get }
    /// A payload an older release queued before payloads were typed (a raw id, `org\nid`), so
    /// jobs waiting in a database across an upgrade still run. Default: none.
    static func legacyPayload(_ data: Data) -> Self?
}

extension DurableJob {
    public static func legacyPayload(_ data: Data) -> Self? { nil }

    /// An older release's payload of `count` fields joined by newlines (`org\nid`), for
    /// `legacyPayload`; nil for anything else.
    public static func legacyFields(_ data: Data, count: Int) -> [String]? {
        let fields = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        return fields.count == count && !fields.contains(where: \.isEmpty) ? fields : nil
    }

    /// The payload as stored.
    func encoded() throws -> Data { try JSONEncoder.jobs.encode(self) }

    /// The payload of a stored job: JSON, or an older release's form; a payload that is
    /// neither can never run, so it is dead-lettered at once.
    static func decoded(from data: Data) throws -> Self {
        if let work = try? JSONDecoder().decode(Self.self, from: data) { return work }
        if let work = legacyPayload(data) { return work }
        throw PermanentJobFailure("the payload of this \(kind) job cannot be read")
    }
}

/// Work without a payload (schedules, coalescing jobs): `{}`.
public protocol PayloadFreeJob: DurableJob { init() }

extension PayloadFreeJob {
    /// Older releases stored these with an empty payload.
    public static func legacyPayload(_ data: Data) -> Self? { data.isEmpty ? Self() : nil }
}

/// Runs the jobs of one `DurableJob` type: throwing retries later with backoff (or
/// dead-letters: `PermanentJobFailure`, `JobQueue.Configuration.maxAttempts`); `RetryLater`
/// when the far side said when.
public protocol DurableJobHandler: Sendable {
    associatedtype Work: DurableJob
    /// Runs one job: `work` is its payload, `job` its id, idempotency key and attempts so far.
    func run(_ work: Work, job: Job) async throws -> JobOutcome
}

/// A typed handler as the queue runs it: by kind, decoding the payload first.
struct TypedJobHandler<Handler: DurableJobHandler>: JobHandler {
    let handler: Handler
    var kind: String { Handler.Work.kind }
    func run(_ job: Job) async throws -> JobOutcome {
        try await handler.run(try Handler.Work.decoded(from: job.payload), job: job)
    }
}

extension JSONEncoder {
    /// Sorted keys: one payload, one encoding, whatever the dictionary order.
    static let jobs: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }()
}

/// Work on one thing named by its id (a bundle, a retention run, a deletion): `{"id": …}`.
public protocol IdentifiedJob: DurableJob {
    var id: String { get }
    init(id: String)
}

extension IdentifiedJob {
    /// Older releases stored the id alone, as text.
    public static func legacyPayload(_ data: Data) -> Self? {
        let id = String(decoding: data, as: UTF8.self)
        return id.isEmpty || id.contains("{") ? nil : Self(id: id)
    }
}
