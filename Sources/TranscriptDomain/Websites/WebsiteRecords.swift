import CallTraceStorage
import Foundation

/// A firm's website with its tag's settings (issue 32).
struct WebsiteRow: Sendable, Equatable {
    let id: String
    let org: String
    var name: String
    let siteKey: String
    /// "https://host[:port]", lower case.
    var origins: [String]
    /// E.164.
    var targetNumbers: [String]
    var source: String
    /// `ClickIdKind` raw values.
    var clickIDs: [Int]
    let createdAt: Int64
    /// E.164, sorted (read with the row).
    var pool: [String] = []
}

/// The marketing a visit came with, stored once per organisation and distinct value (the
/// reports group calls by it without reading the visits).
struct Touch: Sendable, Equatable, Hashable {
    var utmSource = "", utmMedium = "", utmCampaign = "", utmTerm = ""
    var landingPath = "", referrerHost = ""
}

struct VisitRow: Sendable, Equatable {
    let no: Int64
    let id: String
    let org: String
    let websiteID: String
    let visitorIndex: Data
    let touchNo: Int64
    /// Sealed JSON of the click ids by kind name; empty when the visit had none.
    let sealedClickIDs: Data
    /// Kind names, comma-separated ("gclid,wbraid"): what the call page may show.
    let clickIDKinds: String
    let startedAt: Int64
    var lastSeenAt: Int64
}

/// A pool number held for a visit from `reservedAt` until `endedAt` (taken over, or the visit
/// took another number), or else until `lastSeenAt` plus the hold.
struct ReservationRow: Sendable, Equatable {
    let no: Int64
    let org: String
    let websiteID: String
    let number: String
    let visitNo: Int64
    let reservedAt: Int64
    var lastSeenAt: Int64
    var endedAt: Int64?
    let tookOver: Bool

    func heldUntil(hold: Int64) -> Int64 { min(endedAt ?? .max, lastSeenAt + hold) }
    /// From its start to (not including) its end: a number taken over is the new visit's from that moment.
    func isHeld(at time: Int64, hold: Int64) -> Bool { reservedAt <= time && time < heldUntil(hold: hold) }
}

/// A genuine enquiry or matter on a call joined to a visit, for the conversions export.
struct ConvertedCall: Sendable {
    let callID: String
    let startedAt: Int64
    let newEnquiry: Bool
    let matterOpened: Bool
    let visitNo: Int64
}

struct PoolCounts: Sendable, Equatable {
    var visits = 0, reservations = 0, tookOver = 0
}

/// Transcript's SQL for websites, pools, visits and reservations.
protocol WebsiteRecords {
    func insert(_ website: WebsiteRow) throws
    func update(_ website: WebsiteRow) throws
    func website(_ id: String, org: String) throws -> WebsiteRow?
    func website(siteKey: String) throws -> WebsiteRow?
    func websites(org: String) throws -> [WebsiteRow]
    func deleteWebsite(_ id: String, org: String) throws
    /// The website whose pool holds `number`, if any.
    func poolWebsite(of number: String) throws -> (org: String, websiteID: String)?
    func setPool(_ numbers: [String], website: String, org: String) throws

    func touchNo(_ touch: Touch, org: String) throws -> Int64
    func touches(org: String, numbers: Set<Int64>) throws -> [Int64: Touch]
    func insert(_ visit: VisitRow) throws
    func visit(_ id: String) throws -> VisitRow?
    func visit(no: Int64) throws -> VisitRow?
    func touchVisit(_ no: Int64, at time: Int64) throws
    /// The touch of the visitor's first visit still kept.
    func firstTouchNo(org: String, visitorIndex: Data) throws -> Int64?

    func nextVisitNo() throws -> Int64
    func nextReservationNo() throws -> Int64
    func insert(_ reservation: ReservationRow) throws
    func update(_ reservation: ReservationRow) throws
    /// Each of `numbers`' latest reservation by `org` (one index seek a number).
    func latestReservations(of numbers: [String], org: String) throws -> [String: ReservationRow]
    /// A released number leaves the organisation's pools at once; its open reservation ends.
    func removeFromPools(_ number: String, org: String, at time: Int64) throws
    func latestReservation(visitNo: Int64) throws -> ReservationRow?
    /// The latest reservation of `number` made at or before `time`.
    func reservation(of number: String, at time: Int64) throws -> ReservationRow?
    func poolCounts(website: String, from: Int64, before: Int64) throws -> PoolCounts

