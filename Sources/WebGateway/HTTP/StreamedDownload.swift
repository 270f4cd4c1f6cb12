import AsyncAlgorithms
import Foundation
import HTTPTypes
import Hummingbird

/// A service's server stream handed to the browser as it comes, never held whole: the read runs
/// in a task of its own and passes its pieces over one at a time, each when the browser has taken
/// the last (backpressure through `AsyncThrowingChannel`). The first piece — or the refusal, when
/// the service says no — is awaited before the status is written, so a refusal is a 403 or 404
/// page, never a 200 that breaks off. `AudioResponse` (ranged plays) and the downloads (the audit
/// trail, reports, bundles) answer through it.
enum StreamedDownload {
    /// The body of `read`'s pieces; `contentLength` when known (else chunked).
    static func body(contentLength: Int? = nil,
                     read: @escaping @Sendable (_ write: (Data) async throws -> Void) async throws -> Void) async throws -> ResponseBody {
        let pieces = AsyncThrowingChannel<Data, any Error>()
        let reading = ReadingTask(Task {
            do {
                try await read { piece in
                    await pieces.send(piece)
                    try Task.checkCancellation()  // the browser went away: stop reading
                }
                pieces.finish()
            } catch {
                pieces.fail(error)
            }
        })
        var iterator = pieces.makeAsyncIterator()
        let first = try await iterator.next()  // a refusal throws here: the read ends with `reading`
        return ResponseBody(contentLength: contentLength) { writer in
            var written = 0
            if let first {
                try await writer.write(ByteBuffer(data: first))
                written += first.count
            }
            for try await piece in pieces {
                try await writer.write(ByteBuffer(data: piece))
                written += piece.count
            }
            // The service sent less than the length said (the recording changed meanwhile): end
            // the connection rather than let the browser wait for bytes that will not come.
            if let contentLength, written != contentLength { throw ShortRead() }
            try await writer.finish(nil)
            withExtendedLifetime(reading) {}
        }
    }

    struct ShortRead: Error {}

    /// The service's read, cancelled when the answer that holds it goes: after the body is
    /// written, when the browser leaves mid-body, and when the answer's head could not even be
    /// written (the body never runs) — so no read is left waiting for a reader.
    final class ReadingTask: Sendable {
        private let task: Task<Void, Never>
        init(_ task: Task<Void, Never>) { self.task = task }
        deinit { task.cancel() }
    }

    /// An answer of `read`'s pieces with `headers`.
    static func response(status: HTTPResponse.Status = .ok, headers: HTTPFields, contentLength: Int?,
                         read: @escaping @Sendable (_ write: (Data) async throws -> Void) async throws -> Void) async throws -> Response {
        Response(status: status, headers: headers, body: try await body(contentLength: contentLength, read: read))
    }

    /// A file download (`Content-Disposition: attachment`), never stored by the browser.
    static func attachment(filename: String, type: String,
                           read: @escaping @Sendable (_ write: (Data) async throws -> Void) async throws -> Void) async throws -> Response {
        try await response(headers: headers(filename: filename, type: type), contentLength: nil, read: read)
    }

    /// The headers of a download named `filename`.
    static func headers(filename: String, type: String) -> HTTPFields {
        [.contentType: type, .contentDisposition: attachment(filename), .cacheControl: "no-store"]
    }

    /// `attachment; filename="…"`: saved, never shown in the browser; the name kept to letters,
    /// digits, `-`, `_` and `.` (anything else becomes `-`).
    static func attachment(_ filename: String) -> String {
        let safe = String(filename.unicodeScalars.map { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "-_.".unicodeScalars.contains($0)) ? Character($0) : "-" })
        return "attachment; filename=\"\(safe)\""
    }
}
