import CallTraceStorage
import Foundation

/// One assignment of a tracking number to a marketing source, from `from` until `until` (nil
/// while current).
struct TrackingAssignment: Sendable, Equatable {
    let id: String
    /// A small number of its own, which call rows carry (reports group by it).
    let no: Int64
    let number: String
    let org: String
    let source: String
    let channel: Int
    let campaign: String
    let notice: String
    let from: Int64
    let until: Int64?
}

/// A call record. The caller's number is only ever here sealed (`sealedCaller`) and as its
/// blind index (`callerIndex`); the matter reference is sealed too.
struct CallRow: Sendable, Equatable {
    let id: String
    let org: String
    let trackingNumber: String
    let source: String
    let channel: Int
    let campaign: String
    let sealedCaller: Data
    let callerIndex: Data
    /// The caller's small number within the organisation (reports count callers by it).
    let callerNo: Int64
    /// The tracking number assignment the call came in on.
    let assignmentNo: Int64
    let direction: Int
    let startedAt: Int64
    var answeredAt: Int64 = 0
    var endedAt: Int64 = 0
    var durationMs: Int64 = 0
    var outcome: Int = 0
    var recordingID: String = ""
    let callbackOf: String
    let recorded: Bool
    var enquiry: Int = 0
    var matterOpened = false
    var sealedMatterReference: Data?
    var practiceArea: Int = 0
    /// Website attribution: how the call was joined to a visit (`VisitJoin`), the visit, and its
    /// touch and the visitor's first visit's touch (0: none).
    var visit = VisitLink()
    /// What the AI analysis suggests (`Enquiry`, `PracticeArea`); staff confirm it by marking.
    var suggestedEnquiry: Int = 0
    var suggestedPracticeArea: Int = 0
}

/// A call's join to a website visit, decided when it starts.
struct VisitLink: Sendable, Equatable {
    var join: Int = 0
    var visitNo: Int64 = 0
    var touchNo: Int64 = 0
    var firstTouchNo: Int64 = 0
}

/// Something that happened to a call, for the firm's own systems (`ListCallEvents`): it names
/// the call, nothing of its content.
struct CallEventRow: Sendable, Equatable {
    let org: String
    let sequence: Int64
    let kind: Int
    let callID: String
    let occurredAt: Int64
}

/// What a subject search finds of one call.
struct CallerCall: Sendable {
    let id: String
    let recordingID: String
    let startedAt: Int64
    let transcribed: Bool
}

/// A stored transcript: its segments sealed (a serialized `Calltrace_Transcript_V1_Transcript`).
struct TranscriptRow: Sendable {
    let org: String
    let callID: String
    let engine: String
    let sealedSegments: Data
    let redactions: Int
    let createdAt: Int64
}

/// Where a call's transcription stands.
struct TranscriptionRow: Sendable, Equatable {
    let org: String
    let callID: String
    let recordingID: String
    let state: Int
    let failureReason: String
    let updatedAt: Int64
}

/// An organisation's choice of engines.
struct SettingsRow: Sendable, Equatable {
    var enabled = false
    var engine = "deepgram"
    var analysisEngine = "local"
    var model = ""
    var language = "en-GB"
}

/// The organisation's lists of callers; the raw value is the list's table (and the table its
/// cells are sealed for).
enum CallerList: String, Sendable {
    /// Callers who objected (P13): connected, never recorded, transcribed or analysed.
    case suppressions
    /// Callers the firm rejects before anyone is rung; nothing of their attempts is stored.
    case blockedCallers = "blocked_callers"
}

/// A caller on one of the organisation's lists: the number and the reason sealed, found by the
/// number's blind index.
struct ListedCaller: Sendable {
    let org: String
    let callerIndex: Data
    let sealedNumber: Data
    let sealedReason: Data
    let addedAt: Int64
}

/// What an organisation's purge deleted.
struct PurgedOrganisation: Sendable {
    let calls: Int
    let trackingNumbers: Int
    let suppressions: Int
    let blockedCallers: Int
    /// Website visits (with the websites, pools, reservations and touches).
    let visits: Int
}

/// What an attribution report's rows stand for.
enum AttributionGrouping: Sendable {
    case source, channel, campaign
    /// By the website visit each call joined (issue 32).
    case utmCampaign, keyword, landingPage, referrer

    var byVisit: Bool {
        switch self {
        case .source, .channel, .campaign: false
        case .utmCampaign, .keyword, .landingPage, .referrer: true
        }
    }
}

/// One call as an attribution report reads it: small numbers only, in time order.
struct AttributionScanRow {
    let assignment: Int64
    let caller: Int64
    let outcome: Int
    let enquiry: Int
    let matterOpened: Bool
    /// Website attribution: the visit's touch, the visitor's first visit's touch (0: none), the join.
    var touch: Int64 = 0
    var firstTouch: Int64 = 0
    var visitJoin = 0
    /// What the AI suggests when staff have not marked the enquiry.
    var suggestedEnquiry = 0
}

