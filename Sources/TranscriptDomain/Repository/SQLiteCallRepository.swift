import CallTraceStorage
import Foundation

/// Transcript's SQL, all of it, in the subset SQLite and PostgreSQL share: ids chosen by the
/// service, times as integer UTC milliseconds, no upserts (the rules read, then insert or update,
/// in one transaction).
struct SQLiteCallRepository: CallRepository, SQLiteRepository {
    static let schema = """
        CREATE TABLE tracking_numbers (
            id TEXT PRIMARY KEY,
            no INTEGER NOT NULL UNIQUE,
            number TEXT NOT NULL,
            org_id TEXT NOT NULL,
            source TEXT NOT NULL,
            channel INTEGER NOT NULL,
            campaign TEXT NOT NULL,
            notice TEXT NOT NULL,
            effective_from_unix_ms INTEGER NOT NULL,
            effective_until_unix_ms INTEGER
        );
        CREATE INDEX tracking_numbers_by_number ON tracking_numbers (number, effective_from_unix_ms);
        CREATE INDEX tracking_numbers_by_org ON tracking_numbers (org_id, number);
        CREATE TABLE calls (
            id TEXT NOT NULL,
            org_id TEXT NOT NULL,
            tracking_number TEXT NOT NULL,
            source TEXT NOT NULL,
            channel INTEGER NOT NULL,
            campaign TEXT NOT NULL,
            caller_number BLOB NOT NULL,
            caller_index BLOB NOT NULL,
            caller_no INTEGER NOT NULL,
            assignment_no INTEGER NOT NULL,
            direction INTEGER NOT NULL,
            started_at_unix_ms INTEGER NOT NULL,
            answered_at_unix_ms INTEGER NOT NULL,
            ended_at_unix_ms INTEGER NOT NULL,
            duration_ms INTEGER NOT NULL,
            outcome INTEGER NOT NULL,
            recording_id TEXT NOT NULL,
            callback_of TEXT NOT NULL,
            recorded INTEGER NOT NULL,
            enquiry INTEGER NOT NULL,
            matter_opened INTEGER NOT NULL,
            matter_reference BLOB,
            practice_area INTEGER NOT NULL,
            PRIMARY KEY (org_id, id)
        );
        CREATE INDEX calls_by_time ON calls (org_id, started_at_unix_ms, assignment_no, caller_no, outcome, enquiry, matter_opened);
        CREATE TABLE callers (
            org_id TEXT NOT NULL,
            caller_index BLOB NOT NULL,
            caller_no INTEGER NOT NULL,
            PRIMARY KEY (org_id, caller_index)
        );
        CREATE UNIQUE INDEX callers_by_no ON callers (org_id, caller_no);
        CREATE INDEX calls_by_caller ON calls (org_id, caller_index, started_at_unix_ms);
        CREATE TABLE transcripts (
            org_id TEXT NOT NULL,
            call_id TEXT NOT NULL,
            engine TEXT NOT NULL,
            segments BLOB NOT NULL,
            redactions INTEGER NOT NULL,
            created_at_unix_ms INTEGER NOT NULL,
            PRIMARY KEY (org_id, call_id)
        );
        CREATE TABLE analyses (
            org_id TEXT NOT NULL,
            call_id TEXT NOT NULL,
            analysis BLOB NOT NULL,
            created_at_unix_ms INTEGER NOT NULL,
            PRIMARY KEY (org_id, call_id)
        );
        CREATE TABLE transcriptions (
            org_id TEXT NOT NULL,
            call_id TEXT NOT NULL,
            recording_id TEXT NOT NULL,
            state INTEGER NOT NULL,
            failure_reason TEXT NOT NULL,
            updated_at_unix_ms INTEGER NOT NULL,
            PRIMARY KEY (org_id, call_id)
        );
        CREATE TABLE transcription_settings (
            org_id TEXT PRIMARY KEY,
            enabled INTEGER NOT NULL,
            engine TEXT NOT NULL,
            analysis_engine TEXT NOT NULL,
            model TEXT NOT NULL,
            language TEXT NOT NULL
        );
        CREATE TABLE suppressions (
            org_id TEXT NOT NULL,
            caller_index BLOB NOT NULL,
            caller_number BLOB NOT NULL,
            reason BLOB NOT NULL,
            added_at_unix_ms INTEGER NOT NULL,
            PRIMARY KEY (org_id, caller_index)
        );
        """

