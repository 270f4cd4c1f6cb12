import CallTraceServiceHost
import Testing

/// One check for the free text every service keeps (reasons, sources, notes), so a field one
/// service refuses is never one another accepts.
@Suite("Free text in records")
struct DomainTextTests {
    @Test("One line: trimmed; no control character (C0, DEL, C1) and no line or paragraph separator; at most max; the error never repeats the text",
          arguments: ["a\nb", "a\rb", "a\u{1B}[2Jb", "a\u{7F}b", "a\u{9B}31mb", "a\u{2028}b", "a\u{2029}b", String(repeating: "x", count: 11)])
    func refused(_ text: String) throws {
        let error = #expect(throws: DomainError.self) { try DomainText.line(text, "reason", max: 10) }
        #expect("\(error!)".contains("reason is one line of at most 10 characters"))
        #expect(!"\(error!)".contains(text))
    }

    @Test("What people type passes, trimmed; empty passes unless required")
    func accepted() throws {
        #expect(try DomainText.line("  Google Ads – brand  ", "source", max: 30) == "Google Ads – brand")
        #expect(try DomainText.line("Müller & Söhne", "source", max: 30) == "Müller & Söhne")
        #expect(try DomainText.line("", "campaign", max: 30) == "")
        #expect(throws: DomainError.self) { try DomainText.line("   ", "source", max: 30, required: true) }
        #expect(try DomainText.paragraph(" one\ntwo \n", "notes", max: 20) == "one\ntwo")
    }
}
