import CallTraceStorage
import Foundation

/// The telephony gateway's own storage: only what a webhook edge must keep (DESIGN §2a) — the
/// answers it gave (so a retried webhook is answered once), the calls in flight (which firm,
/// what happened at the dial), the recordings it is moving from Twilio into media, the firms'
/// numbers at Twilio, and the call backs waiting for staff to answer. No call content: the
/// whisper is a marketing source's name; no caller's number is stored here in clear (a call
/// back's plan, which names one, is sealed under the firm's key and kept minutes).
protocol TelephonyRepository: Sendable {
    func read<T: Sendable>(_ body: @escaping @Sendable (any TelephonyTransaction) throws -> T) async throws -> T
    func write<T: Sendable>(_ body: @escaping @Sendable (any TelephonyTransaction) throws -> T) async throws -> T
}

protocol TelephonyTransaction {
    /// For the job queue, in the same transaction.
    var connection: Connection { get }

    /// The answer given to a webhook with this key, sealed.
    func receipt(_ key: String) throws -> WebhookReceipt?
    /// False when one with this key was stored first.
    func insert(_ receipt: WebhookReceipt) throws -> Bool
    /// Answers older than `cutoff` forgotten (Twilio retries for minutes, not days); how many.
    func deleteReceipts(before cutoff: Int64) throws -> Int

    func call(_ sid: String) throws -> CallInFlight?
    /// Inserts, or leaves the existing row (a retried voice webhook).
    func insert(_ call: CallInFlight) throws
    func setDialStatus(_ status: String, call sid: String) throws
    func markVoicemail(call sid: String) throws
    /// Whether it changed (false: completed already).
    func markCompleted(call sid: String, at time: Int64) throws -> Bool
    /// Calls completed before `cutoff`, or started before `abandoned` (their end never came),
    /// forgotten, unless a recording of theirs is still moving.
    func deleteCalls(completedBefore cutoff: Int64, startedBefore abandoned: Int64) throws -> Int

    func recording(_ sid: String) throws -> RecordingTransferRow?
    /// False when it was known already.
    func insert(_ recording: RecordingTransferRow) throws -> Bool
    func setStored(_ sid: String, mediaRecording: String) throws
    func setDeletedAtTwilio(_ sid: String, at time: Int64) throws
    /// Recordings still at Twilio (not yet deleted there) received before `cutoff`: for the alert.
    func recordingsStillAtTwilio(receivedBefore cutoff: Int64) throws -> Int

    /// The organisation's number at Twilio, or nil (not bought or imported through this gateway,
    /// or released since).
    func number(_ number: String) throws -> AccountNumber?
    /// Inserts, or updates the row the same organisation holds; false when another holds it.
    func upsert(_ number: AccountNumber) throws -> Bool
    func deleteNumber(_ number: String) throws

    /// A call back placed, by its token or Twilio's call id.
    func callback(token: String) throws -> PendingCallback?
    func callback(callSID: String) throws -> PendingCallback?
    func insert(_ callback: PendingCallback) throws
    func setCallSID(_ sid: String, callback token: String) throws
    /// Its plan forgotten: answered, or ended unanswered (the row stays for the firm's rate).
    func endCallback(_ token: String) throws
    func deleteCallback(_ token: String) throws
    /// The organisation's call backs placed since `time`, and whether one to `call` still rings.
    func callbacks(org: String, placedSince time: Int64) throws -> Int
    func callbackRinging(org: String, returning call: String) throws -> Bool
    /// Call backs placed before `cutoff` forgotten; how many.
    func deleteCallbacks(placedBefore cutoff: Int64) throws -> Int
}

/// A number this gateway bought or imported for a firm: which firm may release it, and its id at Twilio.
struct AccountNumber: Sendable, Equatable {
    enum Acquired: String, Sendable { case bought, imported }
    let number: String
    let org: String
    let twilioSID: String
    let acquired: Acquired
    let at: Int64
}

/// A call back placed at Twilio: whom to dial and what to say, sealed under the firm's key (it
/// names the enquirer's number) until the member of staff answers (then it is a call in flight)
/// or the call ends unanswered; the row itself stays an hour, for the firm's rate of call backs.
struct PendingCallback: Sendable, Equatable {
    let token: String
    let org: String
    /// The call it returns.
    let callbackOf: String
    /// `CallbackPlan`'s JSON, sealed; nil once answered or ended.
    let sealedPlan: Data?
    let placedAt: Int64
    var callSID: String?
}

