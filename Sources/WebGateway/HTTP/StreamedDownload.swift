import AsyncAlgorithms
import Foundation
import HTTPTypes
import Hummingbird

/// A service's server stream handed to the browser as it comes, never held whole: the read runs
/// in a task of its own and passes its pieces over one at a time, each when the browser has taken
/// the last (backpressure through `AsyncThrowingChannel`). The first piece — or the refusal, when
/// the service says no — is awaited before the status is written, so a refusal is a 403 or 404
/// page, never a 200 that breaks off. `AudioResponse` (ranged plays) and the downloads (the audit
/// trail, reports) answer through it.
enum StreamedDownload {
    /// The body of `read`'s pieces; `contentLength` when known (else chunked).
    static func body(contentLength: Int? = nil,
                     read: @escaping @Sendable (_ write: (Data) async throws -> Void) async throws -> Void) async throws -> ResponseBody {
        let pieces = AsyncThrowingChannel<Data, any Error>()
        let reading = Task {
            do {
                try await read { piece in
                    await pieces.send(piece)
                    try Task.checkCancellation()  // the browser went away: stop reading
                }
                pieces.finish()
            } catch {
                pieces.fail(error)
            }
        }
        let first: Data?
        do {
            var iterator = pieces.makeAsyncIterator()
            first = try await iterator.next()
        } catch {
            reading.cancel()
            throw error
        }
        return ResponseBody(contentLength: contentLength) { writer in
            defer { reading.cancel() }
            if let first { try await writer.write(ByteBuffer(data: first)) }
            for try await piece in pieces { try await writer.write(ByteBuffer(data: piece)) }
            try await writer.finish(nil)
        }
    }

    /// A file download (`Content-Disposition: attachment`), never stored by the browser.
    static func attachment(filename: String, type: String,
                           read: @escaping @Sendable (_ write: (Data) async throws -> Void) async throws -> Void) async throws -> Response {
        let body = try await body(read: read)
        return Response(status: .ok, headers: headers(filename: filename, type: type), body: body)
    }

    /// The headers of a download named `filename` (letters, digits, `-`, `_` and `.` only).
    static func headers(filename: String, type: String) -> HTTPFields {
        let safe = String(filename.unicodeScalars.filter { CharacterSet.alphanumerics.contains($0) && $0.isASCII || "-_.".unicodeScalars.contains($0) })
        return [.contentType: type, .contentDisposition: "attachment; filename=\"\(safe)\"", .cacheControl: "no-store"]
    }
}
