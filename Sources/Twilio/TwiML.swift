/// A TwiML answer to a voice webhook: a `<Response>` of the verbs the telephony gateway uses,
/// rendered as `application/xml` text with every attribute and text escaped.
///
/// Attributes are written in a fixed order (the order of each struct's properties) and only
/// when set, so an answer's text is stable and tests can compare it whole.
public struct TwiML: Sendable, Equatable {
    public static let contentType = "application/xml"

    public var verbs: [Verb]

    public init(_ verbs: [Verb] = []) { self.verbs = verbs }

    public enum Verb: Sendable, Equatable {
        case say(Say)
        case play(Play)
        case pause(seconds: Int)
        case dial(Dial)
        case record(Record)
        case reject(RejectReason)
        case hangup
        case redirect(url: String, method: HTTPMethod = .post)
    }

    public enum HTTPMethod: String, Sendable, Equatable { case get = "GET", post = "POST" }

    /// What the caller hears on `<Reject>`; the call ends `busy` or `no-answer` respectively.
    public enum RejectReason: String, Sendable, Equatable { case rejected, busy }

    /// Text spoken by Twilio's text-to-speech.
    public struct Say: Sendable, Equatable {
        public var text: String
        /// E.g. `Polly.Amy` (a British English voice); nil: Twilio's default.
        public var voice: String?
        /// E.g. `en-GB`; nil: Twilio's default.
        public var language: String?
        public var loop: Int?

        public init(_ text: String, voice: String? = nil, language: String? = nil, loop: Int? = nil) {
            self.text = text
            self.voice = voice
            self.language = language
            self.loop = loop
        }
    }

    /// An audio file played from a URL.
    public struct Play: Sendable, Equatable {
        public var url: String
        public var loop: Int?

        public init(_ url: String, loop: Int? = nil) {
            self.url = url
            self.loop = loop
        }
    }

    /// `recordingStatusCallbackEvent`'s values.
    public enum RecordingEvent: String, Sendable, Equatable { case inProgress = "in-progress", completed, absent }

    /// `<Dial>`'s `record`: both legs in one file, the caller on one channel and the answerer on the other.
    public enum DialRecording: String, Sendable, Equatable {
        case recordFromAnswerDual = "record-from-answer-dual"
        case recordFromRingingDual = "record-from-ringing-dual"
        case recordFromAnswer = "record-from-answer"
        case doNotRecord = "do-not-record"
    }

    /// Connects the caller to a number.
    public struct Dial: Sendable, Equatable {
        /// Where Twilio POSTs `DialCallStatus` when the dialled leg ends; its TwiML continues the
        /// call. Without one, the verbs after `<Dial>` continue it.
        public var action: String?
        public var method: HTTPMethod?
        /// The number shown to whoever answers (the caller's, passed through, or a tracking number).
        public var callerId: String?
        /// Seconds to ring before `no-answer`; Twilio's default is 30.
        public var timeoutSeconds: Int?
        public var record: DialRecording?
        public var recordingStatusCallback: String?
        public var recordingStatusCallbackMethod: HTTPMethod?
        public var recordingStatusCallbackEvent: [RecordingEvent]
        /// Whether the caller hears ringing until the dialled leg answers; nil: Twilio's default (false).
        public var answerOnBridge: Bool?
        public var numbers: [Number]

        public init(_ numbers: [Number], action: String? = nil, method: HTTPMethod? = nil, callerId: String? = nil,
                    timeoutSeconds: Int? = nil, record: DialRecording? = nil, recordingStatusCallback: String? = nil,
                    recordingStatusCallbackMethod: HTTPMethod? = nil, recordingStatusCallbackEvent: [RecordingEvent] = [],
                    answerOnBridge: Bool? = nil) {
            self.numbers = numbers
            self.action = action
            self.method = method
            self.callerId = callerId
            self.timeoutSeconds = timeoutSeconds
            self.record = record
            self.recordingStatusCallback = recordingStatusCallback
            self.recordingStatusCallbackMethod = recordingStatusCallbackMethod
            self.recordingStatusCallbackEvent = recordingStatusCallbackEvent
            self.answerOnBridge = answerOnBridge
        }
    }

    /// A number `<Dial>` rings. `url`'s TwiML is played to whoever answers before the two are
    /// connected (the whisper: "Google Ads enquiry").
    public struct Number: Sendable, Equatable {
        public var number: String
        public var url: String?
        public var method: HTTPMethod?

        public init(_ number: String, url: String? = nil, method: HTTPMethod? = nil) {
            self.number = number
            self.url = url
            self.method = method
        }
    }