    func convertedCalls(org: String, from: Int64, before: Int64) throws -> [ConvertedCall]
    func exportedConversions(org: String, callIDs: [String]) throws -> Set<String>
    func markExported(org: String, callID: String, conversion: String, at time: Int64) throws
    /// Retention: up to `limit` visits last seen before `cutoff`, with their reservations.
    func purgeVisits(org: String, lastSeenBefore cutoff: Int64, limit: Int) throws -> Int
    /// Retention: the organisation's touches that no visit or call names any more, and the last
    /// visit number this read saw (a later visit may name one of them again).
    func unusedTouches(org: String) throws -> (touches: [Int64], lastVisitNo: Int64)
    /// Deletes those of `touches` that no visit numbered after `lastVisitNo`, or seen since
    /// `seenSince`, names; the count.
    func deleteTouches(_ touches: [Int64], org: String, unlessNamedByVisitsAfter lastVisitNo: Int64, seenSince: Int64) throws -> Int
    /// Offboarding: every website, pool, visit, reservation, touch and export mark of the organisation.
    func purgeWebsites(org: String) throws -> Int
}

extension SQLiteCallRepository {
    /// Version 7 (issue 32): websites and their pools, visits with their marketing (interned as
    /// touches), reservations kept as history (a call joins the visit that held its number when
    /// it started), the conversions exported; and on calls, the join and the AI's suggestion,
    /// read by the reports from the covering index.
    static let websites = """
        CREATE TABLE websites (
            id TEXT PRIMARY KEY,
            org_id TEXT NOT NULL,
            name TEXT NOT NULL,
            site_key TEXT NOT NULL UNIQUE,
            origins TEXT NOT NULL,
            target_numbers TEXT NOT NULL,
            source TEXT NOT NULL,
            click_ids TEXT NOT NULL,
            created_at_unix_ms INTEGER NOT NULL
        );
        CREATE INDEX websites_by_org ON websites (org_id);
        CREATE TABLE website_pool_numbers (
            number TEXT PRIMARY KEY,
            org_id TEXT NOT NULL,
            website_id TEXT NOT NULL
        );
        CREATE INDEX website_pool_by_website ON website_pool_numbers (website_id);
        CREATE TABLE attribution_touches (
            no INTEGER PRIMARY KEY,
            org_id TEXT NOT NULL,
            utm_source TEXT NOT NULL,
            utm_medium TEXT NOT NULL,
            utm_campaign TEXT NOT NULL,
            utm_term TEXT NOT NULL,
            landing_path TEXT NOT NULL,
            referrer_host TEXT NOT NULL
        );
        CREATE UNIQUE INDEX attribution_touches_by_value
            ON attribution_touches (org_id, utm_source, utm_medium, utm_campaign, utm_term, landing_path, referrer_host);
        CREATE TABLE website_visits (
            no INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            org_id TEXT NOT NULL,
            website_id TEXT NOT NULL,
            visitor_index BLOB NOT NULL,
            touch_no INTEGER NOT NULL,
            click_ids BLOB NOT NULL,
            click_id_kinds TEXT NOT NULL,
            started_at_unix_ms INTEGER NOT NULL,
            last_seen_at_unix_ms INTEGER NOT NULL
        );
        CREATE INDEX website_visits_by_visitor ON website_visits (org_id, visitor_index, started_at_unix_ms);
        CREATE INDEX website_visits_by_last_seen ON website_visits (org_id, last_seen_at_unix_ms);
        CREATE INDEX website_visits_by_website ON website_visits (website_id, started_at_unix_ms);
        CREATE TABLE number_reservations (
            no INTEGER PRIMARY KEY,
            org_id TEXT NOT NULL,
            website_id TEXT NOT NULL,
            number TEXT NOT NULL,
            visit_no INTEGER NOT NULL,
            reserved_at_unix_ms INTEGER NOT NULL,
            last_seen_at_unix_ms INTEGER NOT NULL,
            ended_at_unix_ms INTEGER,
            took_over INTEGER NOT NULL
        );
        CREATE INDEX number_reservations_by_number ON number_reservations (number, reserved_at_unix_ms);
        CREATE INDEX number_reservations_by_visit ON number_reservations (visit_no, reserved_at_unix_ms);
        CREATE INDEX number_reservations_by_website ON number_reservations (website_id, reserved_at_unix_ms);
        CREATE INDEX number_reservations_by_org ON number_reservations (org_id);
        CREATE TABLE exported_conversions (
            org_id TEXT NOT NULL,
            call_id TEXT NOT NULL,
            conversion TEXT NOT NULL,
            exported_at_unix_ms INTEGER NOT NULL,
            PRIMARY KEY (org_id, call_id, conversion)
        );
        ALTER TABLE calls ADD COLUMN visit_join INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE calls ADD COLUMN visit_no INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE calls ADD COLUMN touch_no INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE calls ADD COLUMN first_touch_no INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE calls ADD COLUMN suggested_enquiry INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE calls ADD COLUMN suggested_practice_area INTEGER NOT NULL DEFAULT 0;
        DROP INDEX calls_by_time;
        CREATE INDEX calls_by_time ON calls (org_id, started_at_unix_ms, assignment_no, caller_no, outcome, enquiry, matter_opened,
                                             suggested_enquiry, visit_join, touch_no, first_touch_no);
        """
}

