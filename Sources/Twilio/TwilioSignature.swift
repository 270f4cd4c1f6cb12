import CallTraceKeys
import COpenSSL
public import Foundation

/// Twilio's request validation (`X-Twilio-Signature`), as its security documentation specifies:
///
///     signed  = the full public URL Twilio requested (scheme, host, path, query)
///             + for a form body: each parameter's name then value, no separators,
///               sorted by name (a repeated name: by value too, as Twilio's libraries do)
///     header  = base64(HMAC-SHA1(key: the account's auth token, signed))
///
/// A JSON body is not in the signed text: the URL then carries `bodySHA256=<hex SHA-256 of the
/// body>`, which is signed with the URL and checked against the body.
///
/// The URL is the one Twilio was given (the gateway's public `https://` address behind nginx)
/// with the path and query as they arrived, never rebuilt from what the gateway itself sees.
/// Twilio has signed `https://host/x` and `https://host:443/x` alike, and its own libraries accept
/// either, so both spellings of the scheme's *default* port are accepted (RFC 3986 §6.2.3: they
/// name the same endpoint); any other port, or the other scheme, is another endpoint and refused.
/// Comparisons are constant-time (`CRYPTO_memcmp`).
public struct TwilioSignature: Sendable {
    /// The header Twilio signs with.
    public static let header = "X-Twilio-Signature"

    private let key: Data

    public init(authToken: String) { key = Data(authToken.utf8) }

    /// The header value Twilio sends for a POST of `parameters` to `url` (empty for a JSON body).
    public func signature(url: String, parameters: FormParameters = FormParameters()) -> String {
        let sorted = parameters.pairs.sorted { a, b in
            a.name == b.name ? a.value.utf8.lexicographicallyPrecedes(b.value.utf8) : a.name.utf8.lexicographicallyPrecedes(b.name.utf8)
        }
        var signed = Data(url.utf8)
        for pair in sorted {
            signed.append(contentsOf: pair.name.utf8)
            signed.append(contentsOf: pair.value.utf8)
        }
        return Self.hmacSHA1(key: key, message: signed).base64EncodedString()
    }

    /// Whether `signature` is Twilio's for `parameters` POSTed to `url` (or `url` with its
    /// default port written or left out).
    public func isValid(_ signature: String, url: String, parameters: FormParameters = FormParameters()) -> Bool {
        // Every spelling is computed and compared, so the time taken does not say which matched.
        Self.spellings(of: url).map { Self.equal(self.signature(url: $0, parameters: parameters), signature) }.contains(true)
    }

    /// Checks a webhook before anything else reads it, and returns its form parameters (none for
    /// a JSON body, which the caller then decodes).
    ///
    /// - Parameters:
    ///   - signature: the `X-Twilio-Signature` header, nil when absent.
    ///   - url: the public URL Twilio requested: the configured public base, then the path and
    ///     query exactly as they arrived (still percent-encoded).
    ///   - contentType: `application/json` selects the `bodySHA256` check; anything else is read
    ///     as a form.
    /// - Throws: `WebhookRefusal`, whose text names no parameter, value or secret.
    public func verify(signature: String?, url: String, body: Data, contentType: String?) throws(WebhookRefusal) -> FormParameters {
        guard let signature, !signature.isEmpty else { throw .missingSignature }
        let isJSON = contentType?.lowercased().hasPrefix("application/json") ?? false
        guard isJSON else {
            let parameters: FormParameters
            do { parameters = try FormParameters(parsing: body) } catch { throw .unreadableBody }
            guard isValid(signature, url: url, parameters: parameters) else { throw .signatureMismatch }
            return parameters
        }
        guard let claimed = Self.queryValue(named: "bodySHA256", in: url) else { throw .bodyHashMissing }
        // The URL (with the claimed hash) first, then the hash against the body: both must hold.
        let signed = isValid(signature, url: url)
        let hashed = Self.equal(Self.bodySHA256(body), claimed.lowercased())
        guard signed else { throw .signatureMismatch }
        guard hashed else { throw .bodyHashMismatch }
        return FormParameters()
    }

