import CallTraceKeys
import CallTraceServiceHost
import CallTraceSync
import Foundation

/// The ad platforms' click ids a website tag may capture after consent (`ClickIdKind`).
enum ClickIDKind: Int, CaseIterable, Sendable {
    case gclid = 1, gbraid, wbraid, msclkid, fbclid

    var name: String { "\(self)" }
    /// Google Ads' three: the default (the export reads the gclid).
    static let google: [ClickIDKind] = [.gclid, .gbraid, .wbraid]
}

/// What a firm sets for a website.
struct WebsiteSettings: Sendable {
    var name: String
    var origins: [String]
    var targetNumbers: [String]
    var source: String
    /// Empty: Google's three.
    var clickIDs: [ClickIDKind]
}

/// What the website tag sends after consent.
struct VisitStart: Sendable {
    var siteKey: String
    var origin: String
    var visitorID = ""
    var visitID = ""
    var touch = Touch()
    /// By kind name ("gclid"); kinds the website does not capture are dropped.
    var clickIDs: [String: String] = [:]
}

/// A number for the visitor.
struct Reserved: Sendable, Equatable {
    let number: String
    let visitID: String
    let visitorID: String
    /// The source's own number (an empty pool): no visit was kept.
    let isSourceNumber: Bool
}

/// What the tag shows before consent.
struct WebsiteTag: Sendable {
    let website: WebsiteRow
    /// Empty when the source has no number of its own.
    let sourceNumber: String
}

struct PoolStatus: Sendable, Equatable {
    let size: Int
    let held: Int
    let counts: PoolCounts
}

/// A conversion for an ad platform: a genuine enquiry or a matter, with the visit's click id.
struct Conversion: Sendable, Equatable {
    let kind: ClickIDKind
    let clickID: String
    /// "enquiry" or "matter".
    let name: String
    let at: Int64
    let callID: String
}

struct ConversionExport: Sendable {
    let conversions: [Conversion]
    let alreadyExported: Int
    let withoutClickID: Int

    /// Google Ads' click-conversion import file (its documented template): the time zone line
    /// (a zone id, as Google recommends against summer-time errors), the header, and a line per
    /// conversion with its London time, that time's own offset (which Google reads before the
    /// zone line: the repeated autumn hour is told apart), and no value.
    func googleAdsCSV(enquiryName: String, matterName: String) -> String {
        func field(_ text: String) -> String {
            text.contains(where: { $0 == "," || $0 == "\"" }) ? "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : text
        }
        var lines = ["Parameters:TimeZone=Europe/London", "Google Click ID,Conversion Name,Conversion Time,Conversion Value,Conversion Currency"]
        for conversion in conversions {
            let name = conversion.name == "matter" ? matterName : enquiryName
            lines.append("\(field(conversion.clickID)),\(field(name)),\(LondonTime.dateTimeWithOffset(unixMs: conversion.at)),,")
        }
        return lines.joined(separator: "\r\n") + "\r\n"
    }
}

/// How a call joins a website visit (`VisitJoin` in transcript.proto).
enum VisitJoin: Int, Sendable {
    case staticNumber = 1, joined, lapsed, noReservation
}

/// New visits per website and minute, in this process (`WebsiteRules.visitsPerMinute`).
final class WebsiteLimiter: Sendable {
    private let windows = Locked<[String: (minute: Int64, count: Int)]>([:])

    func admit(_ website: String, at now: Int64, perMinute limit: Int) -> Bool {
        windows.withLock { windows in
            let minute = now / 60_000
            if windows.count > 10_000 { windows = windows.filter { $0.value.minute == minute } }
            var window = windows[website].flatMap { $0.minute == minute ? $0 : nil } ?? (minute: minute, count: 0)
            guard window.count < limit else { return false }
            window.count += 1
            windows[website] = window
            return true
        }
    }
}

