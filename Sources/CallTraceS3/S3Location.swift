import CallTraceOutbound
import Foundation

/// Where a service keeps its blobs in S3-compatible object storage, and the key it signs with:
/// a bucket at an HTTPS endpoint (AWS, or any store speaking S3's API and SigV4: Ceph's radosgw,
/// MinIO, …), under a prefix, in a region.
///
/// The secret key is read from a file only its owner can read (`SecretFile`), never from the
/// configuration itself; nothing here puts it in a description, a log line or an error.
public struct S3Location: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// How a bucket is named in a request: `https://endpoint/bucket/key` (path style, what most
    /// self-hosted stores expect) or `https://bucket.endpoint/key` (virtual-hosted, AWS's default).
    public enum Addressing: String, Sendable { case path, virtualHosted = "virtual-hosted" }

    /// `https://host[:port]`, no path.
    public let endpoint: String
    public let bucket: String
    /// "" or a folder of the bucket ending in "/": every object's key starts with it.
    public let prefix: String
    /// The SigV4 signing region (`eu-west-2`; `us-east-1` for most self-hosted stores).
    public let region: String
    public let accessKeyID: String
    let secretKey: String
    /// PEM CA certificates that may sign the endpoint's certificate; nil for the system's.
    public let caFile: String?
    public let addressing: Addressing

    public var description: String { "s3://\(bucket)/\(prefix) at \(endpoint) (\(region))" }
    public var debugDescription: String { description }
    /// Without the secret, whatever prints or dumps it.
    public var customMirror: Mirror {
        Mirror(self, children: ["endpoint": endpoint, "bucket": bucket, "prefix": prefix, "region": region, "accessKeyID": accessKeyID,
                                "caFile": caFile as Any, "addressing": addressing])
    }

    /// Checks every part before anything is sent; errors name the setting, never the secret.
    public init(endpoint: String, bucket: String, prefix: String = "", region: String, accessKeyID: String, secretKey: String,
                caFile: String? = nil, addressing: Addressing = .path) throws {
        // The value is not repeated: a mistaken one may hold a login.
        guard let url = URL(string: endpoint), url.scheme == "https", let host = url.host, !host.isEmpty,
              url.user == nil, url.password == nil, url.query == nil, url.fragment == nil, url.path.isEmpty || url.path == "/" else {
            throw S3Error("s3_endpoint must be https://host[:port] with no path, login or query")
        }
        let lowerDigits = Set("abcdefghijklmnopqrstuvwxyz0123456789")
        // S3's bucket rules; no dots when virtual-hosted over TLS (they would break the certificate's name).
        guard (3...63).contains(bucket.count), bucket.allSatisfy({ lowerDigits.contains($0) || $0 == "-" || (addressing == .path && $0 == ".") }),
              let first = bucket.first, let last = bucket.last, lowerDigits.contains(first), lowerDigits.contains(last) else {
            throw S3Error("s3 bucket \(bucket) is not a valid bucket name: 3 to 63 lower-case letters, digits and hyphens\(addressing == .path ? " (or dots)" : "")")
        }
        let prefixCharacters = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./")
        guard prefix.count <= 256, prefix.allSatisfy(prefixCharacters.contains), !prefix.hasPrefix("/"), !prefix.contains("//"),
              !prefix.split(separator: "/").contains(where: { $0 == "." || $0 == ".." }) else {
            throw S3Error("s3 prefix \(prefix) must be letters, digits, '-', '_', '.' and '/' (no leading '/', no '//', '.' or '..')")
        }
        guard !region.isEmpty, region.count <= 32, region.allSatisfy({ lowerDigits.contains($0) || $0 == "-" }) else {
            throw S3Error("s3_region \(region) is not a region name (e.g. eu-west-2)")
        }
        guard (3...128).contains(accessKeyID.count), accessKeyID.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) else {
            throw S3Error("s3_access_key_id is not an access key id (3 to 128 letters and digits)")
        }
        guard !secretKey.isEmpty, secretKey.count <= 256, secretKey.allSatisfy({ $0.isASCII && !$0.isWhitespace && $0 != ":" }) else {
            throw S3Error("the S3 secret key must be one line of printable ASCII without ':'")
        }
        let bracketed = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host  // an IPv6 address
        self.endpoint = "https://\(bracketed)\(url.port.map { ":\($0)" } ?? "")"
        self.bucket = bucket
        self.prefix = prefix.isEmpty || prefix.hasSuffix("/") ? prefix : prefix + "/"
        self.region = region
        self.accessKeyID = accessKeyID
        self.secretKey = secretKey
        self.caFile = caFile
        self.addressing = addressing
    }

    /// As `init`, with the secret key read from `secretKeyFile` (a regular file only its owner can read).
    public init(endpoint: String, bucket: String, prefix: String = "", region: String, accessKeyID: String, secretKeyFile: String,
                caFile: String? = nil, addressing: Addressing = .path) throws {
        let secret: String
        do { secret = try SecretFile.read(secretKeyFile).trimmingCharacters(in: .whitespacesAndNewlines) } catch {
            throw S3Error("s3_secret_key_file \(error)")
        }
        try self.init(endpoint: endpoint, bucket: bucket, prefix: prefix, region: region, accessKeyID: accessKeyID, secretKey: secret,
                      caFile: caFile, addressing: addressing)
    }

    /// The URL of `key` (nil: the bucket itself) with `query`, its names and values encoded and
    /// sorted as SigV4's canonical query string has them: libcurl signs the query as it is sent.
    func url(key: String?, query: [(String, String)]) -> String {
        let host = String(endpoint.dropFirst("https://".count))
        var url = addressing == .path ? "https://\(host)/\(bucket)" : "https://\(bucket).\(host)"
        if let key { url += "/" + key } else if addressing == .virtualHosted { url += "/" }
        if !query.isEmpty { url += "?" + Self.canonicalQuery(query) }
        return url
    }

    /// `name=value` pairs, each part encoded as SigV4 asks (all but `A-Z a-z 0-9 - _ . ~`),
    /// sorted by name then value, joined by `&`. A name without a value keeps its `=`.
    public static func canonicalQuery(_ query: [(String, String)]) -> String {
        query.map { (encode($0.0), encode($0.1)) }.sorted { ($0.0, $0.1) < ($1.0, $1.1) }.map { "\($0.0)=\($0.1)" }.joined(separator: "&")
    }

    static func encode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.unicodeScalars.append(UnicodeScalar(byte))
            default:
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }
}

/// An object-store failure: the operation, the blob's name and S3's error code or curl's reason;
/// never a header, a key or contents.
public struct S3Error: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