extension SQLiteCallRepository.Transaction: WebsiteRecords {
    // MARK: Websites

    private static let websiteColumns = "id, org_id, name, site_key, origins, target_numbers, source, click_ids, created_at_unix_ms"

    func insert(_ w: WebsiteRow) throws {
        try connection.execute("INSERT INTO websites (\(Self.websiteColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                               w.id, w.org, w.name, w.siteKey, w.origins.joined(separator: "\n"), w.targetNumbers.joined(separator: "\n"),
                               w.source, w.clickIDs.map(String.init).joined(separator: ","), w.createdAt)
    }

    func update(_ w: WebsiteRow) throws {
        try connection.execute("UPDATE websites SET name = ?, origins = ?, target_numbers = ?, source = ?, click_ids = ? WHERE id = ? AND org_id = ?",
                               w.name, w.origins.joined(separator: "\n"), w.targetNumbers.joined(separator: "\n"), w.source,
                               w.clickIDs.map(String.init).joined(separator: ","), w.id, w.org)
    }

    func website(_ id: String, org: String) throws -> WebsiteRow? {
        try withPool(connection.query("SELECT \(Self.websiteColumns) FROM websites WHERE id = ? AND org_id = ?", id, org).first.flatMap(Self.website))
    }

    func website(siteKey: String) throws -> WebsiteRow? {
        try withPool(connection.query("SELECT \(Self.websiteColumns) FROM websites WHERE site_key = ?", siteKey).first.flatMap(Self.website))
    }

    func websites(org: String) throws -> [WebsiteRow] {
        try connection.query("SELECT \(Self.websiteColumns) FROM websites WHERE org_id = ? ORDER BY created_at_unix_ms, id", org)
            .compactMap(Self.website).compactMap(withPool)
    }

    private func withPool(_ website: WebsiteRow?) throws -> WebsiteRow? {
        guard var website else { return nil }
        website.pool = try connection.query("SELECT number FROM website_pool_numbers WHERE website_id = ? ORDER BY number", website.id)
            .compactMap { $0.text("number") }
        return website
    }

    private static func website(_ row: Row) -> WebsiteRow? {
        guard let id = row.text("id"), let org = row.text("org_id"), let key = row.text("site_key") else { return nil }
        func lines(_ column: String) -> [String] { (row.text(column) ?? "").split(separator: "\n").map(String.init) }
        return WebsiteRow(id: id, org: org, name: row.text("name") ?? "", siteKey: key, origins: lines("origins"), targetNumbers: lines("target_numbers"),
                          source: row.text("source") ?? "", clickIDs: (row.text("click_ids") ?? "").split(separator: ",").compactMap { Int($0) },
                          createdAt: row.int("created_at_unix_ms") ?? 0)
    }

    func deleteWebsite(_ id: String, org: String) throws {
        try connection.execute("DELETE FROM website_pool_numbers WHERE website_id = ? AND org_id = ?", id, org)
        try connection.execute("DELETE FROM websites WHERE id = ? AND org_id = ?", id, org)
    }

