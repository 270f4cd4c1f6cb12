import CallTraceAPI
import CallTraceDeploymentSupport
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceStorage
import CallTraceSync
import CallTraceTestSupport
import Foundation
import Testing
@testable import WebGateway

/// One firm of the cross-tenant matrix, with what a firm holds, each made the way the firm makes
/// it: users of each role, a recorded call with its transcript, a share link, a subject request
/// with its access bundle, a deleted call, a website, API tokens, a support grant it revoked.
struct MatrixFirm: Sendable {
    struct User: Sendable {
        let id: String
        let email: String
        let session: String
        let apiToken: String
        let apiTokenID: String
    }

    let name: String
    let org: String
    let admin: User
    /// The lowest role (analyst: reports.read only) and what identity says it permits.
    let analyst: User
    let analystMay: Set<Calltrace_Identity_V1_Permission>
    /// The user the requests name (`user_id`, `email`, `token_id`): a member.
    let member: User
    /// Suspended after its session and API token were made; neither used before.
    let suspended: User
    let number: String
    let caller: String
    /// Words only this firm's transcript holds.
    let words: String
    let call: String
    let deletedCall: String
    let recording: String
    let link: (id: String, token: String)
    let request: String
    let bundle: String
    let deletion: String
    let website: String
    /// A grant the firm gave operators and revoked: the id `grant_id` names.
    let revokedGrant: String

    /// What a request names, by field name, in this firm. `grant` for `grant_id` (default the revoked one).
    func ids(grant: String? = nil) -> [String: String] {
        [
            "org_id": org, "confirm_org_id": org, "expected_org_id": org,
            "call_id": call, "callback_of": call, "recording_id": recording, "request_id": request, "bundle_id": bundle,
            "deletion_id": deletion, "deletion_ids": deletion, "link_id": link.id, "website_id": website, "grant_id": grant ?? revokedGrant,
            "user_id": member.id, "email": member.email, "token_id": member.apiTokenID,
            "phone_number": caller, "caller_number": caller, "phone_numbers": caller,
            // A tracking number is a public phone number that one firm holds: the same in the made-up set.
            "number": number, "tracking_number": number, "numbers": number,
        ]
    }

    /// The fields whose values say which firm (the organisation's).
    static let orgFields = ["org_id", "confirm_org_id", "expected_org_id"]
    /// The fields a made-up set keeps (public numbers: see `ids`).
    static let publicFields: Set<String> = ["number", "tracking_number", "numbers"]

    /// What must never reach another firm: (what it is, its text, whether it is metadata an
    /// operator may see without a grant, P8).
    var markers: [Marker] {
        let digits = String(caller.suffix(10))
        let content: [(String, String)] = [
            ("A's call id", call), ("A's deleted call's id", deletedCall), ("A's recording id", recording), ("A's share link id", link.id),
            ("A's share link token", link.token), ("A's subject request id", request), ("A's bundle id", bundle),
            ("A's deletion id", deletion), ("A's website id", website), ("A's grant id", revokedGrant),
            ("A's caller's number", digits), ("A's caller's number, spaced", "\(digits.prefix(4)) \(digits.suffix(6))"),
            ("A's transcript", words), ("A's tracking number", number),
        ]
        var markers = [Marker("A's organisation id", org, metadata: true), Marker("A's name", name, metadata: true)]
        markers += content.map { Marker($0.0, $0.1) }
        for user in [admin, analyst, member, suspended] {
            markers += [Marker("A's user id", user.id), Marker("A's user e-mail", user.email), Marker("A's API token id", user.apiTokenID)]
        }
        return markers
    }
}

struct Marker: Sendable {
    let what: String
    let text: String
    let metadata: Bool
    init(_ what: String, _ text: String, metadata: Bool = false) {
        self.what = what
        self.text = text
        self.metadata = metadata
    }
}