/// Website attribution (issue 32): websites and their number pools, the visits the tag reports
/// after consent, the reservations that hold a pool number for a visit, the join of a call to
/// the visit that held its number when it started, and the conversions handed to Google Ads.
/// Visitor ids are kept only as a blind index under the firm's key; click ids are sealed.
struct WebsiteRules: Sendable {
    let repository: any CallRepository
    let keys: KeyRing
    let outbox: AuditOutbox
    let clock: any WallClock

    /// A number stays the visit's this long after its last renewal (the peers hold about 20 minutes).
    static let hold: Int64 = 20 * 60 * 1000
    static let maxPool = 200

    // MARK: Websites (settings.manage)

    func create(_ settings: WebsiteSettings, org: String, by actor: String) async throws -> WebsiteRow {
        let valid = try Self.validate(settings)
        let key = "ws_" + (try SecretBytes.random(16)).hexString
        let website = WebsiteRow(id: "web_" + (try SecretBytes.random(12)).hexString, org: org, name: valid.name, siteKey: key,
                                 origins: valid.origins, targetNumbers: valid.targetNumbers, source: valid.source,
                                 clickIDs: valid.clickIDs.map(\.rawValue), createdAt: clock.nowUnixMs)
        try keys.createKeys(for: org)
        return try await repository.write { [outbox] tx in
            try tx.insert(website)
            try outbox.record(AuditRecord(org: org, actor: actor, action: .websiteCreated, resource: .website(website.id),
                                          detail: "origins=\(website.origins.count); targets=\(website.targetNumbers.count)"), in: tx.connection)
            return website
        }
    }

    func update(_ id: String, _ settings: WebsiteSettings, org: String, by actor: String) async throws -> WebsiteRow {
        let valid = try Self.validate(settings)
        return try await repository.write { [outbox] tx in
            guard var website = try tx.website(id, org: org) else { throw Self.notFound(id, org) }
            website.name = valid.name
            website.origins = valid.origins
            website.targetNumbers = valid.targetNumbers
            website.source = valid.source
            website.clickIDs = valid.clickIDs.map(\.rawValue)
            try tx.update(website)
            try outbox.record(AuditRecord(org: org, actor: actor, action: .websiteUpdated, resource: .website(id),
                                          detail: "origins=\(website.origins.count); targets=\(website.targetNumbers.count)"), in: tx.connection)
            return website
        }
    }

    func websites(org: String) async throws -> [WebsiteRow] {
        try await repository.read { tx in try tx.websites(org: org) }
    }

    func delete(_ id: String, org: String, by actor: String) async throws {
        try await repository.write { [outbox] tx in
            guard try tx.website(id, org: org) != nil else { throw Self.notFound(id, org) }
            try tx.deleteWebsite(id, org: org)
            try outbox.record(AuditRecord(org: org, actor: actor, action: .websiteDeleted, resource: .website(id)), in: tx.connection)
        }
    }

    /// Replaces the pool with `numbers`: each one of the firm's current tracking numbers, in no
    /// other website's pool.
    func setPool(_ id: String, numbers raw: [String], org: String, by actor: String) async throws -> WebsiteRow {
        guard raw.count <= Self.maxPool else { throw DomainError.invalid("a pool holds at most \(Self.maxPool) numbers") }
        let numbers = Array(Set(try raw.map { try CallRules.e164($0, field: "numbers") })).sorted()
        return try await repository.write { [outbox] tx in
            guard try tx.website(id, org: org) != nil else { throw Self.notFound(id, org) }
            for (index, number) in numbers.enumerated() {
                guard let current = try tx.currentAssignment(of: number), current.org == org else {
                    throw DomainError.invalid("numbers[\(index)] is not one of the organisation's tracking numbers (assign it to a source first)")
                }
                if let pool = try tx.poolWebsite(of: number), pool.websiteID != id {
                    guard pool.org == org else {
                        throw DomainError.invalid("numbers[\(index)] is not one of the organisation's tracking numbers (assign it to a source first)")
                    }
                    throw DomainError.alreadyExists("numbers[\(index)] is in another website's pool")
                }
            }
            try tx.setPool(numbers, website: id, org: org)
            try outbox.record(AuditRecord(org: org, actor: actor, action: .websitePoolSet, resource: .website(id), detail: "numbers=\(numbers.count)"),
                              in: tx.connection)
            guard let website = try tx.website(id, org: org) else { throw Self.notFound(id, org) }
            return website
        }
    }