/// Transcript's storage, behind a protocol: the rules decide, a repository reads and writes.
/// Each `read`/`write` is one transaction, with the host's outbox and jobs through
/// `connection`. The SQLite implementation keeps to SQL that PostgreSQL also accepts.
protocol CallRepository: Sendable {
    func read<T: Sendable>(_ body: @escaping @Sendable (any CallTransaction) throws -> T) async throws -> T
    func write<T: Sendable>(_ body: @escaping @Sendable (any CallTransaction) throws -> T) async throws -> T
    /// After deletions: nothing deleted stays in the write-ahead log.
    func checkpoint() async throws
    /// Start-up only (blocking): every stored call and every stored transcript, as "org/call".
    func storedCallsAndTranscripts() throws -> (calls: Set<String>, transcripts: Set<String>)
}

protocol CallTransaction: WebsiteRecords {
    var connection: Connection { get }

    // Tracking numbers
    func insert(_ assignment: TrackingAssignment) throws
    func nextAssignmentNo() throws -> Int64
    /// The organisation's assignments among `numbers`, by number.
    func assignments(org: String, numbers: Set<Int64>) throws -> [Int64: TrackingAssignment]
    /// The assignment in force for `number` at `time`, whichever organisation holds it.
    func assignment(of number: String, at time: Int64) throws -> TrackingAssignment?
    /// The current (open-ended) assignment of `number`, if any.
    func currentAssignment(of number: String) throws -> TrackingAssignment?
    func endAssignment(_ id: String, at time: Int64) throws
    /// When the last tenure of `number` by an organisation other than `org` ended, if there was one.
    func lastTenureEnd(of number: String, otherThan org: String) throws -> Int64?
    func assignments(org: String, includeHistory: Bool) throws -> [TrackingAssignment]

    // Calls
    func insert(_ call: CallRow) throws
    func call(_ id: String, org: String) throws -> CallRow?
    func update(_ call: CallRow) throws
    /// Newest first; `after` is the (started_at, id) of the previous page's last row.
    func calls(org: String, _ listing: CallListing, after: (Int64, String)?, limit: Int) throws -> [CallRow]
    func calls(org: String, callerIndex: Data) throws -> [CallRow]
    /// The caller's small number in the organisation, given on first sight.
    func callerNo(org: String, callerIndex: Data) throws -> Int64
    /// A caller's calls for a subject request, oldest first, with whether each has a transcript: one indexed query.
    func callerCalls(org: String, callerIndex: Data) throws -> [CallerCall]
    /// The call, its transcript, analysis, transcription state and events.
    func deleteCall(_ id: String, org: String) throws -> Bool
    /// The ids of up to `limit` calls started before `cutoff`.
    func callIDs(org: String, startedBefore cutoff: Int64, limit: Int) throws -> [String]
    /// Calls started before `cutoff` that still have a transcript or an analysis, oldest first.
    func transcribedCallIDs(org: String, startedBefore cutoff: Int64, limit: Int) throws -> [String]

    // Call events
    /// Appends an event of `kind` (`Calltrace_Transcript_V1_CallEventKind`) for the call, numbered
    /// after the organisation's last (never reusing a deleted one's number); its sequence.
    func appendEvent(org: String, kind: Int, callID: String, at time: Int64) throws -> Int64
    /// Up to `limit` events after `after`, oldest first.
    func events(org: String, after: Int64, limit: Int) throws -> [CallEventRow]
    /// The organisation's last sequence given (0 for none).
    func lastEventSequence(org: String) throws -> Int64

    // Reports
    /// The largest caller number the organisation has given (0 for none): callers are numbered 1, 2, 3…
    func lastCallerNo(org: String) throws -> Int64
    /// Every call of the period, in time order, as small numbers; the touches only when asked
    /// (`touches`: a report by a website visit's values).
    func scanCalls(org: String, from: Int64, before: Int64, touches: Bool, _ each: (AttributionScanRow) -> Void) throws
    /// The organisations with a call started in the period (the weekly summary's).
    func organisations(withCallsFrom from: Int64, before: Int64) throws -> [String]

    // Transcripts and analyses
    func transcript(org: String, callID: String) throws -> TranscriptRow?
    func put(_ transcript: TranscriptRow) throws
    func deleteTranscript(org: String, callID: String) throws -> Bool
    func analysis(org: String, callID: String) throws -> Data?
    func putAnalysis(_ sealed: Data, org: String, callID: String, at time: Int64) throws
    func deleteAnalysis(org: String, callID: String) throws -> Bool
    func transcription(org: String, callID: String) throws -> TranscriptionRow?
    func put(_ transcription: TranscriptionRow) throws
    func settings(org: String) throws -> SettingsRow?
    func put(_ settings: SettingsRow, org: String) throws

    // Routing
    /// The number's routing, sealed (a serialized `Calltrace_Transcript_V1_Routing`), if the organisation set one.
    func routing(org: String, number: String) throws -> Data?
    func putRouting(_ sealed: Data, org: String, number: String, at time: Int64) throws
    func deleteRouting(org: String, number: String) throws

    // Suppression and the block list
    func listedCaller(_ list: CallerList, org: String, callerIndex: Data) throws -> ListedCaller?
    func insert(_ caller: ListedCaller, into list: CallerList) throws
    func deleteListedCaller(_ list: CallerList, org: String, callerIndex: Data) throws -> Bool
    /// Newest first.
    func listedCallers(_ list: CallerList, org: String) throws -> [ListedCaller]

    // An organisation's end
    /// Deletes everything of `org`.
    func deleteAll(org: String) throws -> PurgedOrganisation
}