/// What a webhook was answered, sealed under the firm's key (a voice answer names the phones
/// it rings), or in clear when it names no firm (a refusal, an empty answer).
struct WebhookReceipt: Sendable {
    let key: String
    let org: String
    let status: Int
    let contentType: String
    let body: Data
    let sealed: Bool
    let receivedAt: Int64
}

/// A call the gateway answered, until it completed (and a while after, for late callbacks).
struct CallInFlight: Sendable, Equatable {
    let sid: String
    let org: String
    let inbound: Bool
    let recorded: Bool
    /// Whether a voicemail is taken when nobody answers (the routing said so).
    let voicemailOn: Bool
    /// What whoever answers hears first ("Google Ads enquiry").
    let whisper: String
    let startedAt: Int64
    var dialStatus = ""
    var voicemailTaken = false
    var completedAt: Int64?
}

/// A recording on its way from Twilio into media, then deleted at Twilio.
struct RecordingTransferRow: Sendable, Equatable {
    let sid: String
    let callSID: String
    let org: String
    let receivedAt: Int64
    var mediaRecording: String?
    var deletedAtTwilio: Int64?
}

/// The SQL, all of it, in the subset SQLite and PostgreSQL share.
struct SQLiteTelephonyRepository: TelephonyRepository, SQLiteRepository {
    static let schema = """
        CREATE TABLE webhook_receipts (
            idempotency_key TEXT PRIMARY KEY,
            org_id TEXT NOT NULL,
            status INTEGER NOT NULL,
            content_type TEXT NOT NULL,
            body BLOB NOT NULL,
            sealed INTEGER NOT NULL,
            received_at_unix_ms INTEGER NOT NULL
        );
        CREATE INDEX webhook_receipts_by_time ON webhook_receipts (received_at_unix_ms);
        CREATE TABLE calls (
            call_sid TEXT PRIMARY KEY,
            org_id TEXT NOT NULL,
            inbound INTEGER NOT NULL,
            recorded INTEGER NOT NULL,
            voicemail_on INTEGER NOT NULL,
            whisper TEXT NOT NULL,
            started_at_unix_ms INTEGER NOT NULL,
            dial_status TEXT NOT NULL DEFAULT '',
            voicemail_taken INTEGER NOT NULL DEFAULT 0,
            completed_at_unix_ms INTEGER
        );
        CREATE TABLE recording_transfers (
            recording_sid TEXT PRIMARY KEY,
            call_sid TEXT NOT NULL,
            org_id TEXT NOT NULL,
            received_at_unix_ms INTEGER NOT NULL,
            media_recording_id TEXT,
            deleted_at_twilio_unix_ms INTEGER
        );
        CREATE INDEX recording_transfers_at_twilio ON recording_transfers (deleted_at_twilio_unix_ms, received_at_unix_ms);
        """

    /// Version 2: the firms' numbers at Twilio, and the call backs waiting for staff to answer.
    static let numbersAndCallbacks = """
        CREATE TABLE account_numbers (
            number TEXT PRIMARY KEY,
            org_id TEXT NOT NULL,
            twilio_sid TEXT NOT NULL,
            acquired TEXT NOT NULL,
            at_unix_ms INTEGER NOT NULL
        );
        CREATE TABLE pending_callbacks (
            token TEXT PRIMARY KEY,
            org_id TEXT NOT NULL,
            callback_of TEXT NOT NULL,
            plan BLOB,
            placed_at_unix_ms INTEGER NOT NULL,
            call_sid TEXT UNIQUE
        );
        CREATE INDEX pending_callbacks_by_time ON pending_callbacks (placed_at_unix_ms);
        CREATE INDEX pending_callbacks_by_org ON pending_callbacks (org_id, placed_at_unix_ms);
        """

    let database: Database

    static func statements(on connection: Connection) -> any TelephonyTransaction { Transaction(connection: connection) }

    struct Transaction: TelephonyTransaction {
        let connection: Connection

