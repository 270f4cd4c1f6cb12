import Foundation

/// Takes card and bank details out of what was said before anything is stored (P16): card
/// numbers (Luhn-valid, 13–19 digits, written or spoken digit by digit, grouped or run
/// together), expiry dates and security codes named near card talk, and UK sort codes and
/// account numbers, each replaced by a marker such as `[card number]`. Phone numbers, dates,
/// amounts of money, case references and postcodes stay: they are what a firm needs from a call.
///
/// The same code serves the transcription job, `SubmitTranscript` and `calltrace transcripts redact`.
public enum Redactor {
    public struct Result: Sendable, Equatable {
        public let text: String
        /// How many details were replaced.
        public let count: Int
        /// Where they were in the text given, as character offsets, in order: what to mute in the audio.
        public var spans: [Range<Int>] = []
    }

    public static let cardMarker = "[card number]"
    public static let expiryMarker = "[expiry date]"
    public static let securityCodeMarker = "[security code]"
    public static let sortCodeMarker = "[sort code]"
    public static let accountMarker = "[account number]"

    /// One word of the text, with where it is.
    struct Token {
        let range: Range<String.Index>
        /// Lower-cased.
        let word: String
        /// The digits it stands for: itself when written ("4111"), one for a spoken digit
        /// ("four", "oh"), none for other words. "double"/"triple" repeat the next digit.
        let digits: String?
        /// What separates it from the previous token.
        let gap: Substring
    }

    static let spoken: [String: String] = [
        "zero": "0", "oh": "0", "o": "0", "nought": "0", "nil": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
        "six": "6", "seven": "7", "eight": "8", "nine": "9",
    ]
    static let repeaters: [String: Int] = ["double": 2, "triple": 3]

    /// Words that mean the conversation is about a payment card.
    static let cardTalk = ["card", "visa", "mastercard", "amex", "debit", "credit", "expiry", "cvv", "cvc"]
    static let expiryWords = ["expiry", "expires", "expiration", "exp", "until", "end date", "expiry date", "valid to"]
    static let securityWords = ["cvv", "cvc", "cv2", "csc", "security code", "security number", "digits on the back", "on the back",
                                "last three", "three digits", "3 digits"]
    static let sortCodeWords = ["sort code", "sort-code", "sortcode"]
    static let accountWords = ["account number", "account no", "acc no", "account", "bank account"]

    public static func redact(_ text: String) -> Result {
        let tokens = tokenize(text)
        guard !tokens.isEmpty else { return Result(text: text, count: 0) }
        var replaced: [(Range<Int>, String)] = []  // token index ranges, marker
        var taken = [Bool](repeating: false, count: tokens.count)
        func take(_ range: Range<Int>, _ marker: String) {
            guard !range.isEmpty, !range.contains(where: { taken[$0] }) else { return }
            for i in range { taken[i] = true }
            replaced.append((range, marker))
        }
        let runs = digitRuns(tokens)

        // Card numbers: the longest Luhn-valid window of whole tokens, 13–19 digits, not starting with 0.
        for run in runs {
            var start = run.lowerBound
            while start < run.upperBound {
                var best: Range<Int>?
                var digits = ""
                for end in start..<run.upperBound {
                    digits += expand(tokens, at: end)
                    if digits.count > 19 { break }
                    if digits.count >= 13 && digits.first != "0" && luhn(digits) { best = start..<(end + 1) }
                }
                if let best {
                    take(best, cardMarker)
                    start = best.upperBound
                } else {
                    start += 1
                }
            }
        }
        let lowered = text.lowercased()
        let aboutCards = replaced.contains { $0.1 == cardMarker } || cardTalk.contains { lowered.contains($0) }

        // Details named by a keyword: the first run of the right length within a few words after it.
        func afterKeyword(_ keywords: [String], lengths: ClosedRange<Int>, within: Int, marker: String) {
            for (index, _) in tokens.enumerated() where keywordEnds(tokens, at: index, keywords) {
                for run in runs where run.lowerBound > index && run.lowerBound <= index + within {
                    if let window = window(in: run, tokens: tokens, lengths: lengths) { take(window, marker); break }
                }
            }
        }
        if aboutCards {
            afterKeyword(expiryWords, lengths: 3...6, within: 4, marker: expiryMarker)
            afterKeyword(securityWords, lengths: 3...4, within: 6, marker: securityCodeMarker)
        }
        afterKeyword(sortCodeWords, lengths: 6...6, within: 4, marker: sortCodeMarker)
        afterKeyword(accountWords, lengths: 7...8, within: 4, marker: accountMarker)
        // A sort code written NN-NN-NN next to an account number.
        if replaced.contains(where: { $0.1 == accountMarker }) {
            for run in runs where run.count == 3 && (run.lowerBound..<run.upperBound).allSatisfy({ tokens[$0].digits?.count == 2 }) {
                let gaps = tokens[run.lowerBound + 1].gap + tokens[run.lowerBound + 2].gap
                if gaps.allSatisfy({ $0 == "-" }) { take(run, sortCodeMarker) }
            }
        }

        guard !replaced.isEmpty else { return Result(text: text, count: 0) }
        var output = text
        var spans: [Range<Int>] = []
        for (range, marker) in replaced.sorted(by: { $0.0.lowerBound > $1.0.lowerBound }) {
            let characters = tokens[range.lowerBound].range.lowerBound..<tokens[range.upperBound - 1].range.upperBound
            spans.append(text.distance(from: text.startIndex, to: characters.lowerBound)..<text.distance(from: text.startIndex, to: characters.upperBound))
            output.replaceSubrange(characters, with: marker)
        }
        return Result(text: output, count: replaced.count, spans: spans.reversed())
    }