    /// Version 5: the call events the firms' own systems read (`ListCallEvents`), each written in
    /// the transaction of what it tells and deleted with its call; sequences per organisation
    /// from a counter, so a deleted event's number is never given again.
    static let callEvents = """
        CREATE TABLE call_events (
            org_id TEXT NOT NULL,
            sequence_no INTEGER NOT NULL,
            kind INTEGER NOT NULL,
            call_id TEXT NOT NULL,
            occurred_at_unix_ms INTEGER NOT NULL,
            PRIMARY KEY (org_id, sequence_no)
        );
        CREATE INDEX call_events_by_call ON call_events (org_id, call_id);
        CREATE TABLE call_event_sequences (
            org_id TEXT PRIMARY KEY,
            last_sequence_no INTEGER NOT NULL
        );
        """

    /// Version 6 (issue 31): each current tracking number's routing, sealed whole (its
    /// destinations are the firm's staff's phones), kept per organisation and number so it
    /// outlives a move to another source; and the firm's block list, shaped as suppressions are.
    /// Version 8: what the attribution report reads of a call, in one number the database keeps
    /// (issue 32's budget: a 12-month report over 1M calls in 500 ms). Reading a column from an
    /// index entry is most of a scan's cost, so the report's index holds the caller and the
    /// call's outcome, enquiry, matter, suggestion and visit join as one integer,
    /// `report_word`: the caller number in the low 32 bits and `reportBits` above them (see
    /// `AttributionScanRow`). Triggers keep it, so no writer can forget it (a virtual generated
    /// column would do the same, but SQLite 3.40 reads one through the table, not the index; in
    /// PostgreSQL it is a stored generated column, the one place this schema's SQL differs).
    static let reportWord = """
        ALTER TABLE calls ADD COLUMN report_word INTEGER NOT NULL DEFAULT 0;
        UPDATE calls SET report_word = \(reportWordOfRow);
        CREATE TRIGGER calls_report_word_inserted AFTER INSERT ON calls BEGIN
            UPDATE calls SET report_word = \(reportWordOfRow) WHERE rowid = NEW.rowid;
        END;
        CREATE TRIGGER calls_report_word_updated AFTER UPDATE OF caller_no, outcome, enquiry, matter_opened, suggested_enquiry, visit_join ON calls BEGIN
            UPDATE calls SET report_word = \(reportWordOfRow) WHERE rowid = NEW.rowid;
        END;
        DROP INDEX calls_by_time;
        CREATE INDEX calls_by_time ON calls (org_id, started_at_unix_ms, assignment_no, report_word, touch_no, first_touch_no);
        """
    /// Version 8 on PostgreSQL: `report_word` a stored generated column (no writer can set it).
    static let reportWordPostgres = """
        ALTER TABLE calls ADD COLUMN report_word BIGINT GENERATED ALWAYS AS (\(reportWordOfRow)) STORED;
        DROP INDEX calls_by_time;
        CREATE INDEX calls_by_time ON calls (org_id, started_at_unix_ms, assignment_no, report_word, touch_no, first_touch_no);
        """
    /// A row's `report_word` (decoded by `scanCalls`): caller_no + bits × 2³², the bits being
    /// outcome (0–2), enquiry (3–5), matter opened (6), suggested enquiry (7–9), visit join (10–12).
    private static let reportWordOfRow =
        "caller_no + (outcome + 8 * enquiry + 64 * matter_opened + 128 * suggested_enquiry + 1024 * visit_join) * 4294967296"