        func receipt(_ key: String) throws -> WebhookReceipt? {
            try connection.query("SELECT * FROM webhook_receipts WHERE idempotency_key = ?", key).first.map { row in
                WebhookReceipt(key: key, org: row.text("org_id") ?? "", status: Int(row.int("status") ?? 200),
                               contentType: row.text("content_type") ?? "", body: row.blob("body") ?? Data(),
                               sealed: row.int("sealed") == 1, receivedAt: row.int("received_at_unix_ms") ?? 0)
            }
        }

        func insert(_ receipt: WebhookReceipt) throws -> Bool {
            try connection.execute("""
                INSERT INTO webhook_receipts (idempotency_key, org_id, status, content_type, body, sealed, received_at_unix_ms)
                VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (idempotency_key) DO NOTHING
                """, receipt.key, receipt.org, Int64(receipt.status), receipt.contentType, receipt.body, receipt.sealed ? 1 : 0,
                receipt.receivedAt) == 1
        }

        func deleteReceipts(before cutoff: Int64) throws -> Int {
            try connection.execute("DELETE FROM webhook_receipts WHERE received_at_unix_ms < ?", cutoff)
        }

        func call(_ sid: String) throws -> CallInFlight? {
            try connection.query("SELECT * FROM calls WHERE call_sid = ?", sid).first.map { row in
                CallInFlight(sid: sid, org: row.text("org_id") ?? "", inbound: row.int("inbound") == 1, recorded: row.int("recorded") == 1,
                             voicemailOn: row.int("voicemail_on") == 1, whisper: row.text("whisper") ?? "",
                             startedAt: row.int("started_at_unix_ms") ?? 0, dialStatus: row.text("dial_status") ?? "",
                             voicemailTaken: row.int("voicemail_taken") == 1, completedAt: row.int("completed_at_unix_ms"))
            }
        }

        func insert(_ call: CallInFlight) throws {
            try connection.execute("""
                INSERT INTO calls (call_sid, org_id, inbound, recorded, voicemail_on, whisper, started_at_unix_ms, dial_status)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (call_sid) DO NOTHING
                """, call.sid, call.org, call.inbound ? 1 : 0, call.recorded ? 1 : 0, call.voicemailOn ? 1 : 0, call.whisper, call.startedAt,
                call.dialStatus)
        }

        func setDialStatus(_ status: String, call sid: String) throws {
            try connection.execute("UPDATE calls SET dial_status = ? WHERE call_sid = ?", status, sid)
        }

        func markVoicemail(call sid: String) throws {
            try connection.execute("UPDATE calls SET voicemail_taken = 1 WHERE call_sid = ?", sid)
        }

        func markCompleted(call sid: String, at time: Int64) throws -> Bool {
            try connection.execute("UPDATE calls SET completed_at_unix_ms = ? WHERE call_sid = ? AND completed_at_unix_ms IS NULL", time, sid) == 1
        }

        func deleteCalls(completedBefore cutoff: Int64, startedBefore abandoned: Int64) throws -> Int {
            try connection.execute("""
                DELETE FROM calls WHERE (completed_at_unix_ms < ? OR started_at_unix_ms < ?)
                AND NOT EXISTS (SELECT 1 FROM recording_transfers r WHERE r.call_sid = calls.call_sid AND r.deleted_at_twilio_unix_ms IS NULL)
                """, cutoff, abandoned)
        }

        func recording(_ sid: String) throws -> RecordingTransferRow? {
            try connection.query("SELECT * FROM recording_transfers WHERE recording_sid = ?", sid).first.map { row in
                RecordingTransferRow(sid: sid, callSID: row.text("call_sid") ?? "", org: row.text("org_id") ?? "",
                                     receivedAt: row.int("received_at_unix_ms") ?? 0, mediaRecording: row.text("media_recording_id"),
                                     deletedAtTwilio: row.int("deleted_at_twilio_unix_ms"))
            }
        }

        func insert(_ recording: RecordingTransferRow) throws -> Bool {
            try connection.execute("""
                INSERT INTO recording_transfers (recording_sid, call_sid, org_id, received_at_unix_ms)
                VALUES (?, ?, ?, ?) ON CONFLICT (recording_sid) DO NOTHING
                """, recording.sid, recording.callSID, recording.org, recording.receivedAt) == 1
        }

