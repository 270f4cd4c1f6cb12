import CallTraceAPI
import CallTraceKeys
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import Foundation

/// `calltrace.compliance.v1.SubjectRequestService`: requests.manage throughout.
struct SubjectRequestHandler: Calltrace_Compliance_V1_SubjectRequestServiceHandler {
    let rules: SubjectRequestRules
    let services: any CallDataServices
    let authorizer: any Authorizing
    let policies = Calltrace_Compliance_V1_SubjectRequestServicePolicies(
        openSubjectRequest: .gateways | .operators, getSubjectRequest: .gateways | .operators, listSubjectRequests: .gateways | .operators,
        pauseSubjectRequest: .gateways | .operators, resumeSubjectRequest: .gateways | .operators, extendSubjectRequest: .gateways | .operators,
        recordIdentityCheck: .gateways | .operators, locateSubjectData: .gateways | .operators, eraseSubjectData: .gateways | .operators,
        objectToProcessing: .gateways | .operators, closeSubjectRequest: .gateways | .operators, buildAccessBundle: .gateways | .operators)

    func openSubjectRequest(_ request: Calltrace_Compliance_V1_OpenSubjectRequestRequest, principal who: Principal, context: ServerContext) async throws
        -> Calltrace_Compliance_V1_OpenSubjectRequestResponse {
        let row = try await rules.open(.init(org: request.orgID, kind: request.kind, phoneNumbers: request.phoneNumbers, receivedOn: request.receivedOn,
                                             nation: request.nation, notes: request.notes), by: who.actor)
        let message = try await proto(row)
        return .with { $0.request = message }
    }

    func getSubjectRequest(_ request: Calltrace_Compliance_V1_GetSubjectRequestRequest, principal _: Principal, context: ServerContext) async throws
        -> Calltrace_Compliance_V1_GetSubjectRequestResponse {
        let row = try await rules.request(request.requestID, org: request.orgID)
        let message = try await proto(row)
        return .with { $0.request = message }
    }

    func listSubjectRequests(_ request: Calltrace_Compliance_V1_ListSubjectRequestsRequest, principal _: Principal, context: ServerContext) async throws
        -> Calltrace_Compliance_V1_ListSubjectRequestsResponse {
        let view: SubjectRequestRules.View = switch request.view {
        case .all: .all
        case .overdue: .overdue
        case .dueSoon: .dueWithin(request.dueWithinDays == 0 ? 7 : Int(min(request.dueWithinDays, 366)))
        default: .open
        }
        var answer = Calltrace_Compliance_V1_ListSubjectRequestsResponse()
        for (row, _) in try await rules.list(org: request.orgID, view: view) { answer.requests.append(try await proto(row)) }
        return answer
    }

    func pauseSubjectRequest(_ request: Calltrace_Compliance_V1_PauseSubjectRequestRequest, principal who: Principal, context: ServerContext) async throws
        -> Calltrace_Compliance_V1_PauseSubjectRequestResponse {
        let row = try await rules.pause(request.requestID, org: request.orgID, reason: request.reason, by: who.actor)
        let message = try await proto(row)
        return .with { $0.request = message }
    }

    func resumeSubjectRequest(_ request: Calltrace_Compliance_V1_ResumeSubjectRequestRequest, principal who: Principal, context: ServerContext) async throws
        -> Calltrace_Compliance_V1_ResumeSubjectRequestResponse {
        let row = try await rules.resume(request.requestID, org: request.orgID, by: who.actor)
        let message = try await proto(row)
        return .with { $0.request = message }
    }

    func extendSubjectRequest(_ request: Calltrace_Compliance_V1_ExtendSubjectRequestRequest, principal who: Principal, context: ServerContext) async throws
        -> Calltrace_Compliance_V1_ExtendSubjectRequestResponse {
        let row = try await rules.extend(request.requestID, org: request.orgID, reason: request.reason, by: who.actor)
        let message = try await proto(row)
        return .with { $0.request = message }
    }