    static let routingAndBlockList = """
        CREATE TABLE tracking_number_routing (
            org_id TEXT NOT NULL,
            number TEXT NOT NULL,
            routing BLOB NOT NULL,
            updated_at_unix_ms INTEGER NOT NULL,
            PRIMARY KEY (org_id, number)
        );
        CREATE TABLE blocked_callers (
            org_id TEXT NOT NULL,
            caller_index BLOB NOT NULL,
            caller_number BLOB NOT NULL,
            reason BLOB NOT NULL,
            added_at_unix_ms INTEGER NOT NULL,
            PRIMARY KEY (org_id, caller_index)
        );
        """

    let database: Database

    static func statements(on connection: Connection) -> any CallTransaction { Transaction(connection: connection) }

    func checkpoint() async throws {
        try await database.checkpoint()
    }

    func storedCallsAndTranscripts() throws -> (calls: Set<String>, transcripts: Set<String>) {
        try database.sync { db in
            func ids(_ sql: String) throws -> Set<String> {
                Set(try db.query(sql).compactMap { row in row.text("org_id").flatMap { org in row.text("call_id").map { "\(org)/\($0)" } } })
            }
            return (try ids("SELECT org_id, id AS call_id FROM calls"), try ids("SELECT org_id, call_id FROM transcripts"))
        }
    }

    struct Transaction: CallTransaction {
        let connection: Connection

        // MARK: Tracking numbers

        static let numberColumns = "id, no, number, org_id, source, channel, campaign, notice, effective_from_unix_ms, effective_until_unix_ms"

        func insert(_ a: TrackingAssignment) throws {
            try connection.execute("INSERT INTO tracking_numbers (\(Self.numberColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                   a.id, a.no, a.number, a.org, a.source, a.channel, a.campaign, a.notice, a.from, a.until)
        }

        func nextAssignmentNo() throws -> Int64 {
            (try connection.query("SELECT MAX(no) AS last FROM tracking_numbers").first?.int("last") ?? 0) + 1
        }

        func assignments(org: String, numbers: Set<Int64>) throws -> [Int64: TrackingAssignment] {
            var found: [Int64: TrackingAssignment] = [:]
            for row in try connection.query("SELECT \(Self.numberColumns) FROM tracking_numbers WHERE org_id = ?", org) {
                if let assignment = Self.assignment(row), numbers.contains(assignment.no) { found[assignment.no] = assignment }
            }
            return found
        }

        func assignment(of number: String, at time: Int64) throws -> TrackingAssignment? {
            try connection.query("""
                SELECT \(Self.numberColumns) FROM tracking_numbers WHERE number = ? AND effective_from_unix_ms <= ?
                AND (effective_until_unix_ms IS NULL OR effective_until_unix_ms > ?)
                ORDER BY effective_from_unix_ms DESC LIMIT 1
                """, number, time, time).first.flatMap(Self.assignment)
        }

        func currentAssignment(of number: String) throws -> TrackingAssignment? {
            try connection.query("SELECT \(Self.numberColumns) FROM tracking_numbers WHERE number = ? AND effective_until_unix_ms IS NULL",
                                 number).first.flatMap(Self.assignment)
        }

        func lastTenureEnd(of number: String, otherThan org: String) throws -> Int64? {
            try connection.query("SELECT MAX(effective_until_unix_ms) AS ended FROM tracking_numbers WHERE number = ? AND org_id <> ?",
                                 number, org).first?.int("ended")
        }

        func endAssignment(_ id: String, at time: Int64) throws {
            try connection.execute("UPDATE tracking_numbers SET effective_until_unix_ms = ? WHERE id = ?", time, id)
        }

        func assignments(org: String, includeHistory: Bool) throws -> [TrackingAssignment] {
            try connection.query("""
                SELECT \(Self.numberColumns) FROM tracking_numbers WHERE org_id = ?\(includeHistory ? "" : " AND effective_until_unix_ms IS NULL")
                ORDER BY number, effective_from_unix_ms DESC
                """, org).compactMap(Self.assignment)
        }

        static func assignment(_ row: Row) -> TrackingAssignment? {
            guard let id = row.text("id"), let number = row.text("number"), let org = row.text("org_id") else { return nil }
            return TrackingAssignment(id: id, no: row.int("no") ?? 0, number: number, org: org, source: row.text("source") ?? "", channel: Int(row.int("channel") ?? 0),
                                      campaign: row.text("campaign") ?? "", notice: row.text("notice") ?? "",
                                      from: row.int("effective_from_unix_ms") ?? 0, until: row.int("effective_until_unix_ms"))
        }

        // MARK: Calls

        static let callColumns = """
            id, org_id, tracking_number, source, channel, campaign, caller_number, caller_index, caller_no, assignment_no, direction, started_at_unix_ms,
            answered_at_unix_ms, ended_at_unix_ms, duration_ms, outcome, recording_id, callback_of, recorded, enquiry, matter_opened,
            matter_reference, practice_area, visit_join, visit_no, touch_no, first_touch_no, suggested_enquiry, suggested_practice_area
            """

        func insert(_ c: CallRow) throws {
            try connection.execute("INSERT INTO calls (\(Self.callColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                   bindings: [c.id, c.org, c.trackingNumber, c.source, c.channel, c.campaign, c.sealedCaller, c.callerIndex, c.callerNo,
                                              c.assignmentNo, c.direction,
                                              c.startedAt, c.answeredAt, c.endedAt, c.durationMs, c.outcome, c.recordingID, c.callbackOf, c.recorded,
                                              c.enquiry, c.matterOpened, c.sealedMatterReference, c.practiceArea, c.visit.join, c.visit.visitNo,
                                              c.visit.touchNo, c.visit.firstTouchNo, c.suggestedEnquiry, c.suggestedPracticeArea])
        }