    // MARK: Pieces

    static func tokenize(_ text: String) -> [Token] {
        var tokens: [Token] = []
        var index = text.startIndex
        var gapStart = index
        while index < text.endIndex {
            let character = text[index]
            guard character.isLetter || character.isNumber else {
                index = text.index(after: index)
                continue
            }
            let start = index
            let digitsOnly = character.isASCII && character.isNumber
            while index < text.endIndex, text[index].isLetter || text[index].isNumber || text[index] == "'" {
                // A run of digits ends where letters begin ("4th", "SW1A" stay one word).
                index = text.index(after: index)
            }
            let word = String(text[start..<index]).lowercased()
            let digits: String?
            if digitsOnly, word.allSatisfy({ $0.isASCII && $0.isNumber }) {
                digits = word
            } else {
                digits = spoken[word]
            }
            tokens.append(Token(range: start..<index, word: word, digits: digits, gap: text[gapStart..<start]))
            gapStart = index
        }
        return tokens
    }

    /// Runs of digit-bearing tokens ("double"/"triple" included when a digit follows). Written
    /// groups joined by a comma, a full stop or a slash ("£1,250.00", "12/06/2024") stay apart
    /// from the groups around them, so amounts and dates never join a card number.
    static func digitRuns(_ tokens: [Token]) -> [Range<Int>] {
        var runs: [Range<Int>] = []
        var start: Int?
        func bearsDigits(_ i: Int) -> Bool {
            tokens[i].digits != nil || (repeaters[tokens[i].word] != nil && i + 1 < tokens.count && spoken[tokens[i + 1].word] != nil)
        }
        for i in tokens.indices {
            let continues = start != nil && bearsDigits(i) && joins(tokens[i - 1], tokens[i])
            if continues { continue }
            if let s = start { runs.append(s..<i) }
            start = bearsDigits(i) ? i : nil
        }
        if let s = start { runs.append(s..<tokens.count) }
        return runs
    }

    static func joins(_ left: Token, _ right: Token) -> Bool {
        let gap = right.gap
        let written = left.word.first?.isNumber == true && right.word.first?.isNumber == true
        // "12/26", "03/2027": a month and a year, as expiry dates are written.
        if gap == "/" { return written && left.word.count <= 2 && (2...4).contains(right.word.count) }
        guard gap.count <= 3, gap.allSatisfy({ " -,.\u{00A0}".contains($0) }) else { return false }
        let groups = written && left.word.count > 1 && right.word.count > 1
        return !(groups && gap.contains(where: { ",.".contains($0) }))
    }

    /// The digits token `i` stands for, with "double"/"triple" repeating the next spoken digit.
    static func expand(_ tokens: [Token], at i: Int) -> String {
        if let times = repeaters[tokens[i].word], i + 1 < tokens.count, let digit = spoken[tokens[i + 1].word] {
            return String(repeating: digit, count: times - 1)
        }
        return tokens[i].digits ?? ""
    }

    /// The first window of whole tokens from the run's start whose digits number within `lengths`.
    static func window(in run: Range<Int>, tokens: [Token], lengths: ClosedRange<Int>) -> Range<Int>? {
        var digits = 0
        var found: Range<Int>?
        for end in run {
            digits += expand(tokens, at: end).count
            if digits > lengths.upperBound { break }
            if lengths.contains(digits) { found = run.lowerBound..<(end + 1) }
        }
        return found
    }

    /// Whether one of `keywords` (one or more words) ends at token `index`.
    static func keywordEnds(_ tokens: [Token], at index: Int, _ keywords: [String]) -> Bool {
        keywords.contains { keyword in
            let words = keyword.split(whereSeparator: { $0 == " " || $0 == "-" }).map(String.init)
            guard index + 1 >= words.count else { return false }
            return zip(words, tokens[(index + 1 - words.count)...index]).allSatisfy { $0 == $1.word }
        }
    }

    /// The Luhn check of payment card numbers.
    static func luhn(_ digits: String) -> Bool {
        var sum = 0
        for (position, character) in digits.reversed().enumerated() {
            guard let value = character.wholeNumberValue else { return false }
            sum += position % 2 == 1 ? (value * 2 > 9 ? value * 2 - 9 : value * 2) : value
        }
        return sum % 10 == 0
    }
}
