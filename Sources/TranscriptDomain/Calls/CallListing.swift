import CallTraceProto
import CallTraceServiceHost

/// Which of an organisation's calls a listing asks for, newest first: a period, a source, a
/// direction, the outcomes they ended with (the missed ones that need a call back, say), and
/// whether only those whose enquiry is not yet marked. Empty fields do not narrow.
struct CallListing: Sendable, Equatable {
    var from: Int64?
    var before: Int64?
    var source: String?
    var direction: Calltrace_Transcript_V1_Direction?
    var outcomes: Set<Calltrace_Transcript_V1_Outcome> = []
    var unmarkedOnly = false

    init(from: Int64? = nil, before: Int64? = nil, source: String? = nil, direction: Calltrace_Transcript_V1_Direction? = nil,
         outcomes: Set<Calltrace_Transcript_V1_Outcome> = [], unmarkedOnly: Bool = false) {
        self.from = from
        self.before = before
        self.source = source
        self.direction = direction
        self.outcomes = outcomes
        self.unmarkedOnly = unmarkedOnly
    }

    /// From a request at the handler's edge; an unknown direction or outcome is refused.
    init(_ request: Calltrace_Transcript_V1_ListCallsRequest) throws {
        guard Calltrace_Transcript_V1_Direction.allCases.contains(request.direction),
              request.outcomes.allSatisfy({ Calltrace_Transcript_V1_Outcome.allCases.contains($0) }) else {
            throw DomainError.invalid("direction or outcomes holds an unknown value")
        }
        self.init(from: request.startedFromUnixMs == 0 ? nil : request.startedFromUnixMs,
                  before: request.startedBeforeUnixMs == 0 ? nil : request.startedBeforeUnixMs,
                  source: request.source.isEmpty ? nil : request.source,
                  direction: request.direction == .unspecified ? nil : request.direction,
                  outcomes: Set(request.outcomes), unmarkedOnly: request.unmarkedOnly)
    }
}
