import CallTraceAPI

/// Compliance's other services and identity's settings, on the same connections as `Backend`'s
/// clients (a typed client is only its connection and the method names).
extension Backend {
    var subjectRequests: Calltrace_Compliance_V1_SubjectRequestServiceClient { .init(audit.rpc) }
    var bundles: Calltrace_Compliance_V1_BundleServiceClient { .init(audit.rpc) }
    var matters: Calltrace_Compliance_V1_MatterServiceClient { .init(audit.rpc) }
    var deletions: Calltrace_Compliance_V1_DeletionServiceClient { .init(audit.rpc) }
    var retention: Calltrace_Compliance_V1_RetentionServiceClient { .init(audit.rpc) }
    var notices: Calltrace_Compliance_V1_NoticeServiceClient { .init(audit.rpc) }
    var register: Calltrace_Compliance_V1_RegisterServiceClient { .init(audit.rpc) }
    var offboarding: Calltrace_Compliance_V1_OffboardingServiceClient { .init(audit.rpc) }
}