    func poolWebsite(of number: String) throws -> (org: String, websiteID: String)? {
        try connection.query("SELECT org_id, website_id FROM website_pool_numbers WHERE number = ?", number).first.flatMap { row in
            guard let org = row.text("org_id"), let website = row.text("website_id") else { return nil }
            return (org, website)
        }
    }

    func setPool(_ numbers: [String], website: String, org: String) throws {
        try connection.execute("DELETE FROM website_pool_numbers WHERE website_id = ? AND org_id = ?", website, org)
        for number in numbers {
            try connection.execute("INSERT INTO website_pool_numbers (number, org_id, website_id) VALUES (?, ?, ?)", number, org, website)
        }
    }

    // MARK: Touches and visits

    func touchNo(_ t: Touch, org: String) throws -> Int64 {
        let values: [any SQLiteBindable] = [org, t.utmSource, t.utmMedium, t.utmCampaign, t.utmTerm, t.landingPath, t.referrerHost]
        if let no = try connection.query("""
            SELECT no FROM attribution_touches WHERE org_id = ? AND utm_source = ? AND utm_medium = ? AND utm_campaign = ? AND utm_term = ?
            AND landing_path = ? AND referrer_host = ?
            """, bindings: values).first?.int("no") {
            return no
        }
        let no = (try connection.query("SELECT MAX(no) AS last FROM attribution_touches").first?.int("last") ?? 0) + 1
        try connection.execute("""
            INSERT INTO attribution_touches (no, org_id, utm_source, utm_medium, utm_campaign, utm_term, landing_path, referrer_host)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """, bindings: [no as any SQLiteBindable] + values)
        return no
    }

    func touches(org: String, numbers: Set<Int64>) throws -> [Int64: Touch] {
        guard !numbers.isEmpty else { return [:] }
        var found: [Int64: Touch] = [:]
        let list = numbers.sorted().map(String.init).joined(separator: ", ")  // integers: nothing to escape
        for row in try connection.query("SELECT * FROM attribution_touches WHERE org_id = ? AND no IN (\(list))", org) {
            guard let no = row.int("no") else { continue }
            found[no] = Touch(utmSource: row.text("utm_source") ?? "", utmMedium: row.text("utm_medium") ?? "",
                              utmCampaign: row.text("utm_campaign") ?? "", utmTerm: row.text("utm_term") ?? "",
                              landingPath: row.text("landing_path") ?? "", referrerHost: row.text("referrer_host") ?? "")
        }
        return found
    }

    private static let visitColumns = """
        no, id, org_id, website_id, visitor_index, touch_no, click_ids, click_id_kinds, started_at_unix_ms, last_seen_at_unix_ms
        """

