import Foundation
import HTTPTypes
import Hummingbird

/// A recording streamed to the player: the browser's `Range` header becomes one ranged read of
/// the service (`PlayRecording` or `OpenShareLink` with offset and length), so seeking works
/// without the gateway holding the file; nothing of it is cached by the browser.
///
/// The read is a `StreamedDownload`: its first piece (or its refusal: a role without
/// recordings.play, a link just revoked) is known before the answer's status is written, so a
/// refusal is a 403 or 404 page, never a 200 that breaks off.
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
        return try await StreamedDownload.response(status: status, headers: headers, contentLength: Int(range.length)) { write in
            try await read(range.offset, range.length, write)
        }
    }
}
