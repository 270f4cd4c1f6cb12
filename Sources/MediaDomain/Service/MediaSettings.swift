public import CallTraceServiceHost
import CallTraceS3
import Foundation

/// Media's own settings (besides every service's: `ServiceConfiguration`); listed in
/// services/media/README.md.
public struct MediaSettings: ServiceSettings, Equatable {
    /// The folder of the sealed recording files, or `s3://bucket/prefix` for an S3-compatible
    /// bucket (with the `s3_*` settings). Default `recordings/` beside the database.
    public var blobStore: String?
    /// The gateways (names, as in `spiffe://<domain>/gateway/<name>`) that report calls as
    /// themselves — start and complete calls, upload recordings: the telephony gateway. Any other
    /// gateway (the web backend) acts only with a user's token. Default `["telephony"]`.
    public var telephonyGateways = ["telephony"]
    /// The S3-compatible store, when `blob_store` is `s3://…`.
    public var s3Endpoint: String?
    public var s3Region: String?
    public var s3AccessKeyID: String?
    public var s3SecretKeyFile: String?
    public var s3CAFile: String?
    public var s3Addressing = "path"

    public init() {}

    public static let settings: [Setting<MediaSettings>] = [
        .text("blob_store", help: "Folder of the sealed recording files, or s3://bucket/prefix for an S3-compatible bucket (default recordings/ beside the database).") {
            $0.blobStore = $1
        },
        .names("telephony_gateways", of: .gateway, help: "Gateways that report calls as themselves (comma-separated; default telephony).") {
            $0.telephonyGateways = $1
        },
        .httpsURL("s3_endpoint", help: "With blob_store s3://…: the store's https:// endpoint (https://s3.eu-west-2.amazonaws.com).") { $0.s3Endpoint = $1 },
        .text("s3_region", help: "With blob_store s3://…: the region requests are signed for (eu-west-2).") { $0.s3Region = $1 },
        .text("s3_access_key_id", help: "With blob_store s3://…: the access key id media signs with.") { $0.s3AccessKeyID = $1 },
        .text("s3_secret_key_file", help: "With blob_store s3://…: a file (mode 0600) holding the access key's secret.") { $0.s3SecretKeyFile = $1 },
        .text("s3_ca_file", help: "With blob_store s3://…: PEM CA certificates for the endpoint (default: the system's).") { $0.s3CAFile = $1 },
        .text("s3_addressing", help: "With blob_store s3://…: path (https://endpoint/bucket/key, the default) or virtual-hosted (https://bucket.endpoint/key).",
              check: { S3Location.Addressing(rawValue: $0) == nil ? "be path or virtual-hosted" : nil }) { $0.s3Addressing = $1 },
    ]

    public func validate() throws {
        let s3Set = [s3Endpoint, s3Region, s3AccessKeyID, s3SecretKeyFile, s3CAFile].contains { $0 != nil } || s3Addressing != "path"
        if s3Set && s3Location == nil {
            throw ConfigurationError("the s3_* settings are for blob_store s3://bucket/prefix; blob_store is a folder")
        }
        if s3Location != nil { _ = try s3() }
    }

    /// `blob_store`'s bucket and prefix, when it names one.
    var s3Location: (bucket: String, prefix: String)? {
        guard let blobStore, blobStore.hasPrefix("s3://") else { return nil }
        let rest = blobStore.dropFirst("s3://".count)
        let bucket = rest.prefix { $0 != "/" }
        return (String(bucket), String(rest.dropFirst(bucket.count).dropFirst()))
    }

    /// The bucket `blob_store` names, checked and with its secret read; nil for a folder.
    func s3() throws -> S3Location? {
        guard let (bucket, prefix) = s3Location else { return nil }
        // A bucket's root may hold anything: media keeps to a folder of its own, which it sweeps.
        guard !prefix.isEmpty else {
            throw ConfigurationError("blob_store \(blobStore ?? "") must name a folder of the bucket (s3://bucket/recordings): media sweeps what it holds")
        }
        guard let s3Endpoint, let s3Region, let s3AccessKeyID, let s3SecretKeyFile else {
            throw ConfigurationError("blob_store \(blobStore ?? "") needs s3_endpoint, s3_region, s3_access_key_id and s3_secret_key_file")
        }
        do {
            return try S3Location(endpoint: s3Endpoint, bucket: bucket, prefix: prefix, region: s3Region, accessKeyID: s3AccessKeyID,
                                  secretKeyFile: s3SecretKeyFile, caFile: s3CAFile, addressing: S3Location.Addressing(rawValue: s3Addressing) ?? .path)
        } catch let error as S3Error {
            throw ConfigurationError("blob_store: \(error.description)")
        }
    }
}
