import CallTraceProto

/// The one table of what each role may do (P6). Documented in README.md.
enum RoleTable {
    static func permissions(of role: Calltrace_Identity_V1_Role) -> Set<Calltrace_Identity_V1_Permission> {
        switch role {
        case .admin:
            return Set(Calltrace_Identity_V1_Permission.allCases.filter { $0 != .unspecified })
        case .member:
            return [.recordingsPlay, .transcriptsRead, .linksShare, .recordsDelete, .mattersExport, .reportsRead]
        case .analyst:
            return [.reportsRead]
        default:
            return []
        }
    }
}