        func call(_ id: String, org: String) throws -> CallRow? {
            try connection.query("SELECT \(Self.callColumns) FROM calls WHERE id = ? AND org_id = ?", id, org).first.flatMap(Self.call)
        }

        func update(_ c: CallRow) throws {
            try connection.execute("""
                UPDATE calls SET answered_at_unix_ms = ?, ended_at_unix_ms = ?, duration_ms = ?, outcome = ?, recording_id = ?, enquiry = ?,
                matter_opened = ?, matter_reference = ?, practice_area = ?, suggested_enquiry = ?, suggested_practice_area = ?
                WHERE id = ? AND org_id = ?
                """, bindings: [c.answeredAt, c.endedAt, c.durationMs, c.outcome, c.recordingID, c.enquiry, c.matterOpened,
                                c.sealedMatterReference, c.practiceArea, c.suggestedEnquiry, c.suggestedPracticeArea, c.id, c.org])
        }

        func calls(org: String, _ listing: CallListing, after: (Int64, String)?, limit: Int) throws -> [CallRow] {
            var conditions = ["org_id = ?"]
            var values: [any SQLiteBindable] = [org]
            if let from = listing.from { conditions.append("started_at_unix_ms >= ?"); values.append(from) }
            if let before = listing.before { conditions.append("started_at_unix_ms < ?"); values.append(before) }
            if let source = listing.source { conditions.append("source = ?"); values.append(source) }
            if let direction = listing.direction { conditions.append("direction = ?"); values.append(direction.rawValue) }
            if !listing.outcomes.isEmpty {
                let outcomes = listing.outcomes.map(\.rawValue).sorted()
                conditions.append("outcome IN (\(outcomes.map { _ in "?" }.joined(separator: ", ")))")
                values += outcomes.map { $0 as any SQLiteBindable }
            }
            if listing.unmarkedOnly {
                // Completed (an outcome other than 0, "still going") and not marked (enquiry 0).
                conditions.append("outcome <> 0 AND enquiry = 0")
            }
            if let (time, id) = after {
                conditions.append("(started_at_unix_ms < ? OR (started_at_unix_ms = ? AND id < ?))")
                values += [time, time, id]
            }
            return try connection.query("""
                SELECT \(Self.callColumns) FROM calls WHERE \(conditions.joined(separator: " AND "))
                ORDER BY started_at_unix_ms DESC, id DESC LIMIT \(limit)
                """, bindings: values).compactMap(Self.call)
        }

