import CallTraceAPI
import CallTraceKeys
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import ComplianceDeadlines
import Foundation

/// `calltrace.compliance.v1.NoticeService`.
struct NoticeHandler: Calltrace_Compliance_V1_NoticeServiceHandler {
    let rules: DocumentRules
    let authorizer: any Authorizing
    let policies = Calltrace_Compliance_V1_NoticeServicePolicies(getNotice: .gateways | .operators, getNoticeSettings: .gateways | .operators,
                                                                 setNoticeSettings: .gateways | .operators, getCallNotice: .service("transcript"))

    func getNotice(_ request: Calltrace_Compliance_V1_GetNoticeRequest, context: ServerContext) async throws -> Calltrace_Compliance_V1_GetNoticeResponse {
        // A gateway fetches what it plays as itself; every other kind needs a user with settings.manage
        // (checked here, not by the registration: the proto declares `in_handler`).
        if context.peer.kind == .gateway && context.metadata["authorization"] == nil && [.callbackGreeting, .inboundGreeting].contains(request.kind) {
            try OrganizationID.validate(request.orgID)
            context.annotate(org: request.orgID)
        } else {
            _ = try await context.principal(in: request.orgID, may: .settingsManage, via: authorizer)
        }
        guard request.kind != .unspecified, DocumentRules.Kind.allCases.contains(request.kind) else { throw DomainError.invalid("name a notice kind") }
        let notice = try await rules.notice(request.kind, org: request.orgID)
        return .with { $0.kind = request.kind; $0.text = notice.text; $0.templateVersion = notice.version }
    }

    /// Transcript's question as a call starts (the route admits no one else).
    func getCallNotice(_ request: Calltrace_Compliance_V1_GetCallNoticeRequest, context: ServerContext) async throws
        -> Calltrace_Compliance_V1_GetCallNoticeResponse {
        try OrganizationID.validate(request.orgID)
        context.annotate(org: request.orgID)
        let answer = try await rules.callNotice(request.kind, org: request.orgID, transcribed: request.transcribed)
        return .with { $0.mayRecord = answer.mayRecord; $0.reason = answer.reason; $0.text = answer.text; $0.templateVersion = answer.version }
    }

    func getNoticeSettings(_ request: Calltrace_Compliance_V1_GetNoticeSettingsRequest, principal _: Principal, context: ServerContext) async throws
        -> Calltrace_Compliance_V1_GetNoticeSettingsResponse {
        let row = try await rules.settings(org: request.orgID)
        return .with { $0.settings = Self.proto(row) }
    }

    func setNoticeSettings(_ request: Calltrace_Compliance_V1_SetNoticeSettingsRequest, principal who: Principal, context: ServerContext) async throws
        -> Calltrace_Compliance_V1_SetNoticeSettingsResponse {
        let row = try await rules.setSettings(Self.change(request.settings), org: request.orgID, by: who.actor)
        return .with { $0.settings = Self.proto(row) }
    }

    static func change(_ settings: Calltrace_Compliance_V1_NoticeSettings) -> NoticeSettingsChange {
        NoticeSettingsChange(firmName: settings.firmName, firmPhone: settings.firmPhone, inboundGreeting: settings.inboundGreeting,
                             overrides: settings.overrides.map { ($0.kind, $0.text) })
    }

    static func proto(_ row: NoticeSettingsRow) -> Calltrace_Compliance_V1_NoticeSettings {
        .with {
            $0.firmName = row.firmName; $0.firmPhone = row.firmPhone; $0.inboundGreeting = row.inboundGreeting
            $0.overrides = row.overrides.sorted { $0.key < $1.key }.map { kind, text in .with { $0.kind = .init(rawValue: kind) ?? .unspecified; $0.text = text } }
            $0.updatedAtUnixMs = row.updatedAt; $0.updatedBy = row.updatedBy
        }
    }
}

/// `calltrace.compliance.v1.RegisterService`.
struct RegisterHandler: Calltrace_Compliance_V1_RegisterServiceHandler {
    let rules: DocumentRules
    let authorizer: any Authorizing
    let policies = Calltrace_Compliance_V1_RegisterServicePolicies(
        listSubProcessors: .gateways | .operators | .services, getRecordOfProcessing: .gateways | .operators,
        getProcessingAgreement: .gateways | .operators, acceptProcessingAgreement: .gateways | .operators)

    func listSubProcessors(_ request: Calltrace_Compliance_V1_ListSubProcessorsRequest, context: ServerContext) async throws
        -> Calltrace_Compliance_V1_ListSubProcessorsResponse {
        let register = rules.register
        return .with {
            $0.subProcessors = register.everyone.map { e in
                .with {
                    $0.name = e.name; $0.purpose = e.purpose; $0.dataCategories = e.dataCategories; $0.location = e.location
                    $0.transferMechanism = e.transferMechanism; $0.dpaDate = e.dpaDate; $0.trainingOptOut = e.trainingOptOut
                    $0.retention = e.retention
                }
            }
            $0.registerVersion = register.version; $0.source = register.source
            $0.processorName = register.processorName; $0.processorContact = register.processorContact
        }
    }

    func getRecordOfProcessing(_ request: Calltrace_Compliance_V1_GetRecordOfProcessingRequest, principal _: Principal, context: ServerContext) async throws
        -> Calltrace_Compliance_V1_GetRecordOfProcessingResponse {
        let record = try await rules.recordOfProcessing(org: request.orgID)
        return .with { $0.json = record.json; $0.text = record.text }
    }

    func getProcessingAgreement(_ request: Calltrace_Compliance_V1_GetProcessingAgreementRequest, principal _: Principal, context: ServerContext) async throws
        -> Calltrace_Compliance_V1_GetProcessingAgreementResponse {
        let agreement = try await rules.agreement(org: request.orgID)
        return .with { $0.agreement = proto(agreement.text, agreement.accepted) }
    }

    func acceptProcessingAgreement(_ request: Calltrace_Compliance_V1_AcceptProcessingAgreementRequest, principal who: Principal, context: ServerContext) async throws
        -> Calltrace_Compliance_V1_AcceptProcessingAgreementResponse {
        _ = try await rules.accept(org: request.orgID, template: request.templateVersion, register: request.registerVersion, by: who.actor)
        let agreement = try await rules.agreement(org: request.orgID)
        return .with { $0.agreement = proto(agreement.text, agreement.accepted) }
    }

    func proto(_ text: String, _ accepted: AgreementAcceptance?) -> Calltrace_Compliance_V1_ProcessingAgreement {
        .with {
            $0.templateVersion = DocumentRules.agreementTemplate; $0.registerVersion = rules.register.version; $0.text = text
            if let accepted {
                $0.acceptedTemplateVersion = accepted.templateVersion; $0.acceptedRegisterVersion = accepted.registerVersion
                $0.acceptedBy = accepted.acceptedBy; $0.acceptedAtUnixMs = accepted.acceptedAt
                $0.needsNotice = accepted.templateVersion != DocumentRules.agreementTemplate || accepted.registerVersion != rules.register.version
            }
        }
    }
}
