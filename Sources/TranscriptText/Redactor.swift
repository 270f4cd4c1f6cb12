import Foundation

/// Takes card and bank details out of what was said before anything is stored (P16): card
/// numbers (Luhn-valid, 13–19 digits with a card issuer's prefix, written or spoken, grouped or
/// run together, over several utterances of a call), the expiry date and security code that
/// follow one or are named near card talk, and UK sort codes and account numbers, each replaced
/// by a marker such as `[card number]`. Phone numbers, dates, amounts of money, case references
/// and postcodes stay: they are what a firm needs from a call.
///
/// The same code serves the transcription job, `SubmitTranscript` and `calltrace transcripts redact`.
/// Linear in the length of the call: a whole transcript is read in one pass per rule.
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
    static let fillers: Set<String> = ["um", "uh", "er", "erm", "uhm", "hmm", "ah", "mm"]
    /// Words passed over only between two spoken digits ("eleven eleven and eleven eleven"),
    /// never between written numbers ("07700 900103 and 07700 900721" are two numbers).
    static let spokenJoiners: Set<String> = ["and", "then", "sorry"]
    /// The other party's short acknowledgements between two groups of digits ("yes", "ok",
    /// "mm-hm"): an utterance of at most three of these does not break the caller's number.
    static let acknowledgements: Set<String> = ["yes", "yeah", "yep", "yup", "ok", "okay", "k", "mm", "hm", "mhm", "mm-hm", "hmm",
                                                "uh-huh", "uh", "huh", "right", "sure", "go", "on", "got", "it", "that", "thanks",
                                                "thank", "you", "great", "lovely", "perfect", "fine", "cool", "alright", "and", "next",
                                                "continue", "carry", "sorry", "please"]

    /// Words that mean the conversation is about a payment card, as whole words ("Cardiff" and
    /// "creditor" are not); they count within `cardTalkReach` words of a detail.
    static let cardTalk: Set<String> = ["card", "cards", "visa", "mastercard", "amex", "debit", "credit", "expiry", "cvv", "cvc", "cv2"]
    static let cardTalkReach = 60
    static let expiryWords = keywords(["expiry", "expires", "expire", "expiration", "exp", "until", "end date", "expiry date", "valid to"])
    static let securityWords = keywords(["cvv", "cvc", "cv2", "csc", "security code", "security number", "digits on the back", "on the back",
                                         "last three", "three digits", "3 digits", "the code", "card code"])
    static let sortCodeWords = keywords(["sort code", "sort-code", "sortcode"])
    static let accountWords = keywords(["account number", "account no", "acc no", "account", "bank account"])

    static func keywords(_ phrases: [String]) -> [[String]] {
        phrases.map { $0.split(whereSeparator: { $0 == " " || $0 == "-" }).map(String.init) }
    }

    /// One text on its own (a note, a summary, `calltrace transcripts redact`).
    public static func redact(_ text: String) -> Result {
        redact(transcript: [Utterance(text)])[0]
    }

    /// A whole call's transcript, both parties in time order, redacted as one conversation: a
    /// card number read over several utterances of the same speaker, or with the other party's
    /// "yes" or "ok" between its groups, is found as one. The results are in the order given.
    public static func redact(transcript utterances: [Utterance]) -> [Result] {
        let order = utterances.indices.sorted { (utterances[$0].startMs, $0) < (utterances[$1].startMs, $1) }
        // The stream: every token in time order, less hesitations and short acknowledgements
        // ("yes", "ok", "mm-hm": the other party's, or the speaker's own "yeah") between groups.
        var tokens: [Token] = []
        var lastSpeaker: String?
        for index in order {
            var words = tokenize(utterances[index].text)
            let acknowledging = !words.isEmpty && words.count <= 3
                && words.allSatisfy { acknowledgements.contains($0.word) || fillers.contains($0.word) }
            if acknowledging && lastSpeaker != nil { continue }
            words.removeAll { fillers.contains($0.word) && $0.digits == nil }
            for (position, var token) in words.enumerated() {
                token.piece = index
                if position == 0 { token.gap = lastSpeaker == utterances[index].speaker ? " " : "\n" }
                tokens.append(token)
            }
            if !words.isEmpty { lastSpeaker = utterances[index].speaker }
        }
        // "and" between two spoken digits goes; between anything else it stays and parts them.
        tokens = tokens.enumerated().filter { i, token in
            !(spokenJoiners.contains(token.word) && i > 0 && i + 1 < tokens.count && isSpokenDigit(tokens[i - 1]) && isSpokenDigit(tokens[i + 1]))
        }.map(\.element)
        let replaced = find(tokens)

        // Back to each utterance: the part of a detail within it becomes the detail's marker.
        var partsOf: [Int: [(Range<String.Index>, String)]] = [:]
        for (range, marker) in replaced {
            var start = range.lowerBound
            for i in range where i + 1 == range.upperBound || tokens[i + 1].piece != tokens[i].piece {
                partsOf[tokens[i].piece, default: []].append((tokens[start].range.lowerBound..<tokens[i].range.upperBound, marker))
                start = i + 1
            }
        }
        var results: [Result] = []
        for (index, utterance) in utterances.enumerated() {
            let text = utterance.text
            let parts = partsOf[index] ?? []
            guard !parts.isEmpty else { results.append(Result(text: text, count: 0)); continue }
            // One pass from the start, counting characters as it goes: replacing each detail in
            // place, or counting each offset from the start, would read the text once per detail.
            var output = ""
            output.reserveCapacity(text.utf8.count)
            var spans: [Range<Int>] = []
            var (cursor, offset) = (text.startIndex, 0)
            for (characters, marker) in parts.sorted(by: { $0.0.lowerBound < $1.0.lowerBound }) {
                let start = offset + text.distance(from: cursor, to: characters.lowerBound)
                let end = start + text.distance(from: characters.lowerBound, to: characters.upperBound)
                output += text[cursor..<characters.lowerBound]
                output += marker
                spans.append(start..<end)
                (cursor, offset) = (characters.upperBound, end)
            }
            output += text[cursor...]
            results.append(Result(text: output, count: parts.count, spans: spans))
        }
        return results
    }

    /// The details in a stream of tokens: ranges of token indices and their markers.
    static func find(_ tokens: [Token]) -> [(Range<Int>, String)] {
        guard !tokens.isEmpty else { return [] }
        var replaced: [(Range<Int>, String)] = []  // token index ranges, marker
        var taken = [String?](repeating: nil, count: tokens.count)  // the marker over each token
        func take(_ range: Range<Int>, _ marker: String) {
            guard !range.isEmpty, !range.contains(where: { taken[$0] != nil }) else { return }
            for i in range { taken[i] = marker }
            replaced.append((range, marker))
        }
        let runs = digitRuns(tokens)
        /// The index in `ranges` (sorted, apart) of the first that starts after `index`.
        func firstStarting(after index: Int, in ranges: [Range<Int>]) -> Int {
            var (low, high) = (0, ranges.count)
            while low < high {
                let middle = (low + high) / 2
                if ranges[middle].lowerBound > index { high = middle } else { low = middle + 1 }
            }
            return low
        }

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
                    if digits.count >= 13 && issued(digits) && luhn(digits) { best = start..<(end + 1) }
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
        // Card talk near a token: a card number or a card word within `cardTalkReach` tokens.
        var talk = [Int](repeating: 0, count: tokens.count + 1)  // prefix counts of card words and card numbers
        for i in tokens.indices { talk[i + 1] = talk[i] + (cardTalk.contains(tokens[i].word) || taken[i] == cardMarker ? 1 : 0) }
        func aboutCards(near index: Int) -> Bool {
            talk[min(tokens.count, index + cardTalkReach + 1)] - talk[max(0, index - cardTalkReach)] > 0
        }

        // Details named by a keyword: the first run of the right length within a few words after it.
        func afterKeyword(_ keywords: [[String]], lengths: ClosedRange<Int>, within: Int, marker: String, cardsOnly: Bool = false) {
            for index in tokens.indices where keywordEnds(tokens, at: index, keywords) && (!cardsOnly || aboutCards(near: index)) {
                var next = firstStarting(after: index, in: runs)
                while next < runs.count, runs[next].lowerBound <= index + within {
                    if let window = window(in: runs[next], tokens: tokens, lengths: lengths) { take(window, marker); break }
                    next += 1
                }
            }
        }
        afterKeyword(expiryWords, lengths: 3...6, within: 4, marker: expiryMarker, cardsOnly: true)
        afterKeyword(securityWords, lengths: 3...4, within: 6, marker: securityCodeMarker, cardsOnly: true)
        afterKeyword(sortCodeWords, lengths: 6...6, within: 4, marker: sortCodeMarker)
        afterKeyword(accountWords, lengths: 7...8, within: 4, marker: accountMarker)
        // A sort code written NN-NN-NN next to an account number.
        if replaced.contains(where: { $0.1 == accountMarker }) {
            for run in runs where run.count == 3 && (run.lowerBound..<run.upperBound).allSatisfy({ tokens[$0].digits?.count == 2 }) {
                let gaps = tokens[run.lowerBound + 1].gap + tokens[run.lowerBound + 2].gap
                if gaps.allSatisfy({ $0 == "-" }) { take(run, sortCodeMarker) }
            }
        }
        // What follows a card number at once is card data too, named or not: an expiry date
        // ("09/27", "oh nine twenty seven") within a few words, then a security code (3–4 digits)
        // within a few words of it. Anything else (an amount, a phone number) ends the card talk.
        // A run can go on past the card ("4111 … 1111, 09/27, 123"): its groups are looked at
        // one by one here.
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
            var cursor = card.upperBound
            var expecting = expiryMarker
            var next = firstStarting(after: card.upperBound - 1, in: pieces)
            while next < pieces.count, pieces[next].lowerBound - cursor <= 4 {
                let piece = pieces[next]
                next += 1
                if let named = taken[piece.lowerBound] {
                    cursor = piece.upperBound
                    if named == expiryMarker { expecting = securityCodeMarker; continue }
                    break
                }
                if expecting == expiryMarker, looksLikeExpiry(piece, tokens) {
                    take(piece, expiryMarker)
                    (cursor, expecting) = (piece.upperBound, securityCodeMarker)
                } else if expecting == securityCodeMarker, looksLikeSecurityCode(piece, tokens) {
                    take(piece, securityCodeMarker)
                    break
                } else {
                    break
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
    /// punctuates pauses): spaces and dashes join any groups; punctuation joins spoken or single
    /// digits, and written groups only as a card is read, four and four.
    static func joins(_ left: Token, _ right: Token) -> Bool {
        let gap = right.gap
        let written = left.word.first?.isNumber == true && right.word.first?.isNumber == true
        // "12/26", "03/2027": a month and a year, as expiry dates are written.
        if gap == "/" { return written && left.word.count <= 2 && (2...4).contains(right.word.count) }
        guard gap.count <= 5, gap.allSatisfy({ " -,.\u{00A0}\u{2013}\u{2014}\u{2026}".contains($0) }) else { return false }
        let groups = written && left.word.count > 1 && right.word.count > 1
        guard groups, gap.contains(where: { ",.\u{2026}".contains($0) }) else { return true }
        // Written groups a pause's punctuation parts join only as a card's are read: four digits
        // and four ("4111, 1111"). "07700 900103, 07700 900721" are two phone numbers, "1,250.00" an
        // amount, "10/06/2024, 28/06/2024" two dates.
        let paused = gap != "," && gap != "."  // "1,250" and "12.50" are how amounts are written, not pauses
        return paused && left.word.count == 4 && right.word.count == 4
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

    /// Whether one of `keywords` (one or more words each) ends at token `index`.
    /// (Asked of every token, so the last word is compared first: most tokens end no keyword.)
    static func keywordEnds(_ tokens: [Token], at index: Int, _ keywords: [[String]]) -> Bool {
        let word = tokens[index].word
        return keywords.contains { words in
            guard words.last == word, index + 1 >= words.count else { return false }
            let first = index + 1 - words.count
            return words.indices.allSatisfy { tokens[first + $0].word == words[$0] }
        }
    }

    static func isSpokenDigit(_ token: Token) -> Bool { token.digits != nil && token.word.first?.isNumber == false }

    /// How an unnamed expiry date is said or written: a month (01–12) and a year, as "09/27",
    /// "9/27", "0927", "09 27", "09/2027", or spoken ("oh nine twenty seven"). "1,250" is not one.
    static func looksLikeExpiry(_ piece: Range<Int>, _ tokens: [Token]) -> Bool {
        let digits = piece.map { expand(tokens, at: $0) }.joined()
        let written = piece.filter { tokens[$0].word.first?.isNumber == true }.map { tokens[$0].word.count }
        if !written.isEmpty {
            guard written.count == piece.count, [[4], [2, 2], [1, 2], [2, 4], [1, 4]].contains(written) else { return false }
        }
        let month = digits.count == 3 || (digits.count == 5 && written == [1, 4]) ? Int(digits.prefix(1)) : Int(digits.prefix(2))
        return [3, 4, 5, 6].contains(digits.count) && (1...12).contains(month ?? 0)
    }

    /// A security code: three or four digits, written as one group or spoken.
    static func looksLikeSecurityCode(_ piece: Range<Int>, _ tokens: [Token]) -> Bool {
        let digits = piece.map { expand(tokens, at: $0) }.joined()
        let written = piece.filter { tokens[$0].word.first?.isNumber == true }
        return (3...4).contains(digits.count) && (written.isEmpty || (written.count == 1 && piece.count == 1))
    }

    /// Whether a number begins as payment cards do (ISO/IEC 7812 issuer prefixes of the schemes
    /// taken in the UK): Visa 4; Mastercard 51–55 and 2221–2720; Amex 34, 37; Diners 36, 38, 39,
    /// 300–305; JCB 3528–3589; Discover and UnionPay 6011, 62, 644–649, 65; Maestro 50, 56–58, 63, 67.
    /// Years ("2015 2016 2017 2018") and most other runs of numbers do not.
    static func issued(_ digits: String) -> Bool {
        let two = Int(digits.prefix(2)) ?? 0, three = Int(digits.prefix(3)) ?? 0, four = Int(digits.prefix(4)) ?? 0
        switch digits.first {
        case "4": return true
        case "5": return (50...58).contains(two)
        case "2": return (2221...2720).contains(four)
        case "3": return [34, 36, 37, 38, 39].contains(two) || (300...305).contains(three) || (3528...3589).contains(four)
        case "6": return four == 6011 || [62, 63, 65, 67].contains(two) || (644...649).contains(three)
        default: return false
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
