import CallTraceHTTP
import Foundation
import Testing
@testable import WebGateway

/// The gateway's pure pieces, case by case.
struct WebUnitTests {
    @Test(arguments: [
        (nil, 1000, ByteRange.Request.whole),
        ("bytes=0-499", 1000, .partial(.init(offset: 0, length: 500))),
        ("bytes=500-", 1000, .partial(.init(offset: 500, length: 500))),
        ("bytes=-200", 1000, .partial(.init(offset: 800, length: 200))),
        ("bytes=-5000", 1000, .partial(.init(offset: 0, length: 1000))),
        ("bytes=900-5000", 1000, .partial(.init(offset: 900, length: 100))),
        ("bytes=1000-", 1000, .unsatisfiable),
        ("bytes=-0", 1000, .unsatisfiable),
        ("bytes=0-", 0, .unsatisfiable),
        ("bytes=18446744073709551616-", 1000, .unsatisfiable),
        ("bytes=0-18446744073709551616", 1000, .partial(.init(offset: 0, length: 1000))),
        ("bytes=-18446744073709551616", 1000, .partial(.init(offset: 0, length: 1000))),
        ("bytes=5-1", 1000, .whole), ("bytes=0-1,3-4", 1000, .whole), ("items=0-1", 1000, .whole), ("bytes=-", 1000, .whole),
        ("bytes= 1-2", 1000, .partial(.init(offset: 1, length: 2))), ("bytes=+1-2", 1000, .whole), ("bytes=١-٢", 1000, .whole),
    ] as [(String?, UInt64, ByteRange.Request)])
    func byteRanges(header: String?, size: UInt64, expected: ByteRange.Request) {
        #expect(ByteRange.parse(header, size: size) == expected)
    }

    @Test func theClientAddressIsBelievedOnlyFromTrustedProxies() {
        let nginx: Set<String> = ["127.0.0.1"]
        // Straight from a browser: its own address, whatever header it sends.
        #expect(ClientAddress.resolve(peer: "203.0.113.9", forwardedFor: ["198.51.100.1"], trustedProxies: nginx) == "203.0.113.9")
        // Through nginx: the right-most address not ours; one the client added to the left is ignored.
        #expect(ClientAddress.resolve(peer: "127.0.0.1", forwardedFor: ["198.51.100.1, 203.0.113.9"], trustedProxies: nginx) == "203.0.113.9")
        #expect(ClientAddress.resolve(peer: "127.0.0.1", forwardedFor: [], trustedProxies: nginx) == "127.0.0.1")
        #expect(ClientAddress.resolve(peer: "127.0.0.1", forwardedFor: ["not-an-address"], trustedProxies: nginx) == nil)
        // An address that a NUL byte cuts short for inet_pton is no address (found by `make fuzz`).
        #expect(ClientAddress.resolve(peer: "127.0.0.1", forwardedFor: ["::ffff:19\u{0}junk 100.2"], trustedProxies: nginx) == nil)
        #expect(!ClientAddress.isIPAddress("203.0.113.9\u{0}.evil"))
        #expect(ClientAddress.resolve(peer: "::ffff:203.0.113.9", forwardedFor: [], trustedProxies: []) == "203.0.113.9")
        // An IPv4-mapped address however spelt is its IPv4 address; an IPv6 address that merely
        // starts `::ffff:` and holds a dotted tail is not mapped (found by `make fuzz`).
        #expect(ClientAddress.resolve(peer: "0:0:0:0:0:FFFF:203.0.113.9", forwardedFor: [], trustedProxies: []) == "203.0.113.9")
        #expect(ClientAddress.resolve(peer: "::ffff:cb00:7109", forwardedFor: [], trustedProxies: []) == "203.0.113.9")
        let unmapped = ClientAddress.resolve(peer: "127.0.0.1", forwardedFor: ["::ffff:19:ffff:198.51.100.2, 127.0.0.1"], trustedProxies: nginx)
        #expect(unmapped == "::ffff:19:ffff:c633:6402")
        #expect(unmapped.map(ClientAddress.isIPAddress) == true)
        #expect(ClientAddress.resolve(peer: nil, forwardedFor: ["2001:DB8::1"], trustedProxies: []) == "2001:db8::1")
        #expect(ClientAddress.resolve(peer: nil, forwardedFor: [], trustedProxies: []) == nil)
    }

    @Test func formsDecodeOrAreRefused() {
        #expect(Form.decode("a=1&b=two+words&c=%C3%A9&d") == ["a": "1", "b": "two words", "c": "é", "d": ""])
        #expect(Form.decode("a=%ZZ") == nil)
        #expect(Form.decode("a=%FF") == nil)
    }

    @Test func afterSignInOnlyAPathOfThisSite() {
        for path in ["/calls", "/calls/c-1?x=1"] { #expect(SignInPages.returnPath(path) == path) }
        for path in [nil, "", "//evil.example", "https://evil.example", "/\\evil", "calls", "/sign-in", "/a\u{0}b", "/é"] {
            #expect(SignInPages.returnPath(path) == "/calls", "\(path ?? "nil")")
        }
    }

    @Test func qrCodesAreDrawnAsSVG() throws {
        let svg = try #require(QRCode.svg("otpauth://totp/CallTrace:a@b.example?secret=JBSWY3DPEHPK3PXP&issuer=CallTrace"))
        #expect(svg.hasPrefix("<svg") && svg.contains("<path d=\"M") && !svg.contains("style"))
        #expect(QRCode.svg(String(repeating: "x", count: 5000)) == nil)
    }

    @Test func settingsAreCheckedAsTheyAreRead() {
        #expect(HTTPListenAddress("127.0.0.1:8080") == .tcp(host: "127.0.0.1", port: 8080))
        #expect(HTTPListenAddress("[::1]:80") == .tcp(host: "::1", port: 80))
        #expect(HTTPListenAddress("unix:/run/calltrace/web.sock") == .unix(path: "/run/calltrace/web.sock"))
        for bad in ["8080", ":80", "unix:relative", "host:99999"] { #expect(HTTPListenAddress(bad) == nil, "\(bad)") }
        #expect(PublicURL("https://calltrace.firm.example/")?.base == "https://calltrace.firm.example")
        #expect(PublicURL("http://localhost:8080") != nil)
        for bad in ["http://calltrace.firm.example", "https://x.example/app", "ftp://x.example", "calltrace.firm.example"] {
            #expect(PublicURL(bad) == nil, "\(bad)")
        }
    }
}