/// Who attacks firm A's data. Each is a certificate (the peer identity a connection presents)
/// and perhaps a bearer token.
enum Attacker: String, CaseIterable, Sendable {
    case noToken = "no token"
    case expiredToken = "expired token"
    case otherFirmsToken = "another firm's token"
    case weakRole = "too weak a role"
    case suspendedUser = "suspended user"
    case operatorWithoutGrant = "operator without a grant"
    case operatorWithOtherFirmsGrant = "operator with another firm's grant"
    case operatorWithGrantOfAnotherScope = "operator with a grant of another scope"
    case wrongServiceCertificate = "wrong service certificate"
    case wrongGatewayCertificate = "wrong gateway certificate"

    /// The ids it sends: A's and made-up ones; its own firm's (B's) for those that have one, and
    /// A's ids under B's organisation (the route check passes, the rule must still refuse). An
    /// operator with B's grant takes only the sets that differ from an operator without one.
    var idSets: [IdSet] {
        switch self {
        case .otherFirmsToken: [.victims, .madeUp, .victimsInOwnFirm, .madeUpInOwnFirm, .own]
        case .operatorWithOtherFirmsGrant: [.victimsInOwnFirm, .madeUpInOwnFirm, .own]
        case .weakRole, .suspendedUser: [.victims, .madeUpInFirmA]
        default: [.victims, .madeUp]
        }
    }

    /// The set an answer to `set` must look the same in (a made-up id confirms nothing). One of
    /// A's own users knows A exists: its made-up ids are in A's organisation.
    func twin(of set: IdSet) -> IdSet? {
        switch set {
        case .victims: isFirmAsOwn ? .madeUpInFirmA : .madeUp
        case .victimsInOwnFirm: .madeUpInOwnFirm
        default: nil
        }
    }

    /// Whether it is one of A's own users.
    var isFirmAsOwn: Bool { self == .weakRole || self == .suspendedUser }
    var isOperator: Bool { [.operatorWithoutGrant, .operatorWithOtherFirmsGrant, .operatorWithGrantOfAnotherScope].contains(self) }
    var carriesAToken: Bool { [.expiredToken, .otherFirmsToken, .weakRole, .suspendedUser].contains(self) }
}

enum IdSet: String, CaseIterable, Sendable {
    case victims = "A's ids"
    case madeUp = "made-up ids"
    case victimsInOwnFirm = "A's ids in B's organisation"
    case madeUpInOwnFirm = "made-up ids in B's organisation"
    case madeUpInFirmA = "made-up ids in A's organisation"
    case own = "own ids (B's)"
}

/// An answer: its status, message and every response message's bytes.
struct MatrixAnswer: Sendable {
    let code: String
    let message: String
    let body: Data
    /// Answered: an RPC's OK, a page's 200.
    var ok: Bool { code == "\(StatusCode.ok)" || code == "200" }
}

/// The cells' requests: firm A's ids, B's, and made-up ones of the same shape; and the values
/// every request shares (so the rules reach what it names).
final class MatrixSeeds: Sendable {
    let a: MatrixFirm
    let b: MatrixFirm
    private let madeUpValues = Locked<[String: String]>([:])

    /// What every request carries besides ids (free text is `ProtoCatalogue`'s default); `today`
    /// the services' day in the UK.
    let common: [String: String]

    init(a: MatrixFirm, b: MatrixFirm, today: String) {
        self.a = a
        self.b = b
        common = [
            "operator_name": "support", "gateway": "web", "page_token": "", "client_address": "", "allowed_client_ranges": "",
            "received_on": today, "due_on": today, "nation": "england-and-wales", "origin": "https://www.example.com",
            "origins": "https://www.example.com", "target_numbers": "020 7946 0000", "first_admin_email": "new@firm.example",
            "checkpoint_document": "",
        ]
    }

