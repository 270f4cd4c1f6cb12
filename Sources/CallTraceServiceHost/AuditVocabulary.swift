/// The words of the audit trail, typed, so that a firm's filter finds all of its events.
///
/// A filter is an exact match, so one word spelt two ways splits a firm's trail in two: events
/// were once recorded on both `organization:org_…` and `organisation:org_…`, and a search for
/// `organisation.purged` missed media's `organization.purged`. Hence:
///
/// - **Actions** are each service's own: a `String` enum in its domain module conforming to
///   `AuditActionName` (`IdentityAuditAction`, `MediaAuditAction`, …), whose raw values are the
///   names the trail stores. Each domain adds an `AuditRecord` initialiser taking its enum, so
///   a call site reads `action: .recordingPlayed`: a misspelt action does not compile, and
///   `allCases` is the service's whole vocabulary (the README's list is checked against it).
/// - **Resources** are shared nouns: `AuditResource.organisation(id)`, `.recording(id)`, … —
///   the prefix comes from a closed list and cannot be written by hand.
/// - **Outcomes** are `AuditOutcome`: success, denied, failed.
/// - The product is British and spells `organisation` (DESIGN.md, the trust page); the
///   American spelling cannot be written through this API (`AuditOutbox.record` refuses an
///   action that uses it). Events already chained keep the spelling they were recorded with (a
///   chain cannot be rewritten), so the trail's filter matches both (`AuditSpelling`).
public protocol AuditActionName: RawRepresentable<String>, CaseIterable, Sendable {}

/// An audit event's action, `<what>.<what happened>` in lower-case words (`recording.played`).
public struct AuditAction: Sendable, Hashable, CustomStringConvertible {
    /// The name the trail stores.
    public let name: String

    public init(_ action: some AuditActionName) {
        name = action.rawValue
    }

    /// A member of a family the service's vocabulary names once, e.g. `operator.access.<permission>`
    /// over identity's closed set of permissions. `member` is one word (checked when recorded).
    public init(_ family: some AuditActionName, member: String) {
        name = "\(family.rawValue).\(member)"
    }

    public var description: String { name }

    /// Why `name` cannot be an action, or nil: lower-case dotted words (letters, digits and `_`
    /// after a leading lower-case letter; at least two words), in the British spelling.
    public static func problem(with name: String) -> String? {
        let words = name.split(separator: ".", omittingEmptySubsequences: false)
        guard words.count >= 2, words.allSatisfy({ word in
            guard let first = word.unicodeScalars.first, ("a"..."z").contains(first) else { return false }
            return word.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }
        }) else {
            return "audit action \(name.prefix(64)) is not dotted lower-case words"
        }
        if let retired = AuditSpelling.retired(in: name) { return "audit action \(name) spells \(retired.old); the trail writes \(retired.new)" }
        return nil
    }

    /// Every name in `vocabulary` that `problem(with:)` refuses, with why (a service's
    /// vocabulary test expects none).
    public static func problems<Vocabulary: AuditActionName>(in vocabulary: Vocabulary.Type) -> [String] {
        Vocabulary.allCases.compactMap { problem(with: $0.rawValue) }
    }
}

/// What an audit event is about: one of a closed list of kinds, and its id. The trail stores
/// `<kind>:<id>` (`recording:rec_…`); a kind is added here, once, for every service.
public struct AuditResource: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, CaseIterable, Sendable {
        case organisation, user, grant
        case recording
        case shareLink = "share_link"
        case call
        case trackingNumber = "tracking_number"
        case suppression
        case blockedCaller = "blocked_caller"
        case bundle
        case subjectRequest = "subject_request"
        case retentionRun = "retention_run"
        case apiToken = "api_token"
        case website
    }

    public let kind: Kind
    public let id: String

    private init(_ kind: Kind, _ id: String) {
        self.kind = kind
        self.id = id
    }

    /// The name the trail stores.
    public var name: String { "\(kind.rawValue):\(id)" }
    public var description: String { name }

    public static func organisation(_ id: String) -> AuditResource { .init(.organisation, id) }
    public static func user(_ id: String) -> AuditResource { .init(.user, id) }
    /// A support grant.
    public static func grant(_ id: String) -> AuditResource { .init(.grant, id) }
    public static func recording(_ id: String) -> AuditResource { .init(.recording, id) }
    public static func shareLink(_ id: String) -> AuditResource { .init(.shareLink, id) }
    public static func call(_ id: String) -> AuditResource { .init(.call, id) }
    public static func trackingNumber(_ number: String) -> AuditResource { .init(.trackingNumber, number) }
    /// A suppressed caller, by a prefix of its row id (never the number).
    public static func suppression(_ id: String) -> AuditResource { .init(.suppression, id) }
    /// A caller on a firm's block list, by a prefix of its row id (never the number).
    public static func blockedCaller(_ id: String) -> AuditResource { .init(.blockedCaller, id) }
    public static func bundle(_ id: String) -> AuditResource { .init(.bundle, id) }
    public static func subjectRequest(_ id: String) -> AuditResource { .init(.subjectRequest, id) }
    public static func retentionRun(_ id: String) -> AuditResource { .init(.retentionRun, id) }
    /// A user's API token, by its id (never the token).
    public static func apiToken(_ id: String) -> AuditResource { .init(.apiToken, id) }
    /// A firm's website with its number pool (transcript).
    public static func website(_ id: String) -> AuditResource { .init(.website, id) }
}

/// How an audited attempt ended.
public enum AuditOutcome: String, Sendable, CaseIterable {
    case success
    /// Refused: no right to do it (a failed login, an operator without a grant).
    case denied
    /// Tried and could not be done (a bundle that could not be built, audio that could not be muted).
    case failed
}

/// The spellings the trail once stored and no longer writes, and how a filter finds both.
public enum AuditSpelling {
    /// Each retired word with the word that replaced it.
    static let retiredWords: [(old: String, new: String)] = [("organization", "organisation")]

    /// The first retired word `text` contains, if any (in any case).
    static func retired(in text: String) -> (old: String, new: String)? {
        let lowered = text.lowercased()
        return retiredWords.first { lowered.contains($0.old) }
    }

    /// An action as the trail writes it now: `organization.purged` → `organisation.purged`. Two
    /// actions name the same thing when their canonical forms are equal.
    public static func canonical(action: String) -> String {
        retiredWords.reduce(action) { $0.replacingOccurrences(of: $1.old, with: $1.new) }
    }

    /// A resource as the trail writes it now: only its kind (before the first `:`) is respelt,
    /// never its id, which a gateway may have chosen (`call:organization-7` stays as it is).
    public static func canonical(resource: String) -> String {
        guard let colon = resource.firstIndex(of: ":") else { return canonical(action: resource) }
        return canonical(action: String(resource[..<colon])) + resource[colon...]
    }
}
