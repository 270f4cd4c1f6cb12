import CallTraceOutbound
import Foundation

/// A call Twilio places (`POST Calls.json`): a returned call rings the member of staff first
/// (`to`), and `instructions` then say what they hear and whom Twilio dials next.
public struct OutboundCall: Sendable, Equatable {
    public enum Instructions: Sendable, Equatable {
        /// `Url` (and `Method`): Twilio fetches TwiML there once `to` answers.
        case url(String, method: String = "POST")
        /// `Twiml`: the TwiML itself, for a call that needs no webhook.
        case twiml(TwiML)
    }

    /// `StatusCallbackEvent`'s values.
    public enum StatusEvent: String, Sendable, Equatable { case initiated, ringing, answered, completed }

    public var to: String
    /// A number of the account (the firm's tracking number) or a verified caller ID.
    public var from: String
    public var instructions: Instructions
    public var statusCallback: String?
    public var statusCallbackEvents: [StatusEvent]
    /// `Timeout`: seconds to ring `to`; Twilio's default is 60.
    public var timeoutSeconds: Int?
    /// `Record`: the whole call from when `to` answers. Nil: not sent (Twilio's default, false).
    /// Returned calls record through their TwiML's `<Dial record=…>` instead, dual-channel.
    public var record: Bool?
    public var recordingChannels: String?
    public var recordingStatusCallback: String?
    public var recordingStatusCallbackEvents: [TwiML.RecordingEvent]

    public init(to: String, from: String, instructions: Instructions, statusCallback: String? = nil,
                statusCallbackEvents: [StatusEvent] = [], timeoutSeconds: Int? = nil, record: Bool? = nil,
                recordingChannels: String? = nil, recordingStatusCallback: String? = nil,
                recordingStatusCallbackEvents: [TwiML.RecordingEvent] = []) {
        self.to = to
        self.from = from
        self.instructions = instructions
        self.statusCallback = statusCallback
        self.statusCallbackEvents = statusCallbackEvents
        self.timeoutSeconds = timeoutSeconds
        self.record = record
        self.recordingChannels = recordingChannels
        self.recordingStatusCallback = recordingStatusCallback
        self.recordingStatusCallbackEvents = recordingStatusCallbackEvents
    }

    /// The request's form, with Twilio's parameter names; repeated names for the event lists.
    var form: FormParameters {
        var form: FormParameters = ["To": to, "From": from]
        switch instructions {
        case .url(let url, let method):
            form.append("Url", url)
            form.append("Method", method)
        case .twiml(let twiml):
            form.append("Twiml", twiml.rendered)
        }
        form.append("StatusCallback", statusCallback)
        for event in statusCallbackEvents { form.append("StatusCallbackEvent", event.rawValue) }
        if statusCallback != nil { form.append("StatusCallbackMethod", "POST") }
        form.append("Timeout", timeoutSeconds.map(String.init))
        form.append("Record", record.map { $0 ? "true" : "false" })
        form.append("RecordingChannels", recordingChannels)
        form.append("RecordingStatusCallback", recordingStatusCallback)
        for event in recordingStatusCallbackEvents { form.append("RecordingStatusCallbackEvent", event.rawValue) }
        return form
    }
}

extension TwilioClient {
    /// Places a call (`POST Calls.json`, 201); Twilio answers at once with the call `queued`,
    /// and its progress arrives at `statusCallback`.
    public func placeCall(_ call: OutboundCall) async throws(TwilioError) -> CallResource {
        let operation = "placing a call"
        let response = try await send("POST", "\(accountPath)/Calls.json", form: call.form, operation: operation)
        return try decode(CallResource.self, from: response, operation: operation)
    }
}
