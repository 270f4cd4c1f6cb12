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
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzInputs(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let input = Data(bytes: data + 1, count: size - 1)
    let text = String(decoding: input, as: UTF8.self)
    switch data[0] % 8 {
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
    default:
        _ = Redactor.redact(text)
    }
    return 0
}