    /// Lower-case hex SHA-256 of `body`, as Twilio writes it in `bodySHA256`.
    public static func bodySHA256(_ body: Data) -> String {
        var digest = [UInt8](repeating: 0, count: Int(SHA256_DIGEST_LENGTH))
        body.withUnsafeBytes { _ = SHA256($0.bindMemory(to: UInt8.self).baseAddress, $0.count, &digest) }
        return MessageSignature.hex(Data(digest))
    }

    /// HMAC-SHA1 through the system OpenSSL, 20 bytes. SHA-1 because Twilio signs with it; used
    /// for nothing of our own.
    public static func hmacSHA1(key: Data, message: Data) -> Data {
        var digest = [UInt8](repeating: 0, count: Int(SHA_DIGEST_LENGTH))
        var length: UInt32 = 0
        key.withUnsafeBytes { keyBytes in
            message.withUnsafeBytes { messageBytes in
                _ = HMAC(EVP_sha1(), keyBytes.baseAddress, Int32(keyBytes.count),
                         messageBytes.bindMemory(to: UInt8.self).baseAddress, messageBytes.count, &digest, &length)
            }
        }
        return Data(digest[..<Int(length)])
    }

    /// `url` as given, and with the scheme's default port (https 443, http 80) written or left out.
    static func spellings(of url: String) -> [String] {
        let defaults = ["https://": "443", "http://": "80"]
        guard let (scheme, port) = defaults.first(where: { url.lowercased().hasPrefix($0.key) }) else { return [url] }
        let rest = url.dropFirst(scheme.count)
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
        let authority = rest[..<authorityEnd], tail = rest[authorityEnd...]
        let hostStart = authority.lastIndex(of: "@").map { authority.index(after: $0) } ?? authority.startIndex
        let hostPort = authority[hostStart...]
        let userInfo = authority[..<hostStart]
        // The port follows the last colon unless that colon is inside an IPv6 literal.
        if let colon = hostPort.lastIndex(of: ":"), !hostPort[colon...].contains("]") {
            guard hostPort[hostPort.index(after: colon)...] == port else { return [url] }
            return [url, "\(url.prefix(scheme.count))\(userInfo)\(hostPort[..<colon])\(tail)"]
        }
        return [url, "\(url.prefix(scheme.count))\(userInfo)\(hostPort):\(port)\(tail)"]
    }

    /// The raw (still encoded) value of a query parameter.
    static func queryValue(named name: String, in url: String) -> String? {
        guard let query = url.split(separator: "?", maxSplits: 1).dropFirst().first else { return nil }
        let withoutFragment = query.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        for pair in withoutFragment.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if parts[0] == name { return parts.count > 1 ? String(parts[1]) : "" }
        }
        return nil
    }

    /// Constant-time equality of two strings' bytes (their lengths are not secret).
    static func equal(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        return x.count == y.count && CRYPTO_memcmp(x, y, x.count) == 0
    }
}

/// Why a webhook was refused (answer 403). The text is safe to log: it never quotes the
/// signature, a parameter or the body.
public enum WebhookRefusal: Error, CustomStringConvertible, Sendable, Equatable {
    case missingSignature
    case signatureMismatch
    /// A JSON body came without `bodySHA256` in the URL.
    case bodyHashMissing
    case bodyHashMismatch
    case unreadableBody

    public var description: String {
        switch self {
        case .missingSignature: "the request has no X-Twilio-Signature header"
        case .signatureMismatch: "the X-Twilio-Signature does not match the URL and parameters"
        case .bodyHashMissing: "a JSON body came without bodySHA256 in the URL"
        case .bodyHashMismatch: "the body does not match the signed bodySHA256"
        case .unreadableBody: "the body is not a readable form"
        }
    }
}
