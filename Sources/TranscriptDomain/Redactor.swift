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

    /// One utterance of a transcript: what was said, by whom, and when it started.
    public struct Utterance: Sendable {
        public let text: String
        public let speaker: String
        public let startMs: UInt64

        public init(_ text: String, speaker: String = "", startMs: UInt64 = 0) {
            self.text = text
            self.speaker = speaker
            self.startMs = startMs
        }
    }

    public static let cardMarker = "[card number]"
    public static let expiryMarker = "[expiry date]"
    public static let securityCodeMarker = "[security code]"
    public static let sortCodeMarker = "[sort code]"
    public static let accountMarker = "[account number]"

    /// One word of the text, with where it is.
    struct Token {
        /// Which utterance it is in.
        var piece = 0
        let range: Range<String.Index>
        /// Lower-cased.
        let word: String
        /// The digits it stands for: itself when written ("4111"), one for a spoken digit
        /// ("four", "oh"), two for a spoken number ("eleven", "forty"), none for other words.
        /// "double"/"triple" repeat the next digit; "forty one" is 41 (see `expand`).
        let digits: String?
        /// What separates it from the previous token (in the stream of the whole transcript: a
        /// space between two utterances that may join, a line break between two that may not).
        var gap: Substring
    }

    static let spoken: [String: String] = [
        "zero": "0", "oh": "0", "o": "0", "nought": "0", "nil": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
        "six": "6", "seven": "7", "eight": "8", "nine": "9",
        "ten": "10", "eleven": "11", "twelve": "12", "thirteen": "13", "fourteen": "14", "fifteen": "15", "sixteen": "16",
        "seventeen": "17", "eighteen": "18", "nineteen": "19",
        "twenty": "20", "thirty": "30", "forty": "40", "fourty": "40", "fifty": "50", "sixty": "60", "seventy": "70", "eighty": "80",
        "ninety": "90",
    ]
    static let tens: Set<String> = ["twenty", "thirty", "forty", "fourty", "fifty", "sixty", "seventy", "eighty", "ninety"]
    static let repeaters: [String: Int] = ["double": 2, "triple": 3]
    /// Hesitations inside a run of digits ("4111 1111, um, 1111"): passed over.
    static let fillers: Set<String> = ["um", "uh", "er", "erm", "uhm", "hmm", "ah", "mm", "like", "sorry", "and", "then"]
    /// The other party's short acknowledgements between two groups of digits ("yes", "ok",
    /// "mm-hm"): an utterance of at most three of these does not break the caller's number.
    static let acknowledgements: Set<String> = ["yes", "yeah", "yep", "yup", "ok", "okay", "k", "mm", "hm", "mhm", "mm-hm", "hmm",
                                                "uh-huh", "uh", "huh", "right", "sure", "go", "on", "got", "it", "that", "thanks",
                                                "thank", "you", "great", "lovely", "perfect", "fine", "cool", "alright", "and", "next",
                                                "continue", "carry", "sorry", "please"]

    /// Words that mean the conversation is about a payment card.
    static let cardTalk = ["card", "visa", "mastercard", "amex", "debit", "credit", "expiry", "cvv", "cvc"]
    static let expiryWords = ["expiry", "expires", "expiration", "exp", "until", "end date", "expiry date", "valid to"]
    static let securityWords = ["cvv", "cvc", "cv2", "csc", "security code", "security number", "digits on the back", "on the back",
                                "last three", "three digits", "3 digits"]
    static let sortCodeWords = ["sort code", "sort-code", "sortcode"]
    static let accountWords = ["account number", "account no", "acc no", "account", "bank account"]

    /// One text on its own (a note, a summary, `calltrace transcripts redact`).
    public static func redact(_ text: String) -> Result {
        redact(transcript: [Utterance(text)])[0]
    }

    /// A whole call's transcript, both parties in time order, redacted as one conversation: a
    /// card number read over several utterances of the same speaker, or with the other party's
    /// "yes" or "ok" between its groups, is found as one. The results are in the order given.
    public static func redact(transcript utterances: [Utterance]) -> [Result] {
        let order = utterances.indices.sorted { (utterances[$0].startMs, $0) < (utterances[$1].startMs, $1) }
        let acknowledging = order.enumerated().map { position, index -> Bool in
            let words = tokenize(utterances[index].text).map(\.word)
            guard !words.isEmpty, words.count <= 3, words.allSatisfy({ acknowledgements.contains($0) || fillers.contains($0) }) else {
                return false
            }
            let previous = order[..<position].last.map { utterances[$0].speaker }
            return previous != nil && previous != utterances[index].speaker
        }
        // The stream: every token in time order, less hesitations and acknowledgements.
        var tokens: [Token] = []
        var lastSpeaker: String?
        for (position, index) in order.enumerated() where !acknowledging[position] {
            var first = true
            for var token in tokenize(utterances[index].text) where !fillers.contains(token.word) || token.digits != nil {
                token.piece = index
                if first {
                    token.gap = lastSpeaker == utterances[index].speaker ? " " : "\n"
                    first = false
                }
                tokens.append(token)
            }
            if !first { lastSpeaker = utterances[index].speaker }
        }
        let lowered = utterances.map { $0.text.lowercased() }.joined(separator: "\n")
        let replaced = find(tokens, aboutCards: cardTalk.contains { lowered.contains($0) })

        // Back to each utterance: the part of a detail within it becomes the detail's marker.
        var results: [Result] = []
        for (index, utterance) in utterances.enumerated() {
            let text = utterance.text
            var parts: [(Range<String.Index>, String)] = []
            for (range, marker) in replaced {
                let mine = range.filter { tokens[$0].piece == index }
                guard let first = mine.first, let last = mine.last else { continue }
                parts.append((tokens[first].range.lowerBound..<tokens[last].range.upperBound, marker))
            }
            guard !parts.isEmpty else { results.append(Result(text: text, count: 0)); continue }
            var output = text
            var spans: [Range<Int>] = []
            for (characters, marker) in parts.sorted(by: { $0.0.lowerBound > $1.0.lowerBound }) {
                spans.append(text.distance(from: text.startIndex, to: characters.lowerBound)..<text.distance(from: text.startIndex, to: characters.upperBound))
                output.replaceSubrange(characters, with: marker)
            }
            results.append(Result(text: output, count: parts.count, spans: spans.reversed()))
        }
        return results
    }

    /// The details in a stream of tokens: ranges of token indices and their markers.
    static func find(_ tokens: [Token], aboutCards talk: Bool) -> [(Range<Int>, String)] {
        guard !tokens.isEmpty else { return [] }
        var replaced: [(Range<Int>, String)] = []  // token index ranges, marker
        var taken = [Bool](repeating: false, count: tokens.count)
        func take(_ range: Range<Int>, _ marker: String) {
            guard !range.isEmpty, !range.contains(where: { taken[$0] }) else { return }
            for i in range { taken[i] = true }
            replaced.append((range, marker))
        }
        let runs = digitRuns(tokens)

        // Card numbers: the longest Luhn-valid window of whole tokens, 13–19 digits, not starting with 0.
        var cards: [Range<Int>] = []
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
                    cards.append(best)
                    start = best.upperBound
                } else {
                    start += 1
                }
            }
        }
        let aboutCards = !cards.isEmpty || talk

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
        // What follows a card number is card data too: the next short runs, whole, within a few
        // sentences, are its expiry date (3–6 digits: "09/27", "oh nine twenty seven") and its
        // security code (3–4 digits), in that order, named or not (named ones are taken above).
        // A run can go on past the card ("4111 … 1111, 09/27, 123"): written groups a pause
        // separates are looked at one by one here.
        let pieces = runs.flatMap { run -> [Range<Int>] in
            var pieces: [Range<Int>] = []
            var start = run.lowerBound
            for i in run.dropFirst() where tokens[i - 1].word.first?.isNumber == true && tokens[i].word.first?.isNumber == true
                && tokens[i].gap.contains(where: { ",.\u{2026}".contains($0) }) {
                pieces.append(start..<i)
                start = i
            }
            return pieces + [start..<run.upperBound]
        }
        for card in cards {
            var expecting = [(3...6, expiryMarker), (3...4, securityCodeMarker)]
            let after = pieces.compactMap { piece -> Range<Int>? in
                piece.upperBound > card.upperBound ? max(piece.lowerBound, card.upperBound)..<piece.upperBound : nil
            }
            for run in after where run.lowerBound <= card.upperBound + 30 && !expecting.isEmpty {
                if let named = replaced.first(where: { $0.0.contains(run.lowerBound) }) {
                    if let next = expecting.firstIndex(where: { $0.1 == named.1 }) { expecting.removeSubrange(0...next) }
                    continue
                }
                let count = run.reduce(0) { $0 + expand(tokens, at: $1).count }
                if count > 6 { break }  // another number altogether (a phone number): the card talk is over
                if let next = expecting.firstIndex(where: { $0.0.contains(count) }) {
                    take(run, expecting[next].1)
                    expecting.removeSubrange(0...next)
                }
            }
        }
        return replaced
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

    /// Whether two digit-bearing tokens belong to one number. Speech-to-text separates the groups
    /// of a number read with pauses by spaces, dashes, en dashes, ", ", ". " or "..." (Deepgram
    /// punctuates pauses), so all of these join; a comma or full stop with no space after it
    /// ("1,250.00") is how amounts are written, and never joins written groups.
    static func joins(_ left: Token, _ right: Token) -> Bool {
        let gap = right.gap
        let written = left.word.first?.isNumber == true && right.word.first?.isNumber == true
        // "12/26", "03/2027": a month and a year, as expiry dates are written.
        if gap == "/" { return written && left.word.count <= 2 && (2...4).contains(right.word.count) }
        guard gap.count <= 5, gap.allSatisfy({ " -,.\u{00A0}\u{2013}\u{2014}\u{2026}".contains($0) }) else { return false }
        let groups = written && left.word.count > 1 && right.word.count > 1
        let punctuated = gap.contains(where: { ",.".contains($0) })
        return !(groups && punctuated && !gap.contains(where: { $0 == " " || $0 == "\u{00A0}" }))
    }

    /// The digits token `i` stands for, with "double"/"triple" repeating the next spoken digit.
    /// "forty" followed by a spoken digit ("forty one", "forty-one") stands for its tens digit only.
    static func expand(_ tokens: [Token], at i: Int) -> String {
        if let times = repeaters[tokens[i].word], i + 1 < tokens.count, let digit = spoken[tokens[i + 1].word], digit.count == 1 {
            return String(repeating: digit, count: times - 1)
        }
        if tens.contains(tokens[i].word), i + 1 < tokens.count, let unit = spoken[tokens[i + 1].word], unit.count == 1, unit != "0",
           tokens[i + 1].gap == " " || tokens[i + 1].gap == "-" {
            return String(tokens[i].digits?.prefix(1) ?? "")
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