    func poolStatus(_ id: String, org: String, from: Int64, before: Int64) async throws -> PoolStatus {
        let now = clock.nowUnixMs
        let (from, before) = from == 0 && before == 0 ? (now - 30 * 86_400_000, now + 1) : (from, before)
        guard from < before else { throw DomainError.invalid("from_unix_ms must be before before_unix_ms") }
        return try await repository.read { tx in
            guard let website = try tx.website(id, org: org) else { throw Self.notFound(id, org) }
            let held = try tx.latestReservations(of: website.pool, org: org).values.filter { $0.isHeld(at: now, hold: Self.hold) }.count
            return PoolStatus(size: website.pool.count, held: held, counts: try tx.poolCounts(website: id, from: from, before: before))
        }
    }

    private static func notFound(_ id: String, _ org: String) -> DomainError {
        DomainError.notFound("website \(id) not found in organisation \(org)")
    }

    static func validate(_ settings: WebsiteSettings) throws -> WebsiteSettings {
        let name = try DomainText.line(settings.name, "name", max: 100, required: true)
        let source = try DomainText.line(settings.source, "source", max: 100, required: true)
        guard (1...10).contains(settings.origins.count) else { throw DomainError.invalid("give one to ten origins (https://www.example.co.uk)") }
        let origins = try settings.origins.enumerated().map { index, origin in
            guard let normal = Self.origin(origin) else {
                throw DomainError.invalid("origins[\(index)] is not an origin: https://host[:port], nothing after it (http only for localhost)")
            }
            return normal
        }
        guard (1...10).contains(settings.targetNumbers.count) else {
            throw DomainError.invalid("give one to ten target numbers: the firm's own numbers on the website, which the tag replaces")
        }
        let targets = try settings.targetNumbers.enumerated().map { try CallRules.e164($1, field: "target_numbers[\($0)]") }
        let clickIDs = settings.clickIDs.isEmpty ? ClickIDKind.google : Array(Set(settings.clickIDs)).sorted { $0.rawValue < $1.rawValue }
        return WebsiteSettings(name: name, origins: Array(Set(origins)).sorted(), targetNumbers: Array(Set(targets)).sorted(), source: source,
                               clickIDs: clickIDs)
    }

    /// "https://host[:port]" in lower case, or nil: a scheme, a host, perhaps a port, nothing
    /// else. Plain http only for localhost and 127.0.0.1 (a developer's machine).
    static func origin(_ raw: String) -> String? {
        let text = raw.trimmingCharacters(in: .whitespaces).lowercased()
        guard text.count <= 200, let components = URLComponents(string: text), let scheme = components.scheme, let host = components.host,
              !host.isEmpty, components.path.isEmpty || components.path == "/", components.query == nil, components.fragment == nil,
              components.user == nil, components.password == nil,
              host.allSatisfy({ $0.isLetter && $0.isASCII || $0.isNumber || $0 == "." || $0 == "-" }) else { return nil }
        let local = host == "localhost" || host == "127.0.0.1"
        guard scheme == "https" || scheme == "http" && local else { return nil }
        let port = components.port.map { ":\($0)" } ?? ""
        return "\(scheme)://\(host)\(port)"
    }

    // MARK: The website tag (web gateways, for anonymous visitors)

    /// The website for a tag's key, if the page's origin is one of its own. An unknown key and
    /// a foreign origin get the same answer, so neither can be probed.
    private static func website(key: String, origin: String, in tx: any CallTransaction) throws -> WebsiteRow {
        guard key.hasPrefix("ws_"), key.count <= 64, let website = try tx.website(siteKey: key),
              let origin = Self.origin(origin), website.origins.contains(origin) else {
            throw Self.unknown
        }
        return website
    }

    /// One answer for an unknown key, a foreign origin and a visit not of this website: none tells which.
    static let unknown = DomainError.notFound("no website has this key and origin, or it has no such visit")