    func insert(_ v: VisitRow) throws {
        try connection.execute("INSERT INTO website_visits (\(Self.visitColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                               v.no, v.id, v.org, v.websiteID, v.visitorIndex, v.touchNo, v.sealedClickIDs, v.clickIDKinds, v.startedAt, v.lastSeenAt)
    }

    func visit(_ id: String) throws -> VisitRow? {
        try connection.query("SELECT \(Self.visitColumns) FROM website_visits WHERE id = ?", id).first.flatMap(Self.visit)
    }

    func visit(no: Int64) throws -> VisitRow? {
        try connection.query("SELECT \(Self.visitColumns) FROM website_visits WHERE no = ?", no).first.flatMap(Self.visit)
    }

    private static func visit(_ row: Row) -> VisitRow? {
        guard let no = row.int("no"), let id = row.text("id"), let org = row.text("org_id"), let website = row.text("website_id"),
              let index = row.blob("visitor_index") else { return nil }
        return VisitRow(no: no, id: id, org: org, websiteID: website, visitorIndex: index, touchNo: row.int("touch_no") ?? 0,
                        sealedClickIDs: row.blob("click_ids") ?? Data(), clickIDKinds: row.text("click_id_kinds") ?? "",
                        startedAt: row.int("started_at_unix_ms") ?? 0, lastSeenAt: row.int("last_seen_at_unix_ms") ?? 0)
    }

    func touchVisit(_ no: Int64, at time: Int64) throws {
        try connection.execute("UPDATE website_visits SET last_seen_at_unix_ms = ? WHERE no = ?", time, no)
    }

    func firstTouchNo(org: String, visitorIndex: Data) throws -> Int64? {
        try connection.query("""
            SELECT touch_no FROM website_visits WHERE org_id = ? AND visitor_index = ? ORDER BY started_at_unix_ms, no LIMIT 1
            """, org, visitorIndex).first?.int("touch_no")
    }

    func nextVisitNo() throws -> Int64 {
        (try connection.query("SELECT MAX(no) AS last FROM website_visits").first?.int("last") ?? 0) + 1
    }

    // MARK: Reservations

    private static let reservationColumns = """
        no, org_id, website_id, number, visit_no, reserved_at_unix_ms, last_seen_at_unix_ms, ended_at_unix_ms, took_over
        """

    func nextReservationNo() throws -> Int64 {
        (try connection.query("SELECT MAX(no) AS last FROM number_reservations").first?.int("last") ?? 0) + 1
    }

    func insert(_ r: ReservationRow) throws {
        try connection.execute("INSERT INTO number_reservations (\(Self.reservationColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                               r.no, r.org, r.websiteID, r.number, r.visitNo, r.reservedAt, r.lastSeenAt, r.endedAt, r.tookOver)
    }

    func update(_ r: ReservationRow) throws {
        try connection.execute("UPDATE number_reservations SET last_seen_at_unix_ms = ?, ended_at_unix_ms = ? WHERE no = ?", r.lastSeenAt, r.endedAt, r.no)
    }

    func latestReservations(of numbers: [String], org: String) throws -> [String: ReservationRow] {
        var latest: [String: ReservationRow] = [:]
        for number in numbers {
            if let reservation = try reservation(of: number, at: .max), reservation.org == org { latest[number] = reservation }
        }
        return latest
    }

    func removeFromPools(_ number: String, org: String, at time: Int64) throws {
        try connection.execute("DELETE FROM website_pool_numbers WHERE number = ? AND org_id = ?", number, org)
        try connection.execute("UPDATE number_reservations SET ended_at_unix_ms = ? WHERE number = ? AND org_id = ? AND ended_at_unix_ms IS NULL",
                               time, number, org)
    }

    func latestReservation(visitNo: Int64) throws -> ReservationRow? {
        try connection.query("""
            SELECT \(Self.reservationColumns) FROM number_reservations WHERE visit_no = ? ORDER BY reserved_at_unix_ms DESC, no DESC LIMIT 1
            """, visitNo).first.flatMap(Self.reservation)
    }

    func reservation(of number: String, at time: Int64) throws -> ReservationRow? {
        try connection.query("""
            SELECT \(Self.reservationColumns) FROM number_reservations WHERE number = ? AND reserved_at_unix_ms <= ?
            ORDER BY reserved_at_unix_ms DESC, no DESC LIMIT 1
            """, number, time).first.flatMap(Self.reservation)
    }

    private static func reservation(_ row: Row) -> ReservationRow? {
        guard let no = row.int("no"), let org = row.text("org_id"), let website = row.text("website_id"), let number = row.text("number"),
              let visit = row.int("visit_no") else { return nil }
        return ReservationRow(no: no, org: org, websiteID: website, number: number, visitNo: visit, reservedAt: row.int("reserved_at_unix_ms") ?? 0,
                              lastSeenAt: row.int("last_seen_at_unix_ms") ?? 0, endedAt: row.int("ended_at_unix_ms"),
                              tookOver: (row.int("took_over") ?? 0) != 0)
    }

    func poolCounts(website: String, from: Int64, before: Int64) throws -> PoolCounts {
        let visits = try connection.query("""
            SELECT COUNT(*) AS n FROM website_visits WHERE website_id = ? AND started_at_unix_ms >= ? AND started_at_unix_ms < ?
            """, website, from, before).first?.int("n") ?? 0
        let reservations = try connection.query("""
            SELECT COUNT(*) AS n, CAST(SUM(took_over) AS BIGINT) AS taken FROM number_reservations
            WHERE website_id = ? AND reserved_at_unix_ms >= ? AND reserved_at_unix_ms < ?
            """, website, from, before).first
        return PoolCounts(visits: Int(visits), reservations: Int(reservations?.int("n") ?? 0), tookOver: Int(reservations?.int("taken") ?? 0))
    }

    // MARK: Conversions

    func convertedCalls(org: String, from: Int64, before: Int64) throws -> [ConvertedCall] {
        try connection.query("""
            SELECT id, started_at_unix_ms, enquiry, matter_opened, visit_no FROM calls
            WHERE org_id = ? AND started_at_unix_ms >= ? AND started_at_unix_ms < ? AND visit_no > 0 AND (enquiry = 1 OR matter_opened = 1)
            ORDER BY started_at_unix_ms, id
            """, org, from, before).compactMap { row in
            guard let id = row.text("id") else { return nil }
            return ConvertedCall(callID: id, startedAt: row.int("started_at_unix_ms") ?? 0, newEnquiry: row.int("enquiry") == 1,
                                 matterOpened: row.int("matter_opened") == 1, visitNo: row.int("visit_no") ?? 0)
        }
    }

    func exportedConversions(org: String, callIDs: [String]) throws -> Set<String> {
        var exported = Set<String>()
        for id in callIDs {
            for row in try connection.query("SELECT conversion FROM exported_conversions WHERE org_id = ? AND call_id = ?", org, id) {
                if let conversion = row.text("conversion") { exported.insert("\(id)/\(conversion)") }
            }
        }
        return exported
    }

    func markExported(org: String, callID: String, conversion: String, at time: Int64) throws {
        if try connection.query("SELECT 1 AS found FROM exported_conversions WHERE org_id = ? AND call_id = ? AND conversion = ?",
                                org, callID, conversion).isEmpty {
            try connection.execute("INSERT INTO exported_conversions (org_id, call_id, conversion, exported_at_unix_ms) VALUES (?, ?, ?, ?)",
                                   org, callID, conversion, time)
        }
    }

    // MARK: Retention and offboarding

    func purgeVisits(org: String, lastSeenBefore cutoff: Int64, limit: Int) throws -> Int {
        let batch = "SELECT no FROM website_visits WHERE org_id = ? AND last_seen_at_unix_ms < ? ORDER BY last_seen_at_unix_ms, no LIMIT \(limit)"
        try connection.execute("DELETE FROM number_reservations WHERE visit_no IN (\(batch))", org, cutoff)
        return try connection.execute("DELETE FROM website_visits WHERE no IN (\(batch))", org, cutoff)
    }

    func unusedTouches(org: String) throws -> (touches: [Int64], lastVisitNo: Int64) {
        // Each NOT IN list is read once (the visits' table, the calls' covering index), not per touch.
        let lastVisitNo = try connection.query("SELECT MAX(no) AS last FROM website_visits").first?.int("last") ?? 0
        let touches = try connection.query("""
            SELECT no FROM attribution_touches WHERE org_id = ?
            AND no NOT IN (SELECT touch_no FROM website_visits WHERE org_id = ?)
            AND no NOT IN (SELECT touch_no FROM calls WHERE org_id = ?) AND no NOT IN (SELECT first_touch_no FROM calls WHERE org_id = ?)
            """, org, org, org, org).compactMap { $0.int("no") }
        return (touches, lastVisitNo)
    }

    func deleteTouches(_ touches: [Int64], org: String, unlessNamedByVisitsAfter lastVisitNo: Int64, seenSince: Int64) throws -> Int {
        guard !touches.isEmpty else { return 0 }
        let list = touches.map(String.init).joined(separator: ", ")  // integers: nothing to escape
        // Both by index: the primary key's range, and the organisation's visits by last activity.
        return try connection.execute("""
            DELETE FROM attribution_touches WHERE org_id = ? AND no IN (\(list))
            AND no NOT IN (SELECT touch_no FROM website_visits WHERE no > ?)
            AND no NOT IN (SELECT touch_no FROM website_visits WHERE org_id = ? AND last_seen_at_unix_ms >= ?)
            """, org, lastVisitNo, org, seenSince)
    }

    func purgeWebsites(org: String) throws -> Int {
        try connection.execute("DELETE FROM number_reservations WHERE org_id = ?", org)
        let visits = try connection.execute("DELETE FROM website_visits WHERE org_id = ?", org)
        try connection.execute("DELETE FROM attribution_touches WHERE org_id = ?", org)
        try connection.execute("DELETE FROM website_pool_numbers WHERE org_id = ?", org)
        try connection.execute("DELETE FROM exported_conversions WHERE org_id = ?", org)
        try connection.execute("DELETE FROM websites WHERE org_id = ?", org)
        return visits
    }
}
