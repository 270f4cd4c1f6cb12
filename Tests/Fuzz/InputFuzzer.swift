// libFuzzer harness for the parsers of outside bytes other than RPC messages, compiled together
// with them by `make fuzz` / `make fuzz-smoke` (not part of the Swift package). The first byte
// picks the parser, the rest is its input; whatever it is, each returns a value, nil or an error,
// never a trap (which would take a service or gateway down):
//
// 0 the bank-holiday file (`BankHolidays.parse`, an operator's JSON) and a day's text
// 1 a Twilio webhook's form body (`FormParameters(parsing:)`), re-encoded and parsed back
// 2 a player's `Range` header for a file whose size is the next 8 bytes (`ByteRange.parse`)
// 3 a recording's first bytes (`WAVInfo`)
// 4 Deepgram's answer (`DeepgramAnswer.segments`), mono and two-channel
// 5 Anthropic's answer (`AnthropicAnswer.analysis`)
// 6 an analysis engine's JSON (`CallAnalysis.validated`)
// 7 a transcript's text, redacted (`Redactor.redact`)
// 8 a Twilio webhook: URL, `X-Twilio-Signature` and body, checked as the telephony gateway
//   checks them (`TwilioSignature.verify`), and a form body signed right is always accepted
// 9 `X-Forwarded-For` headers from behind nginx (`ClientAddress.resolve`): an IP address or nil
// 10 a form posted to the web app (`Form.decode`), re-encoded and decoded back
// 11 a deployment file (`Deployment.parse`): when accepted, every entry a name and its addresses
//    (one host:port, or several replicas' separated by commas)
// 12 a service's configuration file (`ConfigurationFile`): when accepted, each key of the JSON
//    once, a list's names as the setting will split them, seconds the file's whole number
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzInputs(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let input = Data(bytes: data + 1, count: size - 1)
    let text = String(decoding: input, as: UTF8.self)
    switch data[0] % 13 {
    case 0:
        _ = try? BankHolidays.parse(input, source: "fuzz")
        _ = Day(text)
    case 1:
        if let form = try? FormParameters(parsing: input) {
            let encoded = form.pairs.map { "\(FormParameters.encode($0.name))=\(FormParameters.encode($0.value))" }.joined(separator: "&")
            let again = try? FormParameters(parsing: Data(encoded.utf8))
            precondition(again?.pairs.map(\.name) == form.pairs.map(\.name) && again?.pairs.map(\.value) == form.pairs.map(\.value),
                         "a form body did not survive re-encoding")
        }
    case 2:
        let size = input.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        if case .partial(let range) = ByteRange.parse(String(decoding: input.dropFirst(8), as: UTF8.self), size: size) {
            precondition(range.length > 0 && range.offset < size && range.last < size, "a range outside the file")
        }
    case 3:
        _ = WAVInfo(input)
    case 4:
        _ = DeepgramAnswer.segments(input, channels: 1)
        _ = DeepgramAnswer.segments(input, channels: 2)
    case 5:
        _ = try? AnthropicAnswer.analysis(input)
    case 6:
        _ = try? CallAnalysis.validated(json: input)
    case 7:
        _ = Redactor.redact(text)
    case 8:
        // URL, signature and body, separated by NUL bytes; the body a form or JSON by a bit.
        let parts = input.split(separator: 0, maxSplits: 2, omittingEmptySubsequences: false).map { Data($0) }
        let url = String(decoding: parts[0], as: UTF8.self), claimed = parts.count > 1 ? String(decoding: parts[1], as: UTF8.self) : nil
        let body = parts.count > 2 ? parts[2] : Data(), contentType = data[0] & 0x80 == 0 ? "application/x-www-form-urlencoded" : "application/json"
        let twilio = TwilioSignature(authToken: "12345678901234567890123456789012")
        _ = try? twilio.verify(signature: claimed, url: url, body: body, contentType: contentType)
        if let form = try? FormParameters(parsing: body) {
            let right = twilio.signature(url: url, parameters: form)
            precondition((try? twilio.verify(signature: right, url: url, body: body, contentType: "application/x-www-form-urlencoded")) != nil,
                         "a webhook signed right was refused")
        }
    case 9:
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let peer = data[0] & 0x80 == 0 ? "127.0.0.1" : nil
        if let address = ClientAddress.resolve(peer: peer, forwardedFor: lines, trustedProxies: ["127.0.0.1", "::1"]) {
            precondition(ClientAddress.isIPAddress(address), "a client address that is not an IP address")
        }
    case 11:
        if let deployment = try? Deployment.parse(input, path: "fuzz") {
            for entry in deployment.everyone {
                precondition(Deployment.isName(entry.name) && Deployment.addresses(entry.address) != nil, "a deployment entry accepted unchecked")
            }
        }
    case 12:
        // Checked against the JSON read again: each list reaches its setting as text that splits
        // back into the same names, and seconds are the file's own whole number, never a boolean.
        let known = ["listen": false, "database": false, "drain_seconds": false, "credential_gateways": true, "blob_store": false, "allowed_networks": true]
        if let file = try? ConfigurationFile(parsing: input, path: "fuzz", known: known),
           let object = (try? JSONSerialization.jsonObject(with: input)) as? [String: Any] {
            precondition(file.assignments.count == object.keys.filter { $0 != "peers" }.count, "a configuration key lost or invented")
            for assignment in file.assignments {
                let given = object[assignment.key]
                if known[assignment.key] == true {
                    let names = given as? [String] ?? []
                    let split = assignment.value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
                    precondition(split == names, "a list that does not reach its setting as given")
                } else if assignment.key == "drain_seconds" {
                    let number = given as? NSNumber
                    precondition(number !== (true as NSNumber) && number !== (false as NSNumber) && number.map { Int(assignment.value) == Int(exactly: $0) } == true,
                                 "seconds that are not the file's whole number")
                } else {
                    precondition(given as? String == assignment.value, "a text setting changed on its way")
                }
            }
        }
    default:
        if let fields = Form.decode(text) {
            let encoded = fields.map { "\(Form.escape($0.key))=\(Form.escape($0.value))" }.joined(separator: "&")
            precondition(Form.decode(encoded) == fields, "a form did not survive re-encoding")
        }
    }
    return 0
}