        func calls(org: String, callerIndex: Data) throws -> [CallRow] {
            try connection.query("SELECT \(Self.callColumns) FROM calls WHERE org_id = ? AND caller_index = ? ORDER BY started_at_unix_ms",
                                 org, callerIndex).compactMap(Self.call)
        }

        func callerCalls(org: String, callerIndex: Data) throws -> [CallerCall] {
            try connection.query("""
                SELECT c.id, c.recording_id, c.started_at_unix_ms,
                       EXISTS (SELECT 1 FROM transcripts t WHERE t.org_id = c.org_id AND t.call_id = c.id) AS transcribed
                FROM calls c WHERE c.org_id = ? AND c.caller_index = ? ORDER BY c.started_at_unix_ms
                """, org, callerIndex).compactMap { row in
                guard let id = row.text("id") else { return nil }
                return CallerCall(id: id, recordingID: row.text("recording_id") ?? "", startedAt: row.int("started_at_unix_ms") ?? 0,
                                  transcribed: row.int("transcribed") == 1)
            }
        }

        func callerNo(org: String, callerIndex: Data) throws -> Int64 {
            if let known = try connection.query("SELECT caller_no FROM callers WHERE org_id = ? AND caller_index = ?", org, callerIndex).first?
                .int("caller_no") { return known }
            let next = try lastCallerNo(org: org) + 1
            try connection.execute("INSERT INTO callers (org_id, caller_index, caller_no) VALUES (?, ?, ?)", org, callerIndex, next)
            return next
        }

        func deleteCall(_ id: String, org: String) throws -> Bool {
            try connection.execute("DELETE FROM call_events WHERE org_id = ? AND call_id = ?", org, id)
            try connection.execute("DELETE FROM transcripts WHERE org_id = ? AND call_id = ?", org, id)
            try connection.execute("DELETE FROM analyses WHERE org_id = ? AND call_id = ?", org, id)
            try connection.execute("DELETE FROM transcriptions WHERE org_id = ? AND call_id = ?", org, id)
            try connection.execute("DELETE FROM exported_conversions WHERE org_id = ? AND call_id = ?", org, id)
            return try connection.execute("DELETE FROM calls WHERE id = ? AND org_id = ?", id, org) == 1
        }

        func callIDs(org: String, startedBefore cutoff: Int64, limit: Int) throws -> [String] {
            try connection.query("SELECT id FROM calls WHERE org_id = ? AND started_at_unix_ms < ? ORDER BY started_at_unix_ms LIMIT \(limit)",
                                 org, cutoff).compactMap { $0.text("id") }
        }

        func transcribedCallIDs(org: String, startedBefore cutoff: Int64, limit: Int) throws -> [String] {
            try connection.query("""
                SELECT c.id FROM calls c WHERE c.org_id = ? AND c.started_at_unix_ms < ?
                  AND (EXISTS (SELECT 1 FROM transcripts t WHERE t.org_id = c.org_id AND t.call_id = c.id)
                    OR EXISTS (SELECT 1 FROM analyses a WHERE a.org_id = c.org_id AND a.call_id = c.id))
                ORDER BY c.started_at_unix_ms LIMIT \(limit)
                """, org, cutoff).compactMap { $0.text("id") }
        }

