import CallTraceProto
import CallTraceRPC
import Hummingbird

extension Backend {
    /// A recording to a player (the web app's or an API client's): its size and type from
    /// `GetRecording`, then the `Range` header as one ranged `PlayRecording` under the person's
    /// token, so media checks and audits every play.
    func play(recording id: String, org: String, range: String?, caller: Caller, reason: String) async throws -> Response {
        let recording = try await recordings.getRecording(.with {
            $0.orgID = org
            $0.recordingID = id
        }, options: caller.options).recording
        let recordings = self.recordings
        // The stream may outlast a page's ten seconds (a slow listener's range).
        let options = caller.streamOptions
        return try await AudioResponse.make(range: range, size: recording.sizeBytes, mimeType: Formats.mimeType(recording.format)) { offset, length, write in
            try await recordings.playRecording(.with {
                $0.orgID = org
                $0.recordingID = id
                $0.offset = offset
                $0.length = length
                $0.reason = reason
            }, options: options) { stream in
                for try await piece in stream { try await write(piece.data) }
            }
        }
    }
}
