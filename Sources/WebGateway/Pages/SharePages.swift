import CallTraceProto
import CallTraceRPC
import Foundation
import Hummingbird

/// Share links: made and revoked on a call's page by people with links.share; opened by whoever
/// holds the link, without signing in, at `/s/<token>`. An expired, revoked, altered or deleted
/// link gives the same "not available" page, and the page sends no referrer and is never cached.
struct SharePages: Sendable {
    let app: WebApp
    /// How long a new link lasts unless the person chooses: 7 days (the firm's policy caps it).
    static let defaultDays = 7

    func register(on router: Router<WebContext>) {
        router.post("/calls/:call/share") { request, context in try await create(request, context) }
        router.post("/calls/:call/share/:link/revoke") { request, context in try await revoke(request, context) }
        router.get("/s/:token") { _, context in try await shared(try context.parameters.require("token"), context) }
        router.get("/s/:token/audio") { request, context in try await sharedAudio(request, try context.parameters.require("token"), context) }
    }

    private func create(_ request: Request, _ context: WebContext) async throws -> Response {
        let session = try app.session(context)
        let callID = try context.parameters.require("call")
        let form = try await Form.read(request, context: context)
        let days = form["days"].isEmpty ? Self.defaultDays : Int(form["days"]) ?? -1
        guard (1...365).contains(days) else { throw PageError.invalid("Choose how many days the link lasts (1 to 365).") }
        guard form["note"].count <= 500 else { throw PageError.invalid("The note is at most 500 characters.") }
        let options = context.caller.options
        let call = try await app.backend.calls.getCall(.with {
            $0.orgID = session.orgID
            $0.callID = callID
        }, options: options).call
        guard !call.recordingID.isEmpty else { throw PageError.invalid("This call has no recording to share.") }
        let made = try await app.backend.shareLinks.createShareLink(.with {
            $0.orgID = session.orgID
            $0.recordingID = call.recordingID
            $0.ttlSeconds = UInt32(days * 86400)
            $0.note = form["note"]
        }, options: options)
        // The link is shown this once, on this page; only its hash is kept.
        return try await CallPages(app: app).call(callID, context, notice: "Link created. Copy it now: it is not shown again.",
                                                  newLink: app.publicURL.base + "/s/" + made.token)
    }

    private func revoke(_ request: Request, _ context: WebContext) async throws -> Response {
        let session = try app.session(context)
        let callID = try context.parameters.require("call")
        _ = try await Form.read(request, context: context)
        _ = try await app.backend.shareLinks.revokeShareLink(.with {
            $0.orgID = session.orgID
            $0.linkID = (try? context.parameters.require("link")) ?? ""
        }, options: context.caller.options)
        return WebApp.seeOther("/calls/\(callID.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? "")?done=revoked")
    }

    // MARK: The holder's side

    /// The recording the link opens (its description only: neither an open nor a play, so the
    /// firm's count of opens is the holder's listening, not page views), or nil for any link that
    /// does not open: one answer for every reason. A service that cannot be reached is not a dead
    /// link: that failure goes on (503).
    private func open(_ token: String, clientAddress: String?) async throws -> Calltrace_Media_V1_Recording? {
        guard token.count <= 128 else { return nil }
        do {
            return try await app.backend.shareLinks.openShareLink(.with {
                $0.token = token
                $0.describeOnly = true
            }, options: Caller(token: nil, clientAddress: clientAddress).options) { stream in
                for try await piece in stream where piece.hasRecording { return piece.recording }
                return nil
            }
        } catch let error as RPCError where [.unavailable, .deadlineExceeded, .resourceExhausted].contains(error.code) {
            throw error
        } catch {
            return nil
        }
    }

    private func shared(_ token: String, _ context: WebContext) async throws -> Response {
        guard let recording = try await open(token, clientAddress: context.clientAddress) else { return notAvailable() }
        var data: [String: Any] = ["audio": "/s/\(token)/audio", "type": Formats.mimeType(recording.format),
                                   "recorded": Formats.date(unixMs: recording.createdAtUnixMs)]
        if recording.durationMs > 0 { data["duration"] = Formats.duration(ms: recording.durationMs) }
        return app.renderer.page("shared", title: "A shared call recording", data: data, chrome: nil)
    }

    private func sharedAudio(_ request: Request, _ token: String, _ context: WebContext) async throws -> Response {
        guard let recording = try await open(token, clientAddress: context.clientAddress) else { return notAvailable() }
        let links = app.backend.shareLinks
        let options = Caller(token: nil, clientAddress: context.clientAddress).streamOptions
        // Revoked between the look and the read: the same "not available" page as any dead link.
        do {
            return try await AudioResponse.make(range: request.headers[.range], size: recording.sizeBytes, mimeType: Formats.mimeType(recording.format)) { offset, length, write in
            try await links.openShareLink(.with {
                $0.token = token
                $0.offset = offset
                $0.length = length
            }, options: options) { stream in
                for try await piece in stream { try await write(piece.data) }
            }
        }
        } catch let error as RPCError where [.notFound, .permissionDenied, .unauthenticated, .failedPrecondition].contains(error.code) {
            return notAvailable()
        }
    }

    private func notAvailable() -> Response {
        app.renderer.message(title: "This recording is not available",
                             text: "The link has expired, was withdrawn, or is not complete. Ask the person who sent it for a new one.",
                             chrome: nil, status: .notFound)
    }
}