        static func call(_ row: Row) -> CallRow? {
            guard let id = row.text("id"), let org = row.text("org_id"), let caller = row.blob("caller_number"),
                  let index = row.blob("caller_index") else { return nil }
            return CallRow(id: id, org: org, trackingNumber: row.text("tracking_number") ?? "", source: row.text("source") ?? "",
                           channel: Int(row.int("channel") ?? 0), campaign: row.text("campaign") ?? "", sealedCaller: caller, callerIndex: index,
                           callerNo: row.int("caller_no") ?? 0, assignmentNo: row.int("assignment_no") ?? 0,
                           direction: Int(row.int("direction") ?? 0), startedAt: row.int("started_at_unix_ms") ?? 0,
                           answeredAt: row.int("answered_at_unix_ms") ?? 0, endedAt: row.int("ended_at_unix_ms") ?? 0,
                           durationMs: row.int("duration_ms") ?? 0, outcome: Int(row.int("outcome") ?? 0), recordingID: row.text("recording_id") ?? "",
                           callbackOf: row.text("callback_of") ?? "", recorded: row.int("recorded") == 1, enquiry: Int(row.int("enquiry") ?? 0),
                           matterOpened: row.int("matter_opened") == 1, sealedMatterReference: row.blob("matter_reference"),
                           practiceArea: Int(row.int("practice_area") ?? 0),
                           visit: VisitLink(join: Int(row.int("visit_join") ?? 0), visitNo: row.int("visit_no") ?? 0, touchNo: row.int("touch_no") ?? 0,
                                            firstTouchNo: row.int("first_touch_no") ?? 0),
                           suggestedEnquiry: Int(row.int("suggested_enquiry") ?? 0), suggestedPracticeArea: Int(row.int("suggested_practice_area") ?? 0))
        }

        // MARK: Call events

        func appendEvent(org: String, kind: Int, callID: String, at time: Int64) throws -> Int64 {
            let last = try lastEventSequence(org: org)
            let next = last + 1
            if last == 0 {
                try connection.execute("INSERT INTO call_event_sequences (org_id, last_sequence_no) VALUES (?, ?)", org, next)
            } else {
                try connection.execute("UPDATE call_event_sequences SET last_sequence_no = ? WHERE org_id = ?", next, org)
            }
            try connection.execute("INSERT INTO call_events (org_id, sequence_no, kind, call_id, occurred_at_unix_ms) VALUES (?, ?, ?, ?, ?)",
                                   org, next, kind, callID, time)
            return next
        }

        func lastEventSequence(org: String) throws -> Int64 {
            try connection.query("SELECT last_sequence_no FROM call_event_sequences WHERE org_id = ?", org).first?.int("last_sequence_no") ?? 0
        }

        func events(org: String, after: Int64, limit: Int) throws -> [CallEventRow] {
            try connection.query("""
                SELECT sequence_no, kind, call_id, occurred_at_unix_ms FROM call_events WHERE org_id = ? AND sequence_no > ?
                ORDER BY sequence_no LIMIT \(limit)
                """, org, after).compactMap { row in
                guard let sequence = row.int("sequence_no"), let callID = row.text("call_id") else { return nil }
                return CallEventRow(org: org, sequence: sequence, kind: Int(row.int("kind") ?? 0), callID: callID,
                                    occurredAt: row.int("occurred_at_unix_ms") ?? 0)
            }
        }

        // MARK: Reports

        func lastCallerNo(org: String) throws -> Int64 {
            try connection.query("SELECT MAX(caller_no) AS last FROM callers WHERE org_id = ?", org).first?.int("last") ?? 0
        }

        func organisations(withCallsFrom from: Int64, before: Int64) throws -> [String] {
            // calls_by_time gives each organisation once, then one seek into its period.
            try connection.query("""
                SELECT o.org_id FROM (SELECT DISTINCT org_id FROM calls) o
                WHERE EXISTS (SELECT 1 FROM calls c WHERE c.org_id = o.org_id AND c.started_at_unix_ms >= ? AND c.started_at_unix_ms < ?)
                ORDER BY o.org_id
                """, from, before).compactMap { $0.text("org_id") }
        }

