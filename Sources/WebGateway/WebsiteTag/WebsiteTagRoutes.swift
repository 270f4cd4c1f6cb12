import CallTraceKeys
import CallTraceProto
import CallTraceRPC
import Foundation
import HTTPTypes
import Hummingbird

/// The website tag (issue 32): `/dni.js`, the script a firm's developer pastes into the firm's
/// site, and the public JSON it asks, `/dni/v1/tag`, `/reserve` and `/renew` (`?key=ws_…`), each
/// passed to transcript's `VisitorService` with the page's `Origin`. Transcript decides by the key
/// and the origin; only when it accepted them does the answer carry CORS headers for exactly that
/// origin, so an unknown key and a foreign origin are the same unreadable 404. No session, no
/// form token: these are cross-origin by design, and nothing here acts for a person.
struct WebsiteTagRoutes: Sendable {
    let app: WebApp
    static let paths = ["/dni/v1/tag", "/dni/v1/reserve", "/dni/v1/renew"]

    func register(on router: Router<WebContext>) {
        router.get(RouterPath(TagGuard.script)) { request, _ in try app.tagScript.response(ifNoneMatch: request.headers[.ifNoneMatch]) }
        router.get("/dni/v1/tag") { request, context in try await tag(request, context) }
        router.post("/dni/v1/reserve") { request, context in try await reserve(request, context) }
        router.post("/dni/v1/renew") { request, context in try await renew(request, context) }
        for path in Self.paths {
            router.on(RouterPath(path), method: .options) { request, context in try await preflight(request, context) }
        }
    }

    /// Before consent: what to replace, and with what.
    private func tag(_ request: Request, _ context: WebContext) async throws -> Response {
        let asked = try admit(request, context)
        let tag = try await app.backend.visitors.getWebsiteTag(.with { $0.siteKey = asked.key; $0.origin = asked.origin },
                                                                options: context.caller.options)
        return TagAnswer.json(Tag(targets: tag.targetNumbers, sourceNumber: tag.sourceNumber, clickIds: tag.clickIds.compactMap(\.tagName),
                                  holdSeconds: Int(tag.holdSeconds)), origin: asked.origin)
    }

    /// After consent: a visit and a pool number held for it (a visit the tag has already is renewed).
    private func reserve(_ request: Request, _ context: WebContext) async throws -> Response {
        let body = try await TagRequests.reserve(request)
        let asked = try admit(request, context, newVisit: body.visitID.isEmpty)
        let reserved = try await visit(body.visitID, asked, context) {
            try await app.backend.visitors.reserveNumber(.with {
                $0.siteKey = asked.key; $0.origin = asked.origin; $0.visitorID = body.visitorID; $0.visitID = body.visitID
                $0.landingPath = body.landingPath; $0.referrerHost = body.referrerHost
                $0.utmSource = body.utmSource; $0.utmMedium = body.utmMedium; $0.utmCampaign = body.utmCampaign; $0.utmTerm = body.utmTerm
                $0.utmContent = body.utmContent; $0.clickIds = body.clickIDs
            }, options: context.caller.options)
        }
        return TagAnswer.json(Reserved(number: reserved.number, visitId: reserved.visitID, visitorId: reserved.visitorID,
                                       holdSeconds: Int(reserved.holdSeconds), sourceNumber: reserved.sourceNumber), origin: asked.origin)
    }

    /// While the visitor stays: the visit's number kept (or another, when it lapsed).
    private func renew(_ request: Request, _ context: WebContext) async throws -> Response {
        let visitID = try await TagRequests.renew(request)
        let asked = try admit(request, context)
        let renewed = try await visit(visitID, asked, context) {
            try await app.backend.visitors.renewReservation(.with { $0.siteKey = asked.key; $0.origin = asked.origin; $0.visitID = visitID },
                                                            options: context.caller.options)
        }
        return TagAnswer.json(Renewed(number: renewed.number, changed: renewed.changed, holdSeconds: Int(renewed.holdSeconds)),
                              origin: asked.origin)
    }

