import CallTraceProto
import CallTraceRPC
import Foundation
import Hummingbird
import OpenAPIHummingbird
import OpenAPIRuntime

/// The JSON API, `/api/v1` (services/web/openapi.yaml): the pages' actions for a person's own
/// tools and CRM integrations. Each operation is one or two calls to the services under the
/// person's API token (`APICaller`), as a page's are under their session, so scopes, roles, the
/// firm's boundaries and the audit trail stay the services'. The operations come from the code
/// swift-openapi-generator wrote (`API/Generated`, `make openapi`); the audio streams byte ranges
/// through `Backend.play`, as the pages' player does.
struct APIv1: APIProtocol {
    let app: WebApp
    static let base = "/api/v1"

    func register(on router: Router<WebContext>) {
        do {
            try registerHandlers(on: router, serverURL: URL(string: Self.base)!)
        } catch {
            preconditionFailure("the API's base path is malformed: \(error)")  // a constant: never at run time
        }
        router.get("\(Self.base)/recordings/:recordingId/audio") { request, context in
            let who = try APICaller.required()
            return try await app.backend.play(recording: try context.parameters.require("recordingId"), org: who.org, range: request.headers[.range],
                                              caller: who.caller, reason: "played through the API")
        }
    }

    private var backend: Backend { app.backend }

    // MARK: Account

    func getMe(_ input: Operations.GetMe.Input) async throws -> Operations.GetMe.Output {
        let who = try APICaller.required()
        let me = try await backend.identity.getCurrentUser(.with { $0.orgID = who.org }, options: who.options)
        return .ok(.init(body: .json(.init(userId: me.user.userID, firmId: who.org, email: me.user.email, displayName: me.user.displayName,
                                           role: APIValues.role(me.user.role), permissions: me.permissions.compactMap(APIValues.permission)))))
    }

    func listApiTokens(_ input: Operations.ListApiTokens.Input) async throws -> Operations.ListApiTokens.Output {
        let who = try APICaller.required()
        let tokens = try await backend.identity.listApiTokens(.with {
            $0.orgID = who.org
            $0.allUsers = input.query.allUsers ?? false
        }, options: who.options).apiTokens
        let now = app.clock.nowUnixMs
        return .ok(.init(body: .json(.init(tokens: tokens.map { APIValues.apiToken($0, now: now) }))))
    }

    func createApiToken(_ input: Operations.CreateApiToken.Input) async throws -> Operations.CreateApiToken.Output {
        let who = try APICaller.required()
        guard case .json(let body) = input.body else { throw APIProblem.invalid("Send JSON.") }
        let days = body.days ?? 90
        guard (1...365).contains(days) else { throw APIProblem.invalid("‘days’ is from 1 to 365.") }
        // Identity makes tokens only for a signed-in session: through the API, this is its refusal.
        let made = try await backend.identity.createApiToken(.with {
            $0.orgID = who.org
            $0.name = body.name
            $0.permissions = body.permissions.compactMap { APIValues.permission($0.rawValue) }
            $0.durationSeconds = UInt32(days * 86_400)
        }, options: who.options)
        return .created(.init(body: .json(.init(token: made.token, apiToken: APIValues.apiToken(made.apiToken, now: app.clock.nowUnixMs)))))
    }

    func revokeApiToken(_ input: Operations.RevokeApiToken.Input) async throws -> Operations.RevokeApiToken.Output {
        let who = try APICaller.required()
        _ = try await backend.identity.revokeApiToken(.with {
            $0.orgID = who.org
            $0.tokenID = input.path.tokenId
        }, options: who.options)
        return .noContent(.init())
    }

    // MARK: Calls

    func listCalls(_ input: Operations.ListCalls.Input) async throws -> Operations.ListCalls.Output {
        let who = try APICaller.required()
        var request = Calltrace_Transcript_V1_ListCallsRequest()
        request.orgID = who.org
        request.pageSize = UInt32(min(max(input.query.pageSize ?? Int(CallPages.pageSize), 1), 500))
        request.source = input.query.source ?? ""
        request.pageToken = input.query.pageToken ?? ""
        if let from = input.query.from {
            guard let start = Formats.startOfDay(from) else { throw APIProblem.invalid("‘from’ is a day: YYYY-MM-DD.") }
            request.startedFromUnixMs = start
        }
        if let to = input.query.to {
            guard let end = Formats.startOfDay(to) else { throw APIProblem.invalid("‘to’ is a day: YYYY-MM-DD.") }
            request.startedBeforeUnixMs = end + 86_400_000  // up to the end of the day
        }
        let page = try await backend.calls.listCalls(request, options: who.options)
        return .ok(.init(body: .json(.init(calls: page.calls.map(APIValues.call),
                                           nextPageToken: page.nextPageToken.isEmpty ? nil : page.nextPageToken))))
    }

    func getCall(_ input: Operations.GetCall.Input) async throws -> Operations.GetCall.Output {
        let who = try APICaller.required()
        let call = try await backend.calls.getCall(.with {
            $0.orgID = who.org
            $0.callID = input.path.callId
        }, options: who.options).call
        return .ok(.init(body: .json(APIValues.call(call))))
    }