        func setStored(_ sid: String, mediaRecording: String) throws {
            try connection.execute("UPDATE recording_transfers SET media_recording_id = ? WHERE recording_sid = ?", mediaRecording, sid)
        }

        func setDeletedAtTwilio(_ sid: String, at time: Int64) throws {
            try connection.execute("UPDATE recording_transfers SET deleted_at_twilio_unix_ms = ? WHERE recording_sid = ? AND deleted_at_twilio_unix_ms IS NULL",
                                   time, sid)
        }

        func number(_ number: String) throws -> AccountNumber? {
            try connection.query("SELECT * FROM account_numbers WHERE number = ?", number).first.map { row in
                AccountNumber(number: number, org: row.text("org_id") ?? "", twilioSID: row.text("twilio_sid") ?? "",
                              acquired: AccountNumber.Acquired(rawValue: row.text("acquired") ?? "") ?? .imported, at: row.int("at_unix_ms") ?? 0)
            }
        }

        func upsert(_ number: AccountNumber) throws -> Bool {
            try connection.execute("""
                INSERT INTO account_numbers (number, org_id, twilio_sid, acquired, at_unix_ms) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (number) DO UPDATE SET twilio_sid = excluded.twilio_sid, acquired = excluded.acquired,
                at_unix_ms = excluded.at_unix_ms WHERE account_numbers.org_id = excluded.org_id
                """, number.number, number.org, number.twilioSID, number.acquired.rawValue, number.at) == 1
        }

        func deleteNumber(_ number: String) throws {
            try connection.execute("DELETE FROM account_numbers WHERE number = ?", number)
        }

        private func pending(_ row: Row) -> PendingCallback {
            PendingCallback(token: row.text("token") ?? "", org: row.text("org_id") ?? "", callbackOf: row.text("callback_of") ?? "",
                            sealedPlan: row.blob("plan"), placedAt: row.int("placed_at_unix_ms") ?? 0, callSID: row.text("call_sid"))
        }

        func callback(token: String) throws -> PendingCallback? {
            try connection.query("SELECT * FROM pending_callbacks WHERE token = ?", token).first.map(pending)
        }

        func callback(callSID: String) throws -> PendingCallback? {
            try connection.query("SELECT * FROM pending_callbacks WHERE call_sid = ?", callSID).first.map(pending)
        }

        func insert(_ callback: PendingCallback) throws {
            try connection.execute("""
                INSERT INTO pending_callbacks (token, org_id, callback_of, plan, placed_at_unix_ms, call_sid) VALUES (?, ?, ?, ?, ?, ?)
                """, callback.token, callback.org, callback.callbackOf, callback.sealedPlan, callback.placedAt, callback.callSID)
        }

        func setCallSID(_ sid: String, callback token: String) throws {
            try connection.execute("UPDATE pending_callbacks SET call_sid = ? WHERE token = ?", sid, token)
        }

        func endCallback(_ token: String) throws {
            try connection.execute("UPDATE pending_callbacks SET plan = NULL WHERE token = ?", token)
        }

        func callbacks(org: String, placedSince time: Int64) throws -> Int {
            Int(try connection.query("SELECT count(*) AS n FROM pending_callbacks WHERE org_id = ? AND placed_at_unix_ms >= ?", org, time)[0]
                .int("n") ?? 0)
        }

        func callbackRinging(org: String, returning call: String) throws -> Bool {
            try !connection.query("SELECT 1 FROM pending_callbacks WHERE org_id = ? AND callback_of = ? AND plan IS NOT NULL", org, call).isEmpty
        }

        func deleteCallback(_ token: String) throws {
            try connection.execute("DELETE FROM pending_callbacks WHERE token = ?", token)
        }

        func deleteCallbacks(placedBefore cutoff: Int64) throws -> Int {
            try connection.execute("DELETE FROM pending_callbacks WHERE placed_at_unix_ms < ?", cutoff)
        }

        func recordingsStillAtTwilio(receivedBefore cutoff: Int64) throws -> Int {
            Int(try connection.query("""
                SELECT count(*) AS n FROM recording_transfers WHERE deleted_at_twilio_unix_ms IS NULL AND received_at_unix_ms < ?
                """, cutoff)[0].int("n") ?? 0)
        }
    }
}
