import AsyncAlgorithms
import Foundation
import HTTPTypes
import Hummingbird

/// A recording streamed to the player: the browser's `Range` header becomes one ranged read of
/// the service (`PlayRecording` or `OpenShareLink` with offset and length), so seeking works
/// without the gateway holding the file; nothing of it is cached by the browser.
///
/// The read runs in a task of its own and hands its pieces over one at a time, each when the
/// browser has taken the last: its first piece (or its refusal: a role without recordings.play,
/// a link just revoked) is known before the answer's status is written, so a refusal is a 403 or
/// 404 page, never a 200 that breaks off.
enum AudioResponse {
    /// - Parameters:
    ///   - size: the recording's size in bytes.
    ///   - read: streams `length` bytes from `offset`, handing each piece to `write`.
    static func make(range header: String?, size: UInt64, mimeType: String,
                     read: @escaping @Sendable (_ offset: UInt64, _ length: UInt64, _ write: (Data) async throws -> Void) async throws -> Void)
        async throws -> Response {
        var headers: HTTPFields = [.contentType: mimeType, .acceptRanges: "bytes"]
        let range: ByteRange
        let status: HTTPResponse.Status
        switch ByteRange.parse(header, size: size) {
        case .unsatisfiable:
            headers[.contentRange] = "bytes */\(size)"
            return Response(status: .rangeNotSatisfiable, headers: headers)
        case .whole:
            guard size > 0 else {
                headers[.contentLength] = "0"
                return Response(status: .ok, headers: headers)
            }
            range = ByteRange(offset: 0, length: size)
            status = .ok
        case .partial(let partial):
            range = partial
            status = .partialContent
            headers[.contentRange] = "bytes \(range.offset)-\(range.last)/\(size)"
        }
        let pieces = AsyncThrowingChannel<Data, any Error>()
        let reading = ReadingTask(Task {
            do {
                try await read(range.offset, range.length) { piece in
                    await pieces.send(piece)
                    try Task.checkCancellation()  // the browser went away: stop reading
                }
                pieces.finish()
            } catch {
                pieces.fail(error)
            }
        })
        var iterator = pieces.makeAsyncIterator()
        let first = try await iterator.next()  // a refusal throws here: the reading task ends with `reading`
        let body = ResponseBody(contentLength: Int(range.length)) { writer in
            var written = 0
            if let first {
                try await writer.write(ByteBuffer(data: first))
                written += first.count
            }
            for try await piece in pieces {
                try await writer.write(ByteBuffer(data: piece))
                written += piece.count
            }
            // The service sent less than the range said (the recording changed meanwhile): end
            // the connection rather than let the browser wait for bytes that will not come.
            guard written == Int(range.length) else { throw AudioResponseError.shortRead }
            try await writer.finish(nil)
            withExtendedLifetime(reading) {}
        }
        return Response(status: status, headers: headers, body: body)
    }

    enum AudioResponseError: Error { case shortRead }

    /// The service's read, cancelled when the answer that holds it goes: after the body is
    /// written, when the browser leaves mid-body, and when the answer's head could not even be
    /// written (the body never runs) — so no read is left waiting for a reader.
    final class ReadingTask: Sendable {
        private let task: Task<Void, Never>
        init(_ task: Task<Void, Never>) { self.task = task }
        deinit { task.cancel() }
    }
}