    /// A reservation renewed this recently is never taken over, however full the pool: a burst of
    /// requests (one script looping on the public key) cannot take the numbers of the visitors
    /// reading the site; it gets the source's number instead.
    static let takeoverAge: Int64 = 5 * 60 * 1000
    /// New visits a website takes a minute, whatever their addresses (the web gateway also limits
    /// each address): past it, the source's number and no visit.
    static let visitsPerMinute = 3_000
    private static let limiter = WebsiteLimiter()

    func tag(siteKey: String, origin: String) async throws -> WebsiteTag {
        try await repository.read { tx in
            let website = try Self.website(key: siteKey, origin: origin, in: tx)
            return WebsiteTag(website: website, sourceNumber: try Self.sourceNumber(of: website, in: tx))
        }
    }

    /// One of the source's current numbers that is in no pool (the lowest, so it stays put).
    private static func sourceNumber(of website: WebsiteRow, in tx: any CallTransaction) throws -> String {
        try tx.assignments(org: website.org, includeHistory: false)
            .filter { $0.source == website.source }
            .map(\.number)
            .sorted()
            .first { try tx.poolWebsite(of: $0) == nil } ?? ""
    }

    /// A visit, and a pool number held for it; an existing visit of this website renews instead.
    func reserve(_ start: VisitStart) async throws -> Reserved {
        if !start.visitID.isEmpty {
            let renewed = try await renew(siteKey: start.siteKey, origin: start.origin, visitID: start.visitID)
            return Reserved(number: renewed.number, visitID: start.visitID, visitorID: start.visitorID, isSourceNumber: false)
        }
        let visitorID = Self.isVisitorID(start.visitorID) ? start.visitorID : "v1_" + (try SecretBytes.random(16)).hexString
        let touch = try Self.validate(start.touch)
        let now = clock.nowUnixMs
        let visitID = "vis_" + (try SecretBytes.random(16)).hexString
        return try await repository.write { [keys] tx in
            let website = try Self.website(key: start.siteKey, origin: start.origin, in: tx)
            guard !website.pool.isEmpty, Self.limiter.admit(website.id, at: now, perMinute: Self.visitsPerMinute) else {
                return Reserved(number: try Self.sourceNumber(of: website, in: tx), visitID: "", visitorID: visitorID, isSourceNumber: true)
            }
            let org = website.org
            // Scoped to the website: the same visitor id on another firm's site is another visitor.
            let index = try keys.blindIndex(visitorID, kind: "visitor:\(website.id)", org: org)
            let clicks = Self.clickIDs(start.clickIDs, capturing: website.clickIDs)
            let sealed = clicks.isEmpty ? Data() : try keys.seal(try JSONEncoder().encode(clicks), org: org, table: "website_visits",
                                                                  column: "click_ids", row: visitID)
            let visit = VisitRow(no: try tx.nextVisitNo(), id: visitID, org: org, websiteID: website.id, visitorIndex: index,
                                 touchNo: try tx.touchNo(touch, org: org), sealedClickIDs: sealed,
                                 clickIDKinds: clicks.keys.sorted().joined(separator: ","), startedAt: now, lastSeenAt: now)
            try tx.insert(visit)
            // No number free or old enough to take over: the source's, and the visit renews into one later.
            guard let number = try Self.hold(for: visit, website: website, at: now, in: tx) else {
                return Reserved(number: try Self.sourceNumber(of: website, in: tx), visitID: visitID, visitorID: visitorID, isSourceNumber: true)
            }
            return Reserved(number: number, visitID: visitID, visitorID: visitorID, isSourceNumber: false)
        }
    }

