import CallTraceProto
import Foundation
import TranscriptText

/// A call's transcript as stored: its segments with card and bank details taken out, the engine
/// that heard them, and how many details were replaced.
struct Transcript: Sendable {
    let callID: String
    let org: String
    let segments: [Segment]
    let engine: String
    let redactions: Int
    let createdAt: Int64
}

/// A transcript and its message (`calltrace.transcript.v1.Transcript`): the one mapping, for the
/// handlers' answers and for the sealed form, which is the message's bytes (as stored from the
/// start, so transcripts sealed before read the same).
extension Transcript {
    init(_ message: Calltrace_Transcript_V1_Transcript) {
        self.init(callID: message.callID, org: message.orgID, segments: message.segments.map(Segment.init), engine: message.engine,
                  redactions: Int(message.redactions), createdAt: message.createdAtUnixMs)
    }

    var proto: Calltrace_Transcript_V1_Transcript {
        .with {
            $0.callID = callID; $0.orgID = org; $0.segments = segments.map(\.proto); $0.engine = engine
            $0.redactions = UInt32(redactions); $0.createdAtUnixMs = createdAt
        }
    }

    init(sealedForm plain: Data) throws {
        self.init(try Calltrace_Transcript_V1_Transcript(serializedBytes: plain))
    }

    func sealedForm() throws -> Data { try proto.serializedBytes() }
}

extension Segment {
    init(_ message: Calltrace_Transcript_V1_Segment) {
        self.init(speaker: message.speaker, channel: message.channel, startMs: message.startMs, endMs: message.endMs, text: message.text)
    }

    var proto: Calltrace_Transcript_V1_Segment {
        .with { $0.speaker = speaker; $0.channel = channel; $0.startMs = startMs; $0.endMs = endMs; $0.text = text }
    }
}

/// What the analysis engine made of a call's transcript: its practice area, whether it is a new
/// enquiry, how urgent, whether a call back was asked for, a summary with card and bank details
/// taken out, and the engine.
struct Analysis: Sendable, Equatable {
    var practiceArea: Calltrace_Transcript_V1_PracticeArea
    var newEnquiry: Bool
    var urgency: Calltrace_Transcript_V1_Urgency
    var callbackRequested: Bool
    var summary: String
    var engine: String
}

/// An analysis and its message (`calltrace.transcript.v1.Analysis`): the handlers' answers, and
/// the sealed form, the message's bytes as analyses were always sealed.
extension Analysis {
    init(_ message: Calltrace_Transcript_V1_Analysis) {
        self.init(practiceArea: message.practiceArea, newEnquiry: message.newEnquiry, urgency: message.urgency,
                  callbackRequested: message.callbackRequested, summary: message.summary, engine: message.engine)
    }

    var proto: Calltrace_Transcript_V1_Analysis {
        .with {
            $0.practiceArea = practiceArea; $0.newEnquiry = newEnquiry; $0.urgency = urgency
            $0.callbackRequested = callbackRequested; $0.summary = summary; $0.engine = engine
        }
    }

    init(sealedForm plain: Data) throws {
        self.init(try Calltrace_Transcript_V1_Analysis(serializedBytes: plain))
    }

    func sealedForm() throws -> Data { try proto.serializedBytes() }
}