    func recordIdentityCheck(_ request: Calltrace_Compliance_V1_RecordIdentityCheckRequest, principal who: Principal, context: ServerContext) async throws
        -> Calltrace_Compliance_V1_RecordIdentityCheckResponse {
        let row = try await rules.recordIdentityCheck(request.requestID, org: request.orgID, result: request.result,
                                                      by: who.actor)
        let message = try await proto(row)
        return .with { $0.request = message }
    }

    func locateSubjectData(_ request: Calltrace_Compliance_V1_LocateSubjectDataRequest, principal who: Principal, context: ServerContext) async throws
        -> Calltrace_Compliance_V1_LocateSubjectDataResponse {
        let calls = try await rules.locate(request.requestID, org: request.orgID, services: services, by: who.actor)
        return .with {
            $0.calls = calls.map { call in
                .with { $0.callID = call.callID; $0.recordingID = call.recordingID; $0.startedAtUnixMs = call.startedAt; $0.transcribed = call.transcribed }
            }
        }
    }

    func eraseSubjectData(_ request: Calltrace_Compliance_V1_EraseSubjectDataRequest, principal who: Principal, context: ServerContext) async throws
        -> Calltrace_Compliance_V1_EraseSubjectDataResponse {
        let row = try await rules.erase(request.requestID, org: request.orgID, services: services, by: who.actor)
        let message = try await proto(row)
        return .with { $0.request = message }
    }

    func objectToProcessing(_ request: Calltrace_Compliance_V1_ObjectToProcessingRequest, principal who: Principal, context: ServerContext) async throws
        -> Calltrace_Compliance_V1_ObjectToProcessingResponse {
        let done = try await rules.object(request.requestID, org: request.orgID, services: services, by: who.actor)
        let message = try await proto(done.row)
        return .with { $0.request = message; $0.analysesDeleted = UInt32(done.analyses) }
    }

    func closeSubjectRequest(_ request: Calltrace_Compliance_V1_CloseSubjectRequestRequest, principal who: Principal, context: ServerContext) async throws
        -> Calltrace_Compliance_V1_CloseSubjectRequestResponse {
        let row = try await rules.close(request.requestID, org: request.orgID, outcome: request.outcome, by: who.actor)
        let message = try await proto(row)
        return .with { $0.request = message }
    }

    func buildAccessBundle(_ request: Calltrace_Compliance_V1_BuildAccessBundleRequest, principal who: Principal, context: ServerContext) async throws
        -> Calltrace_Compliance_V1_BuildAccessBundleResponse {
        let bundle = try await rules.buildAccessBundle(request.requestID, org: request.orgID, by: who.actor)
        return .with { $0.bundle = BundleHandler.proto(bundle) }
    }

    func proto(_ row: SubjectRequestRow) async throws -> Calltrace_Compliance_V1_SubjectRequest {
        let progress = try await rules.deletionProgress(row.id)
        let (due, decidedBy) = try rules.due(row)
        return .with {
            $0.dueOnDecidedBy = decidedBy
            $0.requestID = row.id; $0.orgID = row.org; $0.kind = .init(rawValue: row.kind) ?? .unspecified
            $0.phoneNumbersMasked = row.details.phoneNumbers.map(PhoneNumber.masked)
            $0.receivedOn = row.receivedOn.description; $0.nation = row.nation.rawValue
            $0.identityCheck = .init(rawValue: row.identityCheck) ?? .unspecified; $0.notes = row.details.notes
            $0.state = .init(rawValue: row.state) ?? .unspecified; $0.dueOn = due.description; $0.extended = row.extended
            $0.extensionReason = row.details.extensionReason; $0.pausedDays = UInt32(row.pausedDays)
            $0.pausedSince = row.pausedSince?.description ?? ""; $0.pauseReason = row.details.pauseReason
            $0.overdue = row.closedAt == 0 && due < rules.today
            $0.deletionIds = progress.ids; $0.deletionsDone = UInt32(progress.done); $0.erasureConfirmedAtUnixMs = row.erasureConfirmedAt
            $0.objectionAppliedAtUnixMs = row.objectionAppliedAt; $0.outcome = row.details.outcome; $0.closedAtUnixMs = row.closedAt
            $0.openedBy = row.openedBy; $0.openedAtUnixMs = row.openedAt
        }
    }
}