    /// Keeps the visit's number; a lapsed or taken-over reservation gets one again.
    func renew(siteKey: String, origin: String, visitID: String) async throws -> (number: String, changed: Bool) {
        let now = clock.nowUnixMs
        return try await repository.write { tx in
            let website = try Self.website(key: siteKey, origin: origin, in: tx)
            guard visitID.hasPrefix("vis_"), visitID.count <= 64, let visit = try tx.visit(visitID), visit.websiteID == website.id else { throw Self.unknown }
            try tx.touchVisit(visit.no, at: now)
            if var current = try tx.latestReservation(visitNo: visit.no), current.isHeld(at: now, hold: Self.hold) {
                if website.pool.contains(current.number) {
                    current.lastSeenAt = now
                    try tx.update(current)
                    return (current.number, false)
                }
                current.endedAt = now  // taken out of the pool: the visit moves to another number
                try tx.update(current)
            }
            guard let number = try Self.hold(for: visit, website: website, at: now, in: tx) else { return (try Self.sourceNumber(of: website, in: tx), true) }
            return (number, true)
        }
    }

    /// Reserves a pool number for `visit`: a free one (the one free longest, so a late call to
    /// a number is least likely to meet its next visitor), else the least recently active
    /// reservation's, taken over and counted.
    private static func hold(for visit: VisitRow, website: WebsiteRow, at now: Int64, in tx: any CallTransaction) throws -> String? {
        let latest = try tx.latestReservations(of: website.pool, org: website.org)
        let free = website.pool.filter { number in latest[number].map { !$0.isHeld(at: now, hold: hold) } ?? true }
        var number: String
        var tookOver = false
        if let pick = free.min(by: { (latest[$0]?.heldUntil(hold: hold) ?? .min, $0) < (latest[$1]?.heldUntil(hold: hold) ?? .min, $1) }) {
            number = pick
        } else {
            guard var oldest = latest.values.min(by: { ($0.lastSeenAt, $0.no) < ($1.lastSeenAt, $1.no) }),
                  now - oldest.lastSeenAt >= takeoverAge else {
                return nil
            }
            oldest.endedAt = now
            try tx.update(oldest)
            number = oldest.number
            tookOver = true
        }
        try tx.insert(ReservationRow(no: try tx.nextReservationNo(), org: website.org, websiteID: website.id, number: number, visitNo: visit.no,
                                     reservedAt: now, lastSeenAt: now, endedAt: nil, tookOver: tookOver))
        return number
    }

    static func isVisitorID(_ id: String) -> Bool {
        id.count == 35 && id.hasPrefix("v1_") && id.dropFirst(3).allSatisfy { $0.isHexDigit && !$0.isUppercase }
    }

    /// The marketing as kept: one line each, bounded; the landing page's path alone (a query
    /// or fragment can carry a visitor's details), the referrer's host alone.
    static func validate(_ touch: Touch) throws -> Touch {
        func field(_ value: String, _ name: String, max: Int) throws -> String {
            try DomainText.line(String(value.prefix(max)), name, max: max)
        }
        var path = touch.landingPath
        if let cut = path.firstIndex(where: { $0 == "?" || $0 == "#" }) { path = String(path[..<cut]) }
        guard path.isEmpty || path.hasPrefix("/") else { throw DomainError.invalid("landing_path is a path (/…)") }
        let host = touch.referrerHost.lowercased()
        guard host.allSatisfy({ $0.isLetter && $0.isASCII || $0.isNumber || $0 == "." || $0 == "-" || $0 == ":" }) else {
            throw DomainError.invalid("referrer_host is a host name")
        }
        return Touch(utmSource: try field(touch.utmSource, "utm_source", max: 100), utmMedium: try field(touch.utmMedium, "utm_medium", max: 100),
                     utmCampaign: try field(touch.utmCampaign, "utm_campaign", max: 100), utmTerm: try field(touch.utmTerm, "utm_term", max: 100),
                     landingPath: try field(path, "landing_path", max: 200), referrerHost: try field(host, "referrer_host", max: 100))
    }

