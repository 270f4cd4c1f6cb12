import Foundation
import Testing
import Twilio

/// The example in Twilio's security documentation ("Validating requests are coming from Twilio",
/// https://www.twilio.com/docs/usage/webhooks/webhooks-security): auth token `12345`, a POST to
/// this URL with these parameters, signed `0/KCTR6DLpKmkAf8muzZqo1nDgQ=`.
enum TwilioVector {
    static let authToken = "12345"
    static let url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    static let parameters: FormParameters = [
        "CallSid": "CA1234567890ABCDE", "Caller": "+12349013030", "Digits": "1234", "From": "+12349013030", "To": "+18005551212",
    ]
    static let signature = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    /// The same parameters as Twilio POSTs them: in another order, `+` escaped.
    static let body = Data("To=%2B18005551212&Digits=1234&CallSid=CA1234567890ABCDE&From=%2B12349013030&Caller=%2B12349013030".utf8)

    /// The JSON-body example of Twilio's helper libraries' tests (twilio-python
    /// `tests/unit/test_request_validator.py`, `test_validation_of_body_succeeds`).
    static let json = Data(#"{"property": "value", "boolean": true}"#.utf8)
    static let jsonHash = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
    static let jsonSignature = "a9nBmqA0ju/hNViExpshrM61xv4="
}

@Suite("Twilio: webhook signatures (X-Twilio-Signature)")
struct TwilioSignatureTests {
    let signer = TwilioSignature(authToken: TwilioVector.authToken)

    @Test("Twilio's documented example signs to its documented signature, and a form body POSTed in another order verifies")
    func documentedVector() throws {
        #expect(signer.signature(url: TwilioVector.url, parameters: TwilioVector.parameters) == TwilioVector.signature)
        let parameters = try signer.verify(signature: TwilioVector.signature, url: TwilioVector.url, body: TwilioVector.body,
                                           contentType: "application/x-www-form-urlencoded")
        #expect(parameters["From"] == "+12349013030" && parameters["Digits"] == "1234" && parameters.pairs.count == 5)
    }

    @Test("The scheme's default port written out (:443) is the same endpoint: Twilio's signature over either spelling verifies")
    func defaultPortSpellings() throws {
        // Computed independently (Python hmac) over the URL with :443 written out.
        let overPort443 = "EpDEmp1PyjDYp77YxYU3GILBWzE="
        #expect(signer.isValid(overPort443, url: TwilioVector.url, parameters: TwilioVector.parameters))
        #expect(signer.isValid(TwilioVector.signature, url: "https://mycompany.com:443/myapp.php?foo=1&bar=2", parameters: TwilioVector.parameters))
    }

    static let refused: [(String, String, FormParameters, String?)] = {
        var changed = TwilioVector.parameters
        changed.pairs[2].value = "1235"
        var added = TwilioVector.parameters
        added.append("CallStatus", "completed")
        var dropped = TwilioVector.parameters
        dropped.pairs.removeLast()
        let url = TwilioVector.url, sig = TwilioVector.signature
        return [
            ("a changed parameter value", url, changed, sig),
            ("an added parameter", url, added, sig),
            ("a dropped parameter", url, dropped, sig),
            ("another path", "https://mycompany.com/other.php?foo=1&bar=2", TwilioVector.parameters, sig),
            ("another query", "https://mycompany.com/myapp.php?foo=1&bar=3", TwilioVector.parameters, sig),
            ("another host", "https://evil.example/myapp.php?foo=1&bar=2", TwilioVector.parameters, sig),
            ("another port", "https://mycompany.com:8443/myapp.php?foo=1&bar=2", TwilioVector.parameters, sig),
            ("the other scheme", "http://mycompany.com/myapp.php?foo=1&bar=2", TwilioVector.parameters, sig),
            ("http's default port on https", "https://mycompany.com:80/myapp.php?foo=1&bar=2", TwilioVector.parameters, sig),
            ("a signature one character short", url, TwilioVector.parameters, String(sig.dropLast())),
            ("a signature of other bytes", url, TwilioVector.parameters, "1/KCTR6DLpKmkAf8muzZqo1nDgQ="),
        ]
    }()

    @Test("Refused: a changed parameter, URL, host, port or scheme, and a signature not exactly Twilio's", arguments: refused)
    func refusals(_ what: String, _ url: String, _ parameters: FormParameters, _ signature: String?) {
        #expect(!signer.isValid(signature ?? "", url: url, parameters: parameters), "\(what)")
        let body = parameters.encoded
        #expect(throws: WebhookRefusal.signatureMismatch, "\(what)") {
            _ = try signer.verify(signature: signature, url: url, body: body, contentType: "application/x-www-form-urlencoded")
        }
    }

