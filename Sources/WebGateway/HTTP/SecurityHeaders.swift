import HTTPTypes
import Hummingbird

/// The headers every answer carries, so the pages are safe on the internet: no script or style
/// but our own files, never framed, no referrer beyond the site, no type sniffing, and nothing
/// that shows call data kept by the browser or a proxy.
enum SecurityHeaders {
    static let contentSecurityPolicy = [
        "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "media-src 'self'",
        "form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'", "connect-src 'self'",
    ].joined(separator: "; ")

    static func apply(to headers: inout HTTPFields, cacheable: Bool) {
        headers[.contentSecurityPolicy] = contentSecurityPolicy
        headers[.xContentTypeOptions] = "nosniff"
        headers[HTTPField.Name("Referrer-Policy")!] = "no-referrer"
        headers[HTTPField.Name("X-Frame-Options")!] = "DENY"
        headers[HTTPField.Name("Cross-Origin-Opener-Policy")!] = "same-origin"
        headers[HTTPField.Name("Permissions-Policy")!] = "camera=(), microphone=(), geolocation=()"
        // Nothing of it belongs in a search engine (share links least of all).
        headers[HTTPField.Name("X-Robots-Tag")!] = "noindex, nofollow"
        if !cacheable {
            headers[.cacheControl] = "no-store"
            headers[HTTPField.Name("Pragma")!] = "no-cache"
        }
    }

    /// The website tag's answers (`/dni.js`, `/dni/v1/…`), which other sites' pages load: readable
    /// across origins (the script by anyone; the JSON only as its CORS headers say), never a
    /// document of ours (nothing it may load, frame or be framed by), no referrer, no sniffing.
    /// The app's own pages keep `apply`.
    static func applyEmbedded(to headers: inout HTTPFields, cacheable: Bool) {
        headers[.contentSecurityPolicy] = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
        headers[.xContentTypeOptions] = "nosniff"
        headers[HTTPField.Name("Referrer-Policy")!] = "no-referrer"
        headers[.crossOriginResourcePolicy] = "cross-origin"
        headers[HTTPField.Name("X-Robots-Tag")!] = "noindex, nofollow"
        if !cacheable { headers[.cacheControl] = "no-store" }
    }
}