        func scanCalls(org: String, from: Int64, before: Int64, touches: Bool, _ each: (AttributionScanRow) -> Void) throws {
            // The covering index calls_by_time answers this in time order without touching the
            // table, each call's caller and outcomes in one number (`reportWord`), and the touches
            // only for a report by visit (two columns fewer a row otherwise).
            try connection.scan("""
                SELECT assignment_no, report_word\(touches ? ", touch_no, first_touch_no" : "") FROM calls
                WHERE org_id = ? AND started_at_unix_ms >= ? AND started_at_unix_ms < ? ORDER BY started_at_unix_ms
                """, bindings: [org, from, before]) { row in
                let word = row.int(1)
                let packed = Int(word >> 32)
                each(AttributionScanRow(assignment: row.int(0), caller: word & 0xFFFF_FFFF, outcome: packed & 7, enquiry: (packed >> 3) & 7,
                                        matterOpened: (packed >> 6) & 1 == 1, touch: touches ? row.int(2) : 0, firstTouch: touches ? row.int(3) : 0,
                                        visitJoin: (packed >> 10) & 7, suggestedEnquiry: (packed >> 7) & 7))
            }
        }

        // MARK: Transcripts and analyses

        func transcript(org: String, callID: String) throws -> TranscriptRow? {
            try connection.query("SELECT engine, segments, redactions, created_at_unix_ms FROM transcripts WHERE org_id = ? AND call_id = ?",
                                 org, callID).first.flatMap { row in
                guard let segments = row.blob("segments") else { return nil }
                return TranscriptRow(org: org, callID: callID, engine: row.text("engine") ?? "", sealedSegments: segments,
                                     redactions: Int(row.int("redactions") ?? 0), createdAt: row.int("created_at_unix_ms") ?? 0)
            }
        }

        func put(_ t: TranscriptRow) throws {
            _ = try deleteTranscript(org: t.org, callID: t.callID)
            try connection.execute("INSERT INTO transcripts (org_id, call_id, engine, segments, redactions, created_at_unix_ms) VALUES (?, ?, ?, ?, ?, ?)",
                                   t.org, t.callID, t.engine, t.sealedSegments, t.redactions, t.createdAt)
        }

        func deleteTranscript(org: String, callID: String) throws -> Bool {
            try connection.execute("DELETE FROM transcripts WHERE org_id = ? AND call_id = ?", org, callID) == 1
        }

        func analysis(org: String, callID: String) throws -> Data? {
            try connection.query("SELECT analysis FROM analyses WHERE org_id = ? AND call_id = ?", org, callID).first?.blob("analysis")
        }

        func putAnalysis(_ sealed: Data, org: String, callID: String, at time: Int64) throws {
            _ = try deleteAnalysis(org: org, callID: callID)
            try connection.execute("INSERT INTO analyses (org_id, call_id, analysis, created_at_unix_ms) VALUES (?, ?, ?, ?)", org, callID, sealed, time)
        }

        func deleteAnalysis(org: String, callID: String) throws -> Bool {
            try connection.execute("DELETE FROM analyses WHERE org_id = ? AND call_id = ?", org, callID) == 1
        }

        func transcription(org: String, callID: String) throws -> TranscriptionRow? {
            try connection.query("SELECT recording_id, state, failure_reason, updated_at_unix_ms FROM transcriptions WHERE org_id = ? AND call_id = ?",
                                 org, callID).first.map { row in
                TranscriptionRow(org: org, callID: callID, recordingID: row.text("recording_id") ?? "", state: Int(row.int("state") ?? 0),
                                 failureReason: row.text("failure_reason") ?? "", updatedAt: row.int("updated_at_unix_ms") ?? 0)
            }
        }

        func put(_ t: TranscriptionRow) throws {
            try connection.execute("DELETE FROM transcriptions WHERE org_id = ? AND call_id = ?", t.org, t.callID)
            try connection.execute("""
                INSERT INTO transcriptions (org_id, call_id, recording_id, state, failure_reason, updated_at_unix_ms) VALUES (?, ?, ?, ?, ?, ?)
                """, t.org, t.callID, t.recordingID, t.state, t.failureReason, t.updatedAt)
        }

