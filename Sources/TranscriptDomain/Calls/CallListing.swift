import CallTraceProto

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
}