    /// Records the caller (voicemail). Twilio POSTs `RecordingUrl` to `action` when it ends.
    public struct Record: Sendable, Equatable {
        public var action: String?
        public var method: HTTPMethod?
        /// Seconds of silence that end the recording; Twilio's default is 5.
        public var timeoutSeconds: Int?
        /// Twilio's default is 3600.
        public var maxLengthSeconds: Int?
        public var playBeep: Bool?
        public var finishOnKey: String?
        public var recordingStatusCallback: String?
        public var recordingStatusCallbackMethod: HTTPMethod?
        public var recordingStatusCallbackEvent: [RecordingEvent]

        public init(action: String? = nil, method: HTTPMethod? = nil, timeoutSeconds: Int? = nil, maxLengthSeconds: Int? = nil,
                    playBeep: Bool? = nil, finishOnKey: String? = nil, recordingStatusCallback: String? = nil,
                    recordingStatusCallbackMethod: HTTPMethod? = nil, recordingStatusCallbackEvent: [RecordingEvent] = []) {
            self.action = action
            self.method = method
            self.timeoutSeconds = timeoutSeconds
            self.maxLengthSeconds = maxLengthSeconds
            self.playBeep = playBeep
            self.finishOnKey = finishOnKey
            self.recordingStatusCallback = recordingStatusCallback
            self.recordingStatusCallbackMethod = recordingStatusCallbackMethod
            self.recordingStatusCallbackEvent = recordingStatusCallbackEvent
        }
    }

    /// The document's text, with the XML declaration.
    public var rendered: String {
        var out = #"<?xml version="1.0" encoding="UTF-8"?>"#
        guard !verbs.isEmpty else { return out + "<Response/>" }
        out += "<Response>"
        for verb in verbs { out += Self.render(verb) }
        return out + "</Response>"
    }

    private static func render(_ verb: Verb) -> String {
        switch verb {
        case .say(let say):
            element("Say", [("voice", say.voice), ("language", say.language), ("loop", say.loop.map(String.init))], text: say.text)
        case .play(let play):
            element("Play", [("loop", play.loop.map(String.init))], text: play.url)
        case .pause(let seconds):
            element("Pause", [("length", String(seconds))])
        case .dial(let dial):
            element("Dial", [
                ("action", dial.action), ("method", dial.method?.rawValue), ("callerId", dial.callerId),
                ("timeout", dial.timeoutSeconds.map(String.init)), ("record", dial.record?.rawValue),
                ("recordingStatusCallback", dial.recordingStatusCallback),
                ("recordingStatusCallbackMethod", dial.recordingStatusCallbackMethod?.rawValue),
                ("recordingStatusCallbackEvent", events(dial.recordingStatusCallbackEvent)),
                ("answerOnBridge", dial.answerOnBridge.map { $0 ? "true" : "false" }),
            ], children: dial.numbers.map { element("Number", [("url", $0.url), ("method", $0.method?.rawValue)], text: $0.number) })
        case .record(let record):
            element("Record", [
                ("action", record.action), ("method", record.method?.rawValue), ("timeout", record.timeoutSeconds.map(String.init)),
                ("maxLength", record.maxLengthSeconds.map(String.init)), ("playBeep", record.playBeep.map { $0 ? "true" : "false" }),
                ("finishOnKey", record.finishOnKey), ("recordingStatusCallback", record.recordingStatusCallback),
                ("recordingStatusCallbackMethod", record.recordingStatusCallbackMethod?.rawValue),
                ("recordingStatusCallbackEvent", events(record.recordingStatusCallbackEvent)),
            ])
        case .reject(let reason):
            element("Reject", [("reason", reason.rawValue)])
        case .hangup:
            element("Hangup", [])
        case .redirect(let url, let method):
            element("Redirect", [("method", method.rawValue)], text: url)
        }
    }

    private static func events(_ events: [RecordingEvent]) -> String? {
        events.isEmpty ? nil : events.map(\.rawValue).joined(separator: " ")
    }

    private static func element(_ name: String, _ attributes: [(String, String?)], text: String? = nil, children: [String] = []) -> String {
        var out = "<\(name)"
        for case let (attribute, value?) in attributes { out += " \(attribute)=\"\(escape(value, attribute: true))\"" }
        let content = (text.map { escape($0, attribute: false) } ?? "") + children.joined()
        return content.isEmpty ? out + "/>" : out + ">\(content)</\(name)>"
    }

    /// XML 1.0 escaping. Characters XML 1.0 cannot carry at all (most C0 controls, lone
    /// surrogates cannot occur in a Swift string) are dropped rather than written.
    static func escape(_ text: String, attribute: Bool) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"" where attribute: out += "&quot;"
            case "'" where attribute: out += "&apos;"
            case "\t", "\n", "\r":
                // Inside an attribute a literal newline or tab would be normalised to a space.
                out += attribute ? "&#\(scalar.value);" : String(scalar)
            case "\u{0}"..."\u{1F}", "\u{FFFE}", "\u{FFFF}": continue
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