    /// The day in the UK at `unixMs`, as requests write days (YYYY-MM-DD).
    static func ukDay(_ unixMs: Int64) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "Europe/London")
        formatter.dateFormat = "yyyy-MM-dd"
        return formatter.string(from: Date(timeIntervalSince1970: Double(unixMs) / 1000))
    }

    /// Numbers that keep a request in range, and a firm's own settings usable (B's own cells change B's).
    static let numbers: [String: UInt64] = {
        // A month back to a day ahead of the services' clocks (started at real time; the matrix never moves them).
        let now = UInt64(Date().timeIntervalSince1970 * 1000)
        let (from, before) = (now - 30 * 86_400_000, now + 86_400_000)
        return [
            "from_unix_ms": from, "before_unix_ms": before, "started_before_unix_ms": before, "created_before_unix_ms": before,
            "page_size": 50, "limit": 50, "max_count": 50, "offset": 0, "length": 0, "ttl_seconds": 3600,
            "max_ttl_seconds": 86_400, "duration_seconds": 3600, "session_idle_seconds": 3600, "session_max_seconds": 43_200,
            "require_two_factor": 0, "held_by_gateway": 0, "delete_after_export": 0, "due_within_days": 30, "ring_seconds": 20,
        ]
    }()

    /// The string fields of the set, by field name.
    func values(_ set: IdSet, grant: String? = nil) -> [String: String] {
        var ids: [String: String]
        switch set {
        case .victims: ids = a.ids(grant: grant)
        case .madeUp: ids = madeUp(a.ids(grant: grant))
        case .own: ids = b.ids()
        case .victimsInOwnFirm, .madeUpInOwnFirm:
            ids = set == .victimsInOwnFirm ? a.ids(grant: grant) : madeUp(a.ids(grant: grant))
            for field in MatrixFirm.orgFields { ids[field] = b.org }
        case .madeUpInFirmA:
            ids = madeUp(a.ids(grant: grant))
            for field in MatrixFirm.orgFields { ids[field] = a.org }
        }
        return common.merging(ids) { $1 }
    }

    /// The ids only the firm's own may name, each replaced by one of the same shape (digits by
    /// digits, hex letters by hex letters), the same made-up value wherever it recurs.
    private func madeUp(_ ids: [String: String]) -> [String: String] {
        ids.reduce(into: [:]) { out, entry in
            out[entry.key] = MatrixFirm.publicFields.contains(entry.key) ? entry.value : madeUp(entry.value)
        }
    }

    func madeUp(_ value: String) -> String {
        madeUpValues.withLock { known in
            if let made = known[value] { return made }
            var random = SplitMix64(state: value.utf8.reduce(14_695_981_039_346_656_037) { ($0 ^ UInt64($1)) &* 1_099_511_628_211 })
            let characters = Array(value)
            let half = characters.count / 2
            var made = ""
            for (index, character) in characters.enumerated() {
                guard index >= half, character.isASCII else { made.append(character); continue }
                let pool: String = switch character {
                case "0"..."9": "0123456789"
                case "a"..."f": "abcdef"
                case "g"..."z": "ghijklmnopqrstuvwxyz"
                case "A"..."Z": "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                default: String(character)
                }
                made.append(pool.randomElement(using: &random)!)
            }
            if made == value { made = String(made.dropLast()) + (made.last == "0" ? "1" : "0") }
            known[value] = made
            return made
        }
    }

    /// `text` with every id of the set it was sent with said as the field it came in, so an
    /// answer naming the id sent is the same for A's and for a made-up one.
    func normalised(_ text: String, sent: [String: String]) -> String {
        // Each value said once, as the first field (by name) that carried it.
        let said = sent.filter { !$0.value.isEmpty && !MatrixFirm.publicFields.contains($0.key) && common[$0.key] == nil }
            .reduce(into: [String: String]()) { said, field in said[field.value] = min(said[field.value] ?? field.key, field.key) }
        return said.sorted { ($0.key.count, $0.key) > ($1.key.count, $1.key) }
            .reduce(text) { $0.replacingOccurrences(of: $1.key, with: "⟨\($1.value)⟩") }
    }

    /// The markers of A in `answer` that `request` did not carry (an echo of what was sent
    /// leaks nothing); metadata too unless `operator`.
    func leaks(in answer: MatrixAnswer, request: Data, operator isOperator: Bool) -> [String] {
        let sent = String(decoding: request, as: UTF8.self)
        let body = String(decoding: answer.body, as: UTF8.self)
        return a.markers.filter { marker in
            !(isOperator && marker.metadata) && !sent.contains(marker.text)
                && (body.contains(marker.text) || answer.message.contains(marker.text))
        }.map(\.what)
    }
}