    func getTranscript(_ input: Operations.GetTranscript.Input) async throws -> Operations.GetTranscript.Output {
        let who = try APICaller.required()
        let answer = try await backend.transcripts.getTranscript(.with {
            $0.orgID = who.org
            $0.callID = input.path.callId
        }, options: who.options)
        return .ok(.init(body: .json(APIValues.transcript(answer, callID: input.path.callId))))
    }

    func setCallOutcome(_ input: Operations.SetCallOutcome.Input) async throws -> Operations.SetCallOutcome.Output {
        let who = try APICaller.required()
        guard case .json(let body) = input.body else { throw APIProblem.invalid("Send JSON.") }
        let reference = body.matterReference ?? ""
        guard reference.count <= 64 else { throw APIProblem.invalid("A matter reference is at most 64 characters.") }
        let marked = try await backend.calls.markCallOutcome(.with {
            $0.orgID = who.org
            $0.callID = input.path.callId
            $0.enquiry = APIValues.parse(body.enquiry.rawValue, unspecified: "unmarked") ?? .unspecified
            $0.matterOpened = body.matterOpened ?? false
            $0.matterReference = body.matterOpened == true ? reference : ""
            $0.practiceArea = body.practiceArea.flatMap { APIValues.parse($0.rawValue) as Calltrace_Transcript_V1_PracticeArea? } ?? .unspecified
        }, options: who.options)
        return .ok(.init(body: .json(APIValues.call(marked.call))))
    }

    // MARK: Share links

    func listShareLinks(_ input: Operations.ListShareLinks.Input) async throws -> Operations.ListShareLinks.Output {
        let who = try APICaller.required()
        let links = try await backend.shareLinks.listShareLinks(.with {
            $0.orgID = who.org
            $0.recordingID = input.path.recordingId
        }, options: who.options).links
        if links.isEmpty {
            // Media lists no links for a recording it does not hold: another firm's id is not found, as elsewhere.
            do {
                _ = try await backend.recordings.getRecording(.with {
                    $0.orgID = who.org
                    $0.recordingID = input.path.recordingId
                }, options: who.options)
            } catch let error as RPCError where error.code == .permissionDenied {}  // a token without reports.read: the empty list stands
        }
        let now = app.clock.nowUnixMs
        return .ok(.init(body: .json(.init(links: links.sorted { $0.createdAtUnixMs > $1.createdAtUnixMs }.map { APIValues.shareLink($0, now: now) }))))
    }

    func createShareLink(_ input: Operations.CreateShareLink.Input) async throws -> Operations.CreateShareLink.Output {
        let who = try APICaller.required()
        guard case .json(let body) = input.body else { throw APIProblem.invalid("Send JSON.") }
        let days = body.days ?? SharePages.defaultDays
        guard (1...365).contains(days) else { throw APIProblem.invalid("‘days’ is from 1 to 365.") }
        guard (body.note ?? "").count <= 500 else { throw APIProblem.invalid("The note is at most 500 characters.") }
        let made = try await backend.shareLinks.createShareLink(.with {
            $0.orgID = who.org
            $0.recordingID = input.path.recordingId
            $0.ttlSeconds = UInt32(days * 86_400)
            $0.note = body.note ?? ""
        }, options: who.options)
        return .created(.init(body: .json(.init(link: APIValues.shareLink(made.link, now: app.clock.nowUnixMs),
                                                url: app.publicURL.base + "/s/" + made.token))))
    }

    func revokeShareLink(_ input: Operations.RevokeShareLink.Input) async throws -> Operations.RevokeShareLink.Output {
        let who = try APICaller.required()
        _ = try await backend.shareLinks.revokeShareLink(.with {
            $0.orgID = who.org
            $0.linkID = input.path.linkId
        }, options: who.options)
        return .noContent(.init())
    }

    // MARK: Users

    func listUsers(_ input: Operations.ListUsers.Input) async throws -> Operations.ListUsers.Output {
        let who = try APICaller.required()
        let users = try await backend.identity.listUsers(.with { $0.orgID = who.org }, options: who.options).users
        return .ok(.init(body: .json(.init(users: users.compactMap(APIValues.user)))))
    }

    func inviteUser(_ input: Operations.InviteUser.Input) async throws -> Operations.InviteUser.Output {
        let who = try APICaller.required()
        guard case .json(let body) = input.body else { throw APIProblem.invalid("Send JSON.") }
        guard (body.displayName ?? "").count <= 100 else { throw APIProblem.invalid("A name is at most 100 characters.") }
        let invited = try await backend.identity.inviteUser(.with {
            $0.orgID = who.org
            $0.email = body.email
            $0.displayName = body.displayName ?? ""
            $0.role = APIValues.parse(body.role.rawValue) ?? .unspecified
        }, options: who.options)
        return .created(.init(body: .json(.init(userId: invited.userID, invitationExpiresAt: APIValues.date(invited.invitationExpiresAtUnixMs)))))
    }
}
