import Foundation
import Hummingbird
import NIOCore

/// What the website tag sends, read strictly: a JSON object of known fields only, each a string
/// (click ids an object of strings), each bounded, the whole body at most `maxBody` bytes.
enum TagRequests {
    static let maxBody = 4 * 1024

    /// After consent: the visitor (from the tag's storage), the visit when the tag has one, and
    /// where the visitor came from.
    struct Reserve: Sendable {
        var visitorID = "", visitID = ""
        var landingPath = "", referrerHost = ""
        var utmSource = "", utmMedium = "", utmCampaign = "", utmTerm = "", utmContent = ""
        var clickIDs: [String: String] = [:]
    }

    static func reserve(_ request: Request) async throws -> Reserve {
        let object = try await object(request)
        var reserve = Reserve()
        let fields: [String: WritableKeyPath<Reserve, String>] = [
            "visitorId": \.visitorID, "visitId": \.visitID, "landingPath": \.landingPath, "referrerHost": \.referrerHost,
            "utmSource": \.utmSource, "utmMedium": \.utmMedium, "utmCampaign": \.utmCampaign, "utmTerm": \.utmTerm, "utmContent": \.utmContent,
        ]
        for (name, value) in object {
            if let field = fields[name] {
                reserve[keyPath: field] = try string(value, name)
            } else if name == "clickIds" {
                reserve.clickIDs = try clickIDs(value)
            } else {
                throw TagFailure.invalid("\(quoted(name)) is not a field of this request (visitorId, visitId, landingPath, referrerHost, utmSource, utmMedium, utmCampaign, utmTerm, utmContent, clickIds).")
            }
        }
        return reserve
    }

    /// The visit whose number is kept.
    static func renew(_ request: Request) async throws -> String {
        let object = try await object(request)
        if let name = object.keys.first(where: { $0 != "visitId" }) {
            throw TagFailure.invalid("\(quoted(name)) is not a field of this request (visitId).")
        }
        guard let visit = object["visitId"] else { throw TagFailure.invalid("visitId is required.") }
        let visitID = try string(visit, "visitId")
        guard !visitID.isEmpty else { throw TagFailure.invalid("visitId is required.") }
        return visitID
    }

    /// The body as a JSON object: `application/json`, or `text/plain` (what the tag sends, so
    /// the browser needs no preflight).
    private static func object(_ request: Request) async throws -> [String: Any] {
        let type = request.headers[.contentType]?.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        guard type == "application/json" || type == "text/plain" else {
            throw TagFailure(status: .unsupportedMediaType, code: "unsupported_media_type", message: "Send the body as JSON (application/json or text/plain).")
        }
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: maxBody)
        } catch let error where error is NIOTooManyBytesError || (error as? HTTPError)?.status == .contentTooLarge {
            throw TagFailure(status: .contentTooLarge, code: "body_too_large", message: "The body is larger than \(maxBody) bytes.")
        }
        guard let parsed = try? JSONSerialization.jsonObject(with: Data(buffer: body)), let object = parsed as? [String: Any] else {
            throw TagFailure.invalid("The body is not a JSON object.")
        }
        return object
    }

    private static func string(_ value: Any, _ name: String, max: Int = 500) throws -> String {
        guard let text = value as? String, !(value is NSNumber) else { throw TagFailure.invalid("\(name) is a string.") }
        guard text.count <= max else { throw TagFailure.invalid("\(name) is at most \(max) characters.") }
        return text
    }

    private static func clickIDs(_ value: Any) throws -> [String: String] {
        guard let object = value as? [String: Any], object.count <= 10 else {
            throw TagFailure.invalid("clickIds is an object of at most 10 click ids by kind ({\"gclid\": \"…\"}).")
        }
        return try object.mapValues { try string($0, "clickIds", max: 200) }.filter { $0.key.count <= 20 }
    }

    /// A field name as the caller sent it, bounded (never a value).
    private static func quoted(_ name: String) -> String { "\"" + String(name.prefix(40)) + "\"" }
}
