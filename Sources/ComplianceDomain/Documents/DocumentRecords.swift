import CallTraceStorage
import ComplianceDeadlines
import Foundation

/// Notice settings and agreement acceptances.
protocol DocumentRecords {
    func noticeSettings(org: String) throws -> NoticeSettingsRow?
    func put(_ settings: NoticeSettingsRow, org: String) throws
    /// The latest acceptance of the processing agreement.
    func acceptance(org: String) throws -> AgreementAcceptance?
    func insert(_ acceptance: AgreementAcceptance, org: String) throws
}

extension SQLiteComplianceRepository.Transaction: DocumentRecords {
    func noticeSettings(org: String) throws -> NoticeSettingsRow? {
        try connection.query("SELECT settings FROM notice_settings WHERE org_id = ?", org).first?.text("settings")
            .flatMap { try? JSONDecoder().decode(NoticeSettingsRow.self, from: Data($0.utf8)) }
    }

    func put(_ settings: NoticeSettingsRow, org: String) throws {
        try connection.execute("DELETE FROM notice_settings WHERE org_id = ?", org)
        try connection.execute("INSERT INTO notice_settings (org_id, settings, updated_at_unix_ms) VALUES (?, ?, ?)", org,
                               String(decoding: try JSONEncoder().encode(settings), as: UTF8.self), settings.updatedAt)
    }

    func acceptance(org: String) throws -> AgreementAcceptance? {
        try connection.query("""
            SELECT template_version, register_version, accepted_by, accepted_at_unix_ms FROM agreement_acceptances
            WHERE org_id = ? ORDER BY accepted_at_unix_ms DESC LIMIT 1
            """, org).first.map {
            AgreementAcceptance(templateVersion: $0.text("template_version") ?? "", registerVersion: $0.text("register_version") ?? "",
                                acceptedBy: $0.text("accepted_by") ?? "", acceptedAt: $0.int("accepted_at_unix_ms") ?? 0)
        }
    }

    func insert(_ a: AgreementAcceptance, org: String) throws {
        try connection.execute("""
            INSERT INTO agreement_acceptances (org_id, template_version, register_version, accepted_by, accepted_at_unix_ms) VALUES (?, ?, ?, ?, ?)
            """, org, a.templateVersion, a.registerVersion, a.acceptedBy, a.acceptedAt)
    }
}
