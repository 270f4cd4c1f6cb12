import CallTraceRPC

/// The shape of ids that cross services, checked before any side effect: a request naming a
/// malformed id is refused at once, and no audit event or key row is ever made for one.
public enum OrganizationID {
    /// 1–64 characters of `a-z 0-9 _ -`, starting with a letter or digit (identity issues
    /// `org_` + 32 hex digits).
    public static func isValid(_ id: String) -> Bool {
        let bytes = id.utf8
        guard (1...64).contains(bytes.count), let first = bytes.first, isLowerAlphanumeric(first) else { return false }
        return bytes.allSatisfy { isLowerAlphanumeric($0) || $0 == 0x5F || $0 == 0x2D }
    }

    /// Throws INVALID_ARGUMENT for a malformed organisation id (without echoing it).
    public static func validate(_ id: String) throws {
        guard isValid(id) else { throw DomainError.invalid("org_id is not a valid organisation id") }
    }

    private static func isLowerAlphanumeric(_ byte: UInt8) -> Bool {
        (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39)
    }
}

/// A call id as the gateway names it (and media and transcript key by it), or any other id a
/// service chose (a recording's): 1–128 of `A-Z a-z 0-9 - _ . :`.
public enum CallID {
    public static func isValid(_ id: String) -> Bool {
        (1...128).contains(id.utf8.count) && id.utf8.allSatisfy { byte in
            (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) || [0x2D, 0x5F, 0x2E, 0x3A].contains(byte)
        }
    }

    /// Throws INVALID_ARGUMENT naming `field` for a malformed id (without echoing it).
    public static func validate(_ id: String, field: String = "call_id") throws {
        guard isValid(id) else { throw DomainError.invalid("\(field) must be 1 to 128 of A-Z a-z 0-9 - _ . :") }
    }
}
