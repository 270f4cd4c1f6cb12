public import CallTraceServiceHost

/// Media's own settings (besides every service's: `ServiceConfiguration`); listed in
/// services/media/README.md.
public struct MediaSettings: ServiceSettings, Equatable {
    /// The folder of the sealed recording files. Default `recordings/` beside the database.
    public var blobStore: String?
    /// The gateways (names, as in `spiffe://<domain>/gateway/<name>`) that report calls as
    /// themselves — start and complete calls, upload recordings: the telephony gateway. Any other
    /// gateway (the web backend) acts only with a user's token. Default `["telephony"]`.
    public var telephonyGateways = ["telephony"]

    public init() {}

    public static let settings: [Setting<MediaSettings>] = [
        .text("blob_store", help: "Folder of the sealed recording files (default recordings/ beside the database).") { $0.blobStore = $1 },
        .names("telephony_gateways", of: .gateway, help: "Gateways that report calls as themselves (comma-separated; default telephony).") {
            $0.telephonyGateways = $1
        },
    ]
}