    /// `call` about the tag's visit: when transcript does not find it (gone with retention, or
    /// not this website's), the page may read that much, and reserve afresh, only if its key and
    /// origin are good; else the unreadable 404 of any refusal.
    private func visit<Answer>(_ visitID: String, _ asked: Asked, _ context: WebContext, _ call: () async throws -> Answer) async throws -> Answer {
        do {
            return try await call()
        } catch let error as RPCError where error.code == .notFound && !visitID.isEmpty {
            try await accepted(asked, context)
            var failure = TagFailure(status: .notFound, code: "visit_not_found", message: "This visit is not this website's, or has ended.")
            failure.allowedOrigin = asked.origin
            throw failure
        }
    }

    /// CORS preflight: allowed for the key's own origins only.
    private func preflight(_ request: Request, _ context: WebContext) async throws -> Response {
        let asked = try admit(request, context)
        try await accepted(asked, context)
        return Response(status: .noContent, headers: [
            .accessControlAllowOrigin: asked.origin, .accessControlAllowMethods: "GET, POST",
            .accessControlAllowHeaders: "Content-Type", .accessControlMaxAge: "600", .vary: "Origin",
        ])
    }

    /// Throws not-found unless transcript knows the key and the origin is one of its website's.
    private func accepted(_ asked: Asked, _ context: WebContext) async throws {
        _ = try await app.backend.visitors.getWebsiteTag(.with { $0.siteKey = asked.key; $0.origin = asked.origin },
                                                         options: context.caller.options)
    }

    private struct Asked {
        let key: String
        let origin: String
    }

    /// The key and the page's origin, once both are present and within the limits: per address,
    /// per website, and (`newVisit`) new visits per address.
    private func admit(_ request: Request, _ context: WebContext, newVisit: Bool = false) throws -> Asked {
        guard let origin = request.headers[.origin], (1...200).contains(origin.count) else {
            throw TagFailure.invalid("The Origin header is required: the tag is asked from a page, by the browser.")
        }
        guard let key = request.uri.queryParameters.get("key"), !key.isEmpty else {
            throw TagFailure.invalid("The website's key is required: ?key=ws_….")
        }
        guard key.count <= 64, key.hasPrefix("ws_") else { throw TagFailure.notFound }
        let address = "address:" + (context.clientAddress ?? "unknown")
        var subjects = [(key: address, limit: TagRateLimits.perAddress), (key: "website:" + key, limit: TagRateLimits.perWebsite)]
        if newVisit { subjects.append((key: "visits:" + address, limit: TagRateLimits.newVisitsPerAddress)) }
        if let seconds = app.tagLimits.admit(subjects) { throw TagFailure.tooMany(retryAfter: seconds) }
        return Asked(key: key, origin: origin)
    }

    struct Tag: Encodable {
        let targets: [String]
        let sourceNumber: String
        let clickIds: [String]
        let holdSeconds: Int
    }

    struct Reserved: Encodable {
        let number: String
        let visitId: String
        let visitorId: String
        let holdSeconds: Int
        let sourceNumber: Bool
    }

    struct Renewed: Encodable {
        let number: String
        let changed: Bool
        let holdSeconds: Int
    }
}

/// `/dni.js`: read once with the static files, cached by browsers for five minutes and then
/// revalidated by its ETag (a digest of its bytes), loadable by any site.
struct TagScript: Sendable {
    static let name = "dni.js"
    let body: ByteBuffer
    let eTag: String

    init(_ body: ByteBuffer) {
        self.body = body
        let digest = MessageSignature.hmacSHA256(key: Data("calltrace dni.js".utf8), message: Data(buffer: body))
        eTag = "\"" + digest.prefix(12).map { String(format: "%02x", $0) }.joined() + "\""
    }

    func response(ifNoneMatch: String?) throws -> Response {
        var headers: HTTPFields = [.contentType: StaticFiles.types["js"]!, .cacheControl: "public, max-age=300", .eTag: eTag,
                                   .accessControlAllowOrigin: "*"]
        if let ifNoneMatch, ifNoneMatch.split(separator: ",").contains(where: { $0.trimmingCharacters(in: .whitespaces) == eTag }) {
            headers[.contentType] = nil
            return Response(status: .notModified, headers: headers)
        }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: body))
    }
}

extension Calltrace_Transcript_V1_ClickIdKind {
    /// The URL parameter the tag reads it from ("gclid").
    var tagName: String? {
        switch self {
        case .gclid: "gclid"
        case .gbraid: "gbraid"
        case .wbraid: "wbraid"
        case .msclkid: "msclkid"
        case .fbclid: "fbclid"
        default: nil
        }
    }
}
