import CallTraceProto

/// The one table of what each role may do (P6). Documented in README.md.
enum RoleTable {
    static func permissions(of role: Calltrace_Identity_V1_Role) -> Set<Calltrace_Identity_V1_Permission> {
        switch role {
        case .admin:
            return Set(Calltrace_Identity_V1_Permission.allCases.filter { $0 != .unspecified })
        case .member:
            return [.recordingsPlay, .transcriptsRead, .linksShare, .recordsDelete, .mattersExport, .reportsRead, .callsMark, .callsPlace]
        case .analyst:
            return [.reportsRead]
        default:
            return []
        }
    }

    /// The permission's documented dotted name, e.g. `users.manage` (the comment beside each
    /// value in identity.proto), for error messages.
    static func name(of permission: Calltrace_Identity_V1_Permission) -> String {
        var name = ""
        for character in "\(permission)" {
            if character.isUppercase { name += "." + character.lowercased() } else { name.append(character) }
        }
        return name
    }
}