/// What the matrix counted and found.
final class MatrixTally: Sendable {
    private struct State {
        var cells = 0
        var byAttacker: [String: Int] = [:]
        var byIdSet: [String: Int] = [:]
        var byAnswer: [String: Int] = [:]
        var answeredByIdSet: [String: Int] = [:]
        var methods = Set<String>()
        var notApplicable: [String: Int] = [:]
        var failures: [String] = []
        var notGenerated: [String] = []
        var controls = 0
        var controlsSeeingA: [String] = []
        var controlsSaw = Set<String>()
        var controlsRefused: [String] = []
    }
    private let state = Locked(State())
    let title: String
    /// What its cells are cells of: methods, routes.
    let of: String

    init(_ title: String, of: String = "methods") {
        self.title = title
        self.of = of
    }

    func cell(_ method: String, _ attacker: Attacker, _ ids: IdSet, _ answer: MatrixAnswer) {
        state.withLock {
            $0.cells += 1
            $0.byAttacker[attacker.rawValue, default: 0] += 1
            $0.byIdSet[ids.rawValue, default: 0] += 1
            $0.byAnswer[answer.code, default: 0] += 1
            if answer.ok { $0.answeredByIdSet[ids.rawValue, default: 0] += 1 }
            $0.methods.insert(method)
            if ProcessInfo.processInfo.environment["CALLTRACE_MATRIX_CELLS"] != nil { print("CELL \(method) | \(attacker.rawValue) | \(ids.rawValue) | \(answer.code) | \(answer.message.prefix(160))") }
        }
    }

    func notApplicable(_ attacker: Attacker) { state.withLock { $0.notApplicable[attacker.rawValue, default: 0] += 1 } }
    /// What the matrix could not generate a request for, and why.
    func notGenerated(_ line: String) { state.withLock { $0.notGenerated.append(line) } }
    func fail(_ line: String) { state.withLock { $0.failures.append(line) } }

    /// Firm A's own admin reading A's data: the proof that the matrix sees A's data when it is there.
    func control(_ method: String, _ answer: MatrixAnswer, sees: [String]) {
        state.withLock {
            $0.controls += 1
            if !sees.isEmpty { $0.controlsSeeingA.append(method) }
            $0.controlsSaw.formUnion(sees)
            if !answer.ok { $0.controlsRefused.append("\(method): \(answer.code)") }
        }
    }

    var failures: [String] { state.withLock { $0.failures } }
    var cells: Int { state.withLock { $0.cells } }
    var controlsSeeingA: [String] { state.withLock { $0.controlsSeeingA } }
    var controlsRefused: [String] { state.withLock { $0.controlsRefused } }
    /// What of A's the controls' answers showed (the scan's proof that it sees each kind).
    var controlsSaw: Set<String> { state.withLock { $0.controlsSaw } }