    /// The click ids the website captures, each well formed (letters, digits, `-`, `_`, `.`; at
    /// most 200); others are dropped, not refused: a visitor is never refused a number for them.
    static func clickIDs(_ given: [String: String], capturing kinds: [Int]) -> [String: String] {
        var kept: [String: String] = [:]
        for kind in kinds.compactMap(ClickIDKind.init(rawValue:)) {
            guard let value = given[kind.name], (1...200).contains(value.count),
                  value.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) else { continue }
            kept[kind.name] = value
        }
        return kept
    }

    // MARK: The join (in StartCall's transaction)

    /// How an inbound call to `number` at `time` joins a visit of `org`.
    static func join(number: String, at time: Int64, org: String, in tx: any CallTransaction) throws -> VisitLink {
        guard let reservation = try tx.reservation(of: number, at: time), reservation.org == org else {
            let pooled = try tx.poolWebsite(of: number).map { $0.org == org } ?? false
            return VisitLink(join: (pooled ? VisitJoin.noReservation : .staticNumber).rawValue)
        }
        guard reservation.isHeld(at: time, hold: hold), let visit = try tx.visit(no: reservation.visitNo) else {
            // Out of every pool since (or its website deleted): the number is a static one now.
            let pooled = try tx.poolWebsite(of: number).map { $0.org == org } ?? false
            return VisitLink(join: (pooled ? VisitJoin.lapsed : .staticNumber).rawValue)
        }
        let first = try tx.firstTouchNo(org: org, visitorIndex: visit.visitorIndex) ?? visit.touchNo
        return VisitLink(join: VisitJoin.joined.rawValue, visitNo: visit.no, touchNo: visit.touchNo, firstTouchNo: first)
    }

    /// What the call page shows of a joined visit: its marketing and its first visit's.
    func attribution(of call: CallRow) async throws -> (visit: VisitRow?, touch: Touch?, first: Touch?) {
        guard call.visit.touchNo > 0 else { return (nil, nil, nil) }
        return try await repository.read { tx in
            let touches = try tx.touches(org: call.org, numbers: [call.visit.touchNo, call.visit.firstTouchNo])
            let visit = try tx.visit(no: call.visit.visitNo).flatMap { $0.org == call.org ? $0 : nil }
            return (visit, touches[call.visit.touchNo], touches[call.visit.firstTouchNo])
        }
    }

    // MARK: Conversions (Google Ads offline click conversions)

    /// The period's confirmed genuine enquiries and matters on calls joined to a visit with a
    /// Google click id; those exported before left out unless asked, those given now recorded
    /// unless `preview`.
    func exportConversions(org: String, from: Int64, before: Int64, includeExported: Bool, preview: Bool, by actor: String) async throws
        -> ConversionExport {
        guard from < before else { throw DomainError.invalid("from_unix_ms must be before before_unix_ms") }
        let now = clock.nowUnixMs
        return try await repository.write { [keys, outbox] tx in
            let calls = try tx.convertedCalls(org: org, from: from, before: before)
            let exported = try tx.exportedConversions(org: org, callIDs: calls.map(\.callID))
            var conversions: [Conversion] = []
            var already = 0, withoutClickID = 0
            for call in calls {
                let names = (call.newEnquiry ? ["enquiry"] : []) + (call.matterOpened ? ["matter"] : [])
                guard let visit = try tx.visit(no: call.visitNo), visit.org == org, !visit.sealedClickIDs.isEmpty,
                      let clicks = try? JSONDecoder().decode([String: String].self,
                                                             from: keys.open(visit.sealedClickIDs, org: org, table: "website_visits",
                                                                             column: "click_ids", row: visit.id)),
                      let click = clicks[ClickIDKind.gclid.name] else {
                    withoutClickID += names.count
                    continue
                }
                for name in names {
                    if exported.contains("\(call.callID)/\(name)") && !includeExported {
                        already += 1
                        continue
                    }
                    conversions.append(Conversion(kind: .gclid, clickID: click, name: name, at: call.startedAt, callID: call.callID))
                    if !preview { try tx.markExported(org: org, callID: call.callID, conversion: name, at: now) }
                }
            }
            if !preview && !conversions.isEmpty {
                try outbox.record(AuditRecord(org: org, actor: actor, action: .conversionsExported, resource: .organisation(org),
                                              detail: "conversions=\(conversions.count); from \(from) before \(before)"), in: tx.connection)
            }
            return ConversionExport(conversions: conversions, alreadyExported: already, withoutClickID: withoutClickID)
        }
    }
}