        func settings(org: String) throws -> SettingsRow? {
            try connection.query("SELECT enabled, engine, analysis_engine, model, language FROM transcription_settings WHERE org_id = ?", org)
                .first.map { row in
                    SettingsRow(enabled: row.int("enabled") == 1, engine: row.text("engine") ?? "", analysisEngine: row.text("analysis_engine") ?? "",
                                model: row.text("model") ?? "", language: row.text("language") ?? "")
                }
        }

        func put(_ s: SettingsRow, org: String) throws {
            try connection.execute("DELETE FROM transcription_settings WHERE org_id = ?", org)
            try connection.execute("INSERT INTO transcription_settings (org_id, enabled, engine, analysis_engine, model, language) VALUES (?, ?, ?, ?, ?, ?)",
                                   org, s.enabled, s.engine, s.analysisEngine, s.model, s.language)
        }

        // MARK: Routing

        func routing(org: String, number: String) throws -> Data? {
            try connection.query("SELECT routing FROM tracking_number_routing WHERE org_id = ? AND number = ?", org, number).first?.blob("routing")
        }

        func putRouting(_ sealed: Data, org: String, number: String, at time: Int64) throws {
            try deleteRouting(org: org, number: number)
            try connection.execute("INSERT INTO tracking_number_routing (org_id, number, routing, updated_at_unix_ms) VALUES (?, ?, ?, ?)",
                                   org, number, sealed, time)
        }

        func deleteRouting(org: String, number: String) throws {
            try connection.execute("DELETE FROM tracking_number_routing WHERE org_id = ? AND number = ?", org, number)
        }

        // MARK: Suppression and the block list

        func listedCaller(_ list: CallerList, org: String, callerIndex: Data) throws -> ListedCaller? {
            try connection.query("SELECT caller_index, caller_number, reason, added_at_unix_ms FROM \(list.rawValue) WHERE org_id = ? AND caller_index = ?",
                                 org, callerIndex).first.flatMap { Self.listedCaller($0, org: org) }
        }

        func insert(_ c: ListedCaller, into list: CallerList) throws {
            try connection.execute("INSERT INTO \(list.rawValue) (org_id, caller_index, caller_number, reason, added_at_unix_ms) VALUES (?, ?, ?, ?, ?)",
                                   c.org, c.callerIndex, c.sealedNumber, c.sealedReason, c.addedAt)
        }

        func deleteListedCaller(_ list: CallerList, org: String, callerIndex: Data) throws -> Bool {
            try connection.execute("DELETE FROM \(list.rawValue) WHERE org_id = ? AND caller_index = ?", org, callerIndex) == 1
        }

        func listedCallers(_ list: CallerList, org: String) throws -> [ListedCaller] {
            try connection.query("""
                SELECT caller_index, caller_number, reason, added_at_unix_ms FROM \(list.rawValue) WHERE org_id = ? ORDER BY added_at_unix_ms DESC
                """, org).compactMap { Self.listedCaller($0, org: org) }
        }

        static func listedCaller(_ row: Row, org: String) -> ListedCaller? {
            guard let index = row.blob("caller_index"), let number = row.blob("caller_number") else { return nil }
            return ListedCaller(org: org, callerIndex: index, sealedNumber: number, sealedReason: row.blob("reason") ?? Data(),
                                addedAt: row.int("added_at_unix_ms") ?? 0)
        }

        // MARK: An organisation's end

        func deleteAll(org: String) throws -> PurgedOrganisation {
            for table in ["call_events", "call_event_sequences", "transcripts", "analyses", "transcriptions", "transcription_settings", "callers",
                          "tracking_number_routing"] {
                try connection.execute("DELETE FROM \(table) WHERE org_id = ?", org)
            }
            func delete(_ table: String) throws -> Int { try connection.execute("DELETE FROM \(table) WHERE org_id = ?", org) }
            return PurgedOrganisation(calls: try delete("calls"), trackingNumbers: try delete("tracking_numbers"),
                                      suppressions: try delete(CallerList.suppressions.rawValue),
                                      blockedCallers: try delete(CallerList.blockedCallers.rawValue), visits: try purgeWebsites(org: org))
        }
    }
}
