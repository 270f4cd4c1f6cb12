public import CallTraceServiceHost

/// Compliance's own settings (besides every service's: `ServiceConfiguration`); listed in
/// services/compliance/README.md.
public struct ComplianceSettings: ServiceSettings, Equatable {
    /// The operator-maintained sub-processor register (JSON); default the list shipped with the trust page.
    public var subprocessorsFile: String?
    /// GOV.UK's bank-holidays.json, newer than the one shipped (2024–2027).
    public var bankHolidaysFile: String?

    public init() {}

    public static let settings: [Setting<ComplianceSettings>] = [
        .text("subprocessors_file", help: "The sub-processor register, JSON (default: the list shipped with the trust page).") {
            $0.subprocessorsFile = $1
        },
        .text("bank_holidays_file", help: "GOV.UK's bank-holidays.json, newer than the one shipped.") { $0.bankHolidaysFile = $1 },
    ]
}
