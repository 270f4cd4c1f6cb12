import CallTraceAPI
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost

/// `calltrace.identity.v1.AlertService`: the services and gateways tell a fact, each person
/// chooses what they hear of (`Alerts.swift`).
struct AlertHandler: Calltrace_Identity_V1_AlertServiceHandler {
    let rules: IdentityRules
    let policies = Calltrace_Identity_V1_AlertServicePolicies(notify: .services | .gateways, getAlertPreferences: .gateways,
                                                              setAlertPreferences: .gateways)

    var authorizer: any Authorizing { rules }

    func notify(_ request: Calltrace_Identity_V1_NotifyRequest, context: ServerContext) async throws -> Calltrace_Identity_V1_NotifyResponse {
        context.annotate(org: request.orgID)
        guard let kind = AlertKind(request.kind) else { throw RPCError(.invalidArgument, "name the alert's kind") }
        let alert = try Alert(kind: kind, fields: request.fields)
        let told = try await rules.notify(alert, org: request.orgID, key: request.idempotencyKey, by: context.peerActor)
        return .with { $0.recipients = UInt32(told) }
    }

    func getAlertPreferences(_ request: Calltrace_Identity_V1_GetAlertPreferencesRequest, context: ServerContext) async throws
        -> Calltrace_Identity_V1_GetAlertPreferencesResponse {
        let me = try await rules.me(context, in: request.orgID)
        let choices = try await rules.alertChoices(of: me)
        return .with { $0.preferences = choices.map(Self.proto) }
    }

    func setAlertPreferences(_ request: Calltrace_Identity_V1_SetAlertPreferencesRequest, context: ServerContext) async throws
        -> Calltrace_Identity_V1_SetAlertPreferencesResponse {
        let me = try await rules.me(context, in: request.orgID, accepting: .sessionOnly)
        let kinds = try request.enabled.map { proto in
            guard let kind = AlertKind(proto) else { throw RPCError(.invalidArgument, "\(proto) is not an alert") }
            return kind
        }
        let choices = try await rules.setAlertChoices(kinds, for: me)
        return .with { $0.preferences = choices.map(Self.proto) }
    }

    static func proto(_ choice: AlertChoice) -> Calltrace_Identity_V1_AlertPreference {
        .with {
            $0.kind = choice.kind.proto
            $0.enabled = choice.enabled
            $0.available = choice.available
            $0.description_p = choice.kind.description
        }
    }
}