    @Test("Refused: no X-Twilio-Signature header (absent or empty), and the right signature under another auth token")
    func missingHeaderAndOtherToken() {
        for header in [nil, ""] as [String?] {
            #expect(throws: WebhookRefusal.missingSignature) {
                _ = try signer.verify(signature: header, url: TwilioVector.url, body: TwilioVector.body, contentType: nil)
            }
        }
        #expect(throws: WebhookRefusal.signatureMismatch) {
            _ = try TwilioSignature(authToken: "54321").verify(signature: TwilioVector.signature, url: TwilioVector.url,
                                                               body: TwilioVector.body, contentType: nil)
        }
        #expect(WebhookRefusal.signatureMismatch.description.contains("X-Twilio-Signature"))
    }

    @Test("JSON bodies: bodySHA256 in the signed URL must be the body's SHA-256; a changed body, a changed hash or none is refused")
    func jsonBody() throws {
        let url = TwilioVector.url + "&bodySHA256=" + TwilioVector.jsonHash
        #expect(TwilioSignature.bodySHA256(TwilioVector.json) == TwilioVector.jsonHash)
        let parameters = try signer.verify(signature: TwilioVector.jsonSignature, url: url, body: TwilioVector.json,
                                           contentType: "application/json; charset=utf-8")
        #expect(parameters.pairs.isEmpty)
        #expect(throws: WebhookRefusal.bodyHashMismatch) {
            _ = try signer.verify(signature: TwilioVector.jsonSignature, url: url, body: Data(#"{"property": "evil", "boolean": true}"#.utf8),
                                  contentType: "application/json")
        }
        let otherHash = TwilioSignature.bodySHA256(Data("other".utf8))
        #expect(throws: WebhookRefusal.signatureMismatch, "a hash the signature does not cover") {
            _ = try signer.verify(signature: TwilioVector.jsonSignature, url: TwilioVector.url + "&bodySHA256=" + otherHash,
                                  body: Data("other".utf8), contentType: "application/json")
        }
        #expect(throws: WebhookRefusal.bodyHashMissing) {
            _ = try signer.verify(signature: TwilioVector.jsonSignature, url: TwilioVector.url, body: TwilioVector.json,
                                  contentType: "application/json")
        }
    }

    @Test("A repeated parameter name is sorted by value too, as Twilio's libraries sort it")
    func repeatedNames() {
        // HMAC-SHA1("12345", "https://example.test/hookAaAzB2"), computed independently.
        let parameters: FormParameters = FormParameters([("B", "2"), ("A", "z"), ("A", "a")])
        #expect(signer.signature(url: "https://example.test/hook", parameters: parameters) == "+7B/4AdV6J7SPK/OI3+gE4kaHY0=")
    }

    @Test("HMAC-SHA1 through OpenSSL matches RFC 2202's first test case")
    func hmacSHA1() {
        let digest = TwilioSignature.hmacSHA1(key: Data(repeating: 0x0b, count: 20), message: Data("Hi There".utf8))
        #expect(digest.map { String(format: "%02x", $0) }.joined() == "b617318655057264e28bc0b6fb378c8ef146be00")
    }
}

@Suite("Twilio: form bodies (application/x-www-form-urlencoded)")
struct FormParametersTests {
    @Test("+ is a space, escapes are UTF-8, repeated names and empty values are kept in order")
    func parsing() throws {
        let form = try FormParameters(parsing: Data("a=1&b=two+words&c=%2B44%207700&&d=&e&a=2&f=caf%C3%A9&g=x%3Dy%26z".utf8))
        #expect(form.pairs.map(\.name) == ["a", "b", "c", "d", "e", "a", "f", "g"])
        #expect(form["b"] == "two words" && form["c"] == "+44 7700" && form["d"] == "" && form["e"] == "")
        #expect(form.values(of: "a") == ["1", "2"] && form["f"] == "café" && form["g"] == "x=y&z")
    }

    @Test("Encoding and parsing are inverses, + and space included")
    func roundTrip() throws {
        let form = FormParameters([("To", "+447700900123"), ("Say", "Hello & welcome, 100%"), ("Twiml", "<Response/>"), ("To", "é")])
        #expect(form.encodedText.contains("To=%2B447700900123"))
        #expect(try FormParameters(parsing: form.encoded) == form)
    }

    @Test("Malformed escapes and bytes that are not UTF-8 are refused without quoting the body", arguments: ["a=%zz", "a=%4", "a=%", "a=%FF"])
    func malformed(_ body: String) {
        #expect(throws: FormError.self) { _ = try FormParameters(parsing: Data(body.utf8)) }
    }
}
