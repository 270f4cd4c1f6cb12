public import CallTraceOutbound
import Foundation

/// What deleting a recording at Twilio found.
public enum RecordingDeletion: Sendable, Equatable {
    /// 204: it was there and is gone.
    case deleted
    /// 404: it was already gone (an earlier attempt's delete went through, or Twilio's own
    /// retention removed it). For the gateway's job this is success too, said distinctly.
    case alreadyGone
}

extension TwilioClient {
    /// Streams a recording's WAV (`GET Recordings/RE….wav`) to `sink` as it arrives, never whole
    /// in memory, and returns how many bytes it passed on. Only a 200 answer's body reaches `sink`.
    ///
    /// - Throws: `TwilioError` (`.notFound` when the recording is gone), or whatever `sink` threw,
    ///   unchanged: the transfer stops there.
    public func fetchRecordingWAV(sid: String, into sink: any HTTPSResponseSink) async throws -> Int {
        let operation = "fetching a recording"
        let relay = RecordingRelay(sink: sink)
        let response: HTTPSResponse
        do {
            response = try await send("GET", "\(accountPath)/Recordings/\(try checked(sid, "RE", operation: operation)).wav",
                                      operation: operation, sink: relay)
        } catch {
            throw relay.sinkFailure ?? error
        }
        guard response.status == 200 else { throw TwilioError.answer(status: response.status, body: relay.errorBody, operation: operation) }
        return relay.relayed
    }

    /// Deletes a recording (`DELETE Recordings/RE….json`): 204 `.deleted`, 404 `.alreadyGone`.
    public func deleteRecording(sid: String) async throws(TwilioError) -> RecordingDeletion {
        let operation = "deleting a recording"
        let response = try await send("DELETE", "\(accountPath)/Recordings/\(try checked(sid, "RE", operation: operation)).json",
                                      operation: operation)
        switch response.status {
        case 204: return .deleted
        case 404: return .alreadyGone
        default: throw TwilioError.answer(status: response.status, body: response.body, operation: operation)
        }
    }
}

/// Passes a 200 answer's body to the caller's sink; keeps (the start of) any other answer's
/// body, Twilio's error JSON, for the error. Called on the transfer's thread only.
private final class RecordingRelay: HTTPSResponseSink, @unchecked Sendable {
    let sink: any HTTPSResponseSink
    var relayed = 0
    var errorBody = Data()
    var sinkFailure: (any Error)?

    init(sink: any HTTPSResponseSink) { self.sink = sink }

    func received(_ data: Data, status: Int) throws {
        guard status == 200 else {
            if errorBody.count < 64 << 10 { errorBody.append(data.prefix((64 << 10) - errorBody.count)) }
            return
        }
        do {
            try sink.received(data, status: status)
        } catch {
            sinkFailure = error
            throw error
        }
        relayed += data.count
    }
}
