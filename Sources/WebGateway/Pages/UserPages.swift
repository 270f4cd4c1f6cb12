import CallTraceProto
import CallTraceRPC
import Foundation
import Hummingbird

/// Settings → Users, for people with users.manage: the firm's users with their roles and
/// two-factor, inviting someone (identity e-mails them the link to `/accept-invitation`), a new
/// role, suspending, removing, and clearing a lost phone's two-factor. Each is one identity call
/// under the admin's token, audited there.
struct UserPages: Sendable {
    let app: WebApp

    func register(on router: Router<WebContext>) {
        router.get("/settings/users") { request, context in
            let notice: String? = switch request.query["done"] {
            case "invited": "Invitation sent. It works once and expires; they choose their own password."
            case "role": "Role changed. It applies from their next page."
            case "suspended": "Suspended: every session of theirs has ended."
            case "removed": "Removed: every session of theirs has ended."
            case "two-factor": "Two-factor cleared. They set it up again at their next sign-in."
            default: nil
            }
            return try await list(context, notice: notice)
        }
        router.post("/settings/users/invite") { request, context in try await invite(request, context) }
        router.post("/settings/users/:user/:action") { request, context in try await act(request, context) }
    }

    private func list(_ context: WebContext, notice: String?) async throws -> Response {
        let session = try app.session(context)
        let (chrome, permissions) = try await app.chrome(context, current: "Settings")
        let users = try await app.backend.identity.listUsers(.with { $0.orgID = session.orgID }, options: context.caller.options).users
        var data: [String: Any] = [
            "csrf": session.csrf,
            "users": users.filter { $0.status != "removed" }.map { user -> [String: Any] in
                [
                    "userID": user.userID, "name": user.displayName.isEmpty ? user.email : user.displayName, "email": user.email,
                    "role": Formats.role(user.role), "status": user.status.capitalizedFirst, "twoFactor": user.twoFactorConfirmed ? "On" : "Off",
                    "since": Formats.date(unixMs: user.createdAtUnixMs), "isSelf": user.userID == session.userID,
                    "active": user.status == "active",
                    "roles": Self.roles.map { role, label in ["value": label.lowercased(), "label": label, "selected": user.role == role] },
                ]
            },
            "roles": Self.roles.map { role, label in ["value": label.lowercased(), "label": label, "selected": role == .member] },
        ]
        if let notice { data["notice"] = notice }
        data["settingsNav"] = SettingsPages.navigation(permissions, current: "/settings/users")
        return app.renderer.page("users", title: "Users", data: data, chrome: chrome)
    }

    static let roles: [(Calltrace_Identity_V1_Role, String)] = [(.admin, "Admin"), (.member, "Member"), (.analyst, "Analyst")]

    static func role(_ text: String) throws -> Calltrace_Identity_V1_Role {
        guard let role = roles.first(where: { $0.1.lowercased() == text })?.0 else { throw PageError.invalid("Choose a role: admin, member or analyst.") }
        return role
    }

    private func invite(_ request: Request, _ context: WebContext) async throws -> Response {
        let session = try app.session(context)
        let form = try await Form.read(request, context: context)
        guard !form["email"].isEmpty, form["email"].count <= 254 else { throw PageError.invalid("Enter the person's e-mail address.") }
        guard form["name"].count <= 100 else { throw PageError.invalid("A name is at most 100 characters.") }
        _ = try await app.backend.identity.inviteUser(.with {
            $0.orgID = session.orgID
            $0.email = form["email"]
            $0.displayName = form["name"]
            $0.role = try Self.role(form["role"])
        }, options: context.caller.options)
        return WebApp.seeOther("/settings/users?done=invited")
    }

    private func act(_ request: Request, _ context: WebContext) async throws -> Response {
        let session = try app.session(context)
        let user = try context.parameters.require("user")
        let form = try await Form.read(request, context: context)
        let options = context.caller.options
        let identity = app.backend.identity
        let done: String
        switch try context.parameters.require("action") {
        case "role":
            _ = try await identity.changeUserRole(.with {
                $0.orgID = session.orgID
                $0.userID = user
                $0.role = try Self.role(form["role"])
            }, options: options)
            done = "role"
        case "suspend":
            _ = try await identity.suspendUser(.with { $0.orgID = session.orgID; $0.userID = user }, options: options)
            done = "suspended"
        case "remove":
            _ = try await identity.removeUser(.with { $0.orgID = session.orgID; $0.userID = user }, options: options)
            done = "removed"
        case "reset-two-factor":
            _ = try await identity.resetTwoFactor(.with { $0.orgID = session.orgID; $0.userID = user }, options: options)
            done = "two-factor"
        default:
            throw PageError.notFound
        }
        return WebApp.seeOther("/settings/users?done=\(done)")
    }
}