    /// The printout: cells per dimension and in all, what did not apply, the controls and the failures.
    func report(seconds: Double) -> String {
        state.withLock { s in
            var lines = ["cross-tenant matrix, \(title): \(s.cells) cells checked over \(s.methods.count) \(of) in \(String(format: "%.1f", seconds)) s"]
            lines.append("  by attacker: " + Attacker.allCases.compactMap { a in s.byAttacker[a.rawValue].map { "\(a.rawValue) \($0)" } }.joined(separator: ", "))
            lines.append("  by ids: " + IdSet.allCases.compactMap { i in s.byIdSet[i.rawValue].map { "\(i.rawValue) \($0)" } }.joined(separator: ", "))
            lines.append("  answers: " + s.byAnswer.sorted { ($1.value, $0.key) < ($0.value, $1.key) }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
            lines.append("  answered (OK, HTTP 200) by ids: " + IdSet.allCases.compactMap { i in s.answeredByIdSet[i.rawValue].map { "\(i.rawValue) \($0)" } }.joined(separator: ", "))
            if !s.notApplicable.isEmpty {
                lines.append("  not applicable (the method admits every peer of that kind): "
                             + s.notApplicable.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
            }
            lines.append("  control (A's admin, A's ids): \(s.controls) reads, \(s.controlsSeeingA.count) showing A's data, \(s.controlsRefused.count) refused"
                         + (s.controlsRefused.isEmpty ? "" : " (\(s.controlsRefused.joined(separator: ", ")))"))
            lines.append("  the controls showed: " + s.controlsSaw.sorted().joined(separator: ", "))
            if !s.notGenerated.isEmpty { lines.append("  not generated: " + s.notGenerated.joined(separator: "; ")) }
            lines.append("  failures: \(s.failures.count)")
            lines += s.failures.prefix(60).map { "    \($0)" }
            return lines.joined(separator: "\n")
        }
    }
}

/// Firm A's rows in every database and key store of the deployment, to see whether a cell
/// changed them: each table's rows that hold one of A's ids in a column, as text.
struct MatrixDigest: Equatable {
    let tables: [String: [String]]

    /// Tables that change whatever the caller is, and say nothing about A's data: the audit
    /// trail and its outbox (every refusal of an operator is an audit event of A's, P8), job
    /// queues, schema bookkeeping, and failed sign-ins (an attacker's wrong password is counted
    /// against the address and the e-mail it named).
    static let unwatchedTables: Set<String> = [
        "audit_events", "audit_chain", "audit_checkpoints", "audit_outbox", "audit_dead_letters", "jobs", "job_schedules",
        "schema_tracks", "key_store_binding", "login_failures",
    ]
    /// Columns that move with A's own legitimate use (a session's last use, refreshed by each allowed call).
    static let unwatchedColumns: Set<String> = ["last_used_at_unix_ms"]

    /// - Parameters:
    ///   - org: A's organisation; a row naming another in `org_id` is not A's.
    ///   - keys: A's ids; a row holding one of them in any column is A's.
    ///   - ignoring: rows holding one of these are left out (what the matrix itself made in A: its grants).
    static func take(_ services: [InProcessService], org: String, keys: Set<String>, ignoring: Set<String>) async throws -> MatrixDigest {
        var tables: [String: [String]] = [:]
        for service in services {
            for (label, database) in [(service.name, service.instance.database), ("\(service.name) keys", service.instance.keyStore)] {
                let found = try await database.read { db -> [String: [String]] in
                    var found: [String: [String]] = [:]
                    for table in try db.tableNames().sorted() where !unwatchedTables.contains(table) {
                        var rows: [String] = []
                        for row in try db.query("SELECT * FROM \"\(table)\"") {
                            let columns = row.columnNames
                            let values = columns.map { row[$0] }
                            let texts = values.compactMap { value -> String? in if case .text(let text) = value { text } else { nil } }
                            // A row of another organisation is its own, whichever id of A's it names.
                            if case .text(let owner) = row["org_id"], owner != org { continue }
                            guard texts.contains(where: keys.contains), !texts.contains(where: ignoring.contains) else { continue }
                            rows.append(zip(columns, values).filter { !unwatchedColumns.contains($0.0) }.map { column, value in
                                switch value {
                                case .integer(let n): "\(column)=\(n)"
                                case .real(let n): "\(column)=\(n)"
                                case .text(let text): "\(column)=\(text)"
                                case .blob(let data): "\(column)=blob:\(sha256(data).prefix(8).map { String(format: "%02x", $0) }.joined())"
                                case .null: "\(column)=null"
                                }
                            }.joined(separator: " "))
                        }
                        if !rows.isEmpty { found["\(label).\(table)"] = rows.sorted() }
                    }
                    return found
                }
                tables.merge(found) { $1 }
            }
        }
        return MatrixDigest(tables: tables)
    }

    /// The tables whose rows of A differ, with how many rows were added and removed (no values:
    /// they may be A's secrets).
    func changes(since before: MatrixDigest) -> [String] {
        Set(tables.keys).union(before.tables.keys).sorted().compactMap { table in
            let now = Set(tables[table] ?? []), then = Set(before.tables[table] ?? [])
            guard now != then else { return nil }
            return "\(table) (+\(now.subtracting(then).count) −\(then.subtracting(now).count) rows)"
        }
    }
}

extension WebDeployment {
    typealias Identity = Calltrace_Identity_V1_IdentityServiceClient

    /// Firms A (the victim) and B (the attacker) with their data, and A's admin's session and
    /// API token that have expired: minted first, then identity's clock moves 12 hours less a
    /// minute, everything else is made, and two minutes more pass (sessions last 12 hours; the
    /// expired ones were never used where an allow could be cached).
    func matrixFirms() async throws -> (a: MatrixFirm, b: MatrixFirm, expired: (session: String, apiToken: String)) {
        let identity = Identity(try services.identity.client())
        let everything = Calltrace_Identity_V1_Permission.allCases.filter { $0 != .unspecified }
        let names = ("Victim Solicitors", "Attacker Legal")
        let madeA = try await services.identity.newOrganisation(names.0)
        let madeB = try await services.identity.newOrganisation(names.1)
        let expiredAPIToken = try await identity.createApiToken(.with {
            $0.orgID = madeA.org; $0.name = "Soon gone"; $0.permissions = everything; $0.durationSeconds = 3600
        }, options: try bearer(madeA.admin)).token
        services.identity.clock.advance(by: .seconds(12 * 3600 - 60))
        let a = try await matrixFirm(names.0, madeA, caller: "07700900461", words: "Zanzibar marmalade", everything: everything)
        let b = try await matrixFirm(names.1, madeB, caller: "07700900587", words: "Patagonia toffee", everything: everything)
        // B lets operators do anything in B: an operator with B's grant tries A.
        _ = try await identity.createSupportGrant(.with {
            $0.orgID = b.org; $0.permissions = everything; $0.durationSeconds = 13 * 86_400; $0.reason = "Ticket 1"
        }, options: try bearer(b.admin.session))
        services.identity.clock.advance(by: .seconds(120))
        return (a, b, (madeA.admin, expiredAPIToken))
    }

    private func matrixFirm(_ name: String, _ made: (org: String, email: String, admin: String), caller: String, words: String,
                            everything: [Calltrace_Identity_V1_Permission]) async throws -> MatrixFirm {
        let org = made.org
        let identity = Identity(try services.identity.client())
        let session = try await services.identity.login(email: made.email, org: org)
        let number = try await services.calls.open(org, admin: session)
        func user(_ role: Calltrace_Identity_V1_Role, session given: String? = nil, may: [Calltrace_Identity_V1_Permission]) async throws
            -> (user: MatrixFirm.User, may: [Calltrace_Identity_V1_Permission]) {
            var token = given ?? ""
            if given == nil { token = try await services.user(role, in: org, admin: session) }
            let me = try await identity.getCurrentUser(.with { $0.orgID = org }, options: try bearer(token))
            let api = try await apiToken(token, org: org, may)
            return (MatrixFirm.User(id: me.user.userID, email: me.user.email, session: token, apiToken: api.secret, apiTokenID: api.id), me.permissions)
        }
        let admin = try await user(.admin, session: session, may: everything).user
        let analyst = try await user(.analyst, may: [.reportsRead])
        let member = try await user(.member, may: [.reportsRead]).user
        let suspended = try await user(.member, may: [.reportsRead]).user
        _ = try await identity.suspendUser(.with { $0.orgID = org; $0.userID = suspended.id }, options: try bearer(session))

        let transcript = services.calls.transcript
        _ = try await Calltrace_Transcript_V1_TranscriptServiceClient(try transcript.client()).setTranscriptionSettings(.with {
            $0.orgID = org; $0.settings = .with { $0.enabled = true; $0.engine = "manual"; $0.analysisEngine = "local" }
        }, options: try bearer(session))
        let call = "call-\(org.suffix(6))"
        let recording = try await recordedCall(call, org: org, admin: session, file: wavFile(samples: 8000), caller: caller)
        _ = try await Calltrace_Transcript_V1_TranscriptServiceClient(try transcript.client(identity: TemporaryPKI.telephony)).submitTranscript(.with {
            $0.orgID = org; $0.callID = call; $0.segments = [.with { $0.speaker = "caller"; $0.text = "\(words): I was hurt at work." }]
        })
        _ = await transcript.instance.jobs.runDue()
        let link = try await Calltrace_Media_V1_ShareLinkServiceClient(try services.media.client()).createShareLink(.with {
            $0.orgID = org; $0.recordingID = recording.recordingID; $0.ttlSeconds = 3600
        }, options: try bearer(session))
        let requests = Calltrace_Compliance_V1_SubjectRequestServiceClient(try services.calls.compliance.client())
        let request = try await requests.openSubjectRequest(.with {
            $0.orgID = org; $0.kind = .access; $0.phoneNumbers = [caller]; $0.receivedOn = MatrixSeeds.ukDay(services.calls.compliance.clock.nowUnixMs); $0.nation = "england-and-wales"
        }, options: try bearer(session)).request.requestID
        _ = try await requests.recordIdentityCheck(.with { $0.orgID = org; $0.requestID = request; $0.result = .passed }, options: try bearer(session))
        let bundle = try await requests.buildAccessBundle(.with { $0.orgID = org; $0.requestID = request }, options: try bearer(session)).bundle.bundleID
        // The bundle is assembled by a durable job: the control downloads it, so it must be ready first.
        let bundles = Calltrace_Compliance_V1_BundleServiceClient(try services.calls.compliance.client())
        var state = Calltrace_Compliance_V1_BundleState.building
        _ = try await eventually {
            _ = await services.calls.compliance.instance.jobs.runDue()
            state = try await bundles.getBundle(.with { $0.orgID = org; $0.bundleID = bundle }, options: try bearer(session)).bundle.state
            return state != .building
        }
        try #require(state == .ready, "firm \(name)'s access bundle is not ready: \(state)")
        let deletedCall = "\(call)-gone"
        try await services.calls.start(deletedCall, in: org, caller: caller)
        let deletion = try await Calltrace_Compliance_V1_DeletionServiceClient(try services.calls.compliance.client()).deleteCall(.with {
            $0.orgID = org; $0.callID = deletedCall; $0.reason = "Entered in error"
        }, options: try bearer(session)).deletion.deletionID
        let website = try await Calltrace_Transcript_V1_WebsiteServiceClient(try transcript.client()).createWebsite(.with {
            $0.orgID = org; $0.settings = .with { $0.name = "Main site"; $0.origins = ["https://www.\(org.suffix(6)).example"]; $0.targetNumbers = ["020 7946 0000"]; $0.source = "Website" }
        }, options: try bearer(session)).website.websiteID
        let grant = try await identity.createSupportGrant(.with {
            $0.orgID = org; $0.permissions = [.reportsRead]; $0.durationSeconds = 3600; $0.reason = "Ticket 0"
        }, options: try bearer(session)).grantID
        _ = try await identity.revokeSupportGrant(.with { $0.orgID = org; $0.grantID = grant }, options: try bearer(session))
        return MatrixFirm(name: name, org: org, admin: admin, analyst: analyst.user, analystMay: Set(analyst.may), member: member,
                          suspended: suspended, number: number, caller: "+44" + caller.dropFirst(), words: words, call: call,
                          deletedCall: deletedCall, recording: recording.recordingID, link: (link.link.linkID, link.token), request: request, bundle: bundle,
                          deletion: deletion, website: website, revokedGrant: grant)
    }
}
