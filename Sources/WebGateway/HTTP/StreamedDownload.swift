import AsyncAlgorithms
import Foundation
import HTTPTypes
import Hummingbird

/// A service's stream handed to the browser without holding it: the read runs in a task of its
/// own and hands its pieces over one at a time, each when the browser has taken the last
/// (backpressure: a slow browser slows the read, never fills memory). Its first piece, or its
/// refusal (a role without the permission, a bundle expired a moment ago), is known before the
/// answer's status is written, so a refusal becomes a 403 or 404 page, never a 200 that breaks off.
/// The player's byte ranges (`AudioResponse`) and bundle downloads (`BundlePages`) use it.
enum StreamedDownload {
    /// - Parameters:
    ///   - contentLength: the bytes `read` will write, when known.
    ///   - read: streams the body, handing each piece to `write`.
    static func response(status: HTTPResponse.Status = .ok, headers: HTTPFields, contentLength: Int?,
                         read: @escaping @Sendable (_ write: (Data) async throws -> Void) async throws -> Void) async throws -> Response {
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
        let body = ResponseBody(contentLength: contentLength) { writer in
            defer { reading.cancel() }
            if let first { try await writer.write(ByteBuffer(data: first)) }
            for try await piece in pieces { try await writer.write(ByteBuffer(data: piece)) }
            try await writer.finish(nil)
        }
        return Response(status: status, headers: headers, body: body)
    }

    /// `attachment; filename="…"`: saved, never shown in the browser; the name kept to safe characters.
    static func attachment(_ filename: String) -> String {
        let safe = String(filename.unicodeScalars.map { CharacterSet.alphanumerics.contains($0) || "-_.".unicodeScalars.contains($0) ? Character($0) : "-" })
        return "attachment; filename=\"\(safe)\""
    }
}
