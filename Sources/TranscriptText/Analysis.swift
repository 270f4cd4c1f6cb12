import Foundation

/// What an analysis engine says about a call, in the JSON both engines answer with:
///
///     {"practice_area": "personal_injury", "new_enquiry": true, "urgency": "high",
///      "callback_requested": true, "summary": "Two or three sentences."}
public struct CallAnalysis: Codable, Sendable, Equatable {
    /// UK legal practice areas, as analyses name them.
    public static let practiceAreas = [
        "personal_injury", "clinical_negligence", "family", "conveyancing", "wills_and_probate", "employment", "immigration", "criminal",
        "housing_and_landlord_tenant", "commercial", "dispute_resolution", "other",
    ]
    public static let urgencies = ["low", "normal", "high"]

    public var practiceArea: String
    public var newEnquiry: Bool
    public var urgency: String
    public var callbackRequested: Bool
    public var summary: String

    enum CodingKeys: String, CodingKey {
        case practiceArea = "practice_area", newEnquiry = "new_enquiry", urgency, callbackRequested = "callback_requested", summary
    }

    public init(practiceArea: String, newEnquiry: Bool, urgency: String, callbackRequested: Bool, summary: String) {
        self.practiceArea = practiceArea
        self.newEnquiry = newEnquiry
        self.urgency = urgency
        self.callbackRequested = callbackRequested
        self.summary = summary
    }

    /// Parses and checks an engine's answer: every field present, the practice area and urgency
    /// from the fixed lists, a summary of one to five sentences and at most 1,000 characters.
    public static func validated(json: Data) throws -> CallAnalysis {
        let analysis: CallAnalysis
        do {
            analysis = try JSONDecoder().decode(CallAnalysis.self, from: json)
        } catch {
            throw AnalysisError("the analysis is not the JSON asked for (practice_area, new_enquiry, urgency, callback_requested, summary)")
        }
        guard practiceAreas.contains(analysis.practiceArea) else { throw AnalysisError("the analysis names an unknown practice area") }
        guard urgencies.contains(analysis.urgency) else { throw AnalysisError("the analysis names an unknown urgency") }
        let summary = analysis.summary.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !summary.isEmpty, summary.count <= 1000 else { throw AnalysisError("the analysis summary is empty or longer than 1,000 characters") }
        var checked = analysis
        checked.summary = summary
        return checked
    }

    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }
}

/// Why an analysis failed; never quotes the transcript.
public struct AnalysisError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The `local` analysis engine, the default: a deterministic classifier and extractive
/// summariser for UK legal enquiries that needs no network and sends nothing anywhere. It scores
/// practice areas by the words callers use, reads whether the caller is new, how urgent it is and
/// whether they want a call back, and summarises with the caller's most telling sentences.
public enum LocalAnalyser {
    /// Words (or phrases) that point at each practice area, weighted.
    static let areaWords: [String: [(String, Int)]] = [
        "personal_injury": [("accident", 3), ("injury", 3), ("injured", 3), ("whiplash", 4), ("slipped", 3), ("tripped", 3), ("car crash", 4),
                            ("road traffic", 4), ("hit by", 2), ("compensation", 2), ("broke my", 2), ("fell", 1), ("at work", 1)],
        "clinical_negligence": [("hospital", 2), ("surgeon", 3), ("misdiagnosed", 4), ("misdiagnosis", 4), ("gp", 2), ("operation", 2),
                                ("negligence", 2), ("nhs", 2), ("doctor", 2), ("medical", 2), ("midwife", 3)],
        "family": [("divorce", 4), ("separation", 3), ("separated", 3), ("custody", 4), ("child arrangements", 4), ("contact with my", 3),
                   ("husband", 2), ("wife", 2), ("partner", 1), ("children", 1), ("financial settlement", 3), ("prenup", 4), ("domestic abuse", 4)],
        "conveyancing": [("buying a house", 4), ("selling my house", 4), ("sale of", 2), ("purchase", 2), ("mortgage", 3), ("completion", 2),
                         ("exchange", 2), ("conveyancing", 5), ("leasehold", 3), ("freehold", 3), ("remortgage", 4), ("property", 1)],
        "wills_and_probate": [("will", 2), ("probate", 5), ("passed away", 4), ("died", 3), ("estate", 3), ("executor", 4), ("inheritance", 4),
                              ("power of attorney", 4), ("lasting power", 4)],
        "employment": [("dismissed", 4), ("sacked", 4), ("fired", 3), ("employer", 3), ("tribunal", 3), ("redundancy", 4), ("grievance", 4),
                       ("discrimination", 3), ("settlement agreement", 4), ("my boss", 3), ("unfair dismissal", 5)],
        "immigration": [("visa", 4), ("home office", 4), ("asylum", 5), ("deportation", 5), ("leave to remain", 5), ("spouse visa", 5),
                        ("citizenship", 4), ("settled status", 5), ("immigration", 5)],
        "criminal": [("arrested", 5), ("police", 3), ("charged", 4), ("court date", 2), ("magistrates", 4), ("crown court", 4), ("interview under caution", 5),
                     ("bail", 4), ("offence", 3), ("driving ban", 4), ("speeding", 3)],
        "housing_and_landlord_tenant": [("landlord", 4), ("tenant", 4), ("eviction", 5), ("evicted", 5), ("section 21", 5), ("deposit", 2),
                                        ("rent arrears", 4), ("disrepair", 5), ("damp", 3), ("mould", 3), ("council housing", 4)],
        "commercial": [("contract", 2), ("business", 2), ("company", 2), ("shareholder", 4), ("partnership agreement", 4), ("supplier", 3),
                       ("commercial lease", 4), ("terms and conditions", 3), ("limited company", 3)],
        "dispute_resolution": [("dispute", 3), ("sue", 3), ("suing", 3), ("owed", 3), ("debt", 2), ("small claims", 4), ("letter before action", 5),
                               ("neighbour", 3), ("boundary", 3), ("claim against", 3), ("builder", 2)],
    ]
    static let existingClientWords = ["my solicitor", "my case", "my file", "existing client", "already a client", "case reference", "my reference",
                                      "you're acting for me", "you are acting for me", "calling back about", "update on my", "my matter", "my claim's"]
    static let newEnquiryWords = ["looking for a solicitor", "need a solicitor", "need some advice", "need advice", "want some advice",
                                  "can you help", "could you help", "do you deal with", "do you do", "i'd like to make a claim", "first time",
                                  "never used", "recommended you", "found you", "saw your advert", "make an enquiry", "enquiry about"]
    static let urgentWords = ["urgent", "urgently", "emergency", "tomorrow", "today", "arrested", "police station", "court date", "hearing is",
                              "eviction", "bailiffs", "injunction", "deadline", "as soon as possible", "asap", "time limit", "right away"]
    static let calmWords = ["no rush", "not urgent", "whenever", "in a few months", "just enquiring", "just wondering", "general question"]
    static let callbackWords = ["call me back", "ring me back", "call back", "callback", "phone me back", "get back to me", "give me a call",
                                "give me a ring", "contact me", "reach me on", "best number"]

    public static func analyse(_ transcript: String) -> CallAnalysis {
        let text = " " + transcript.lowercased().replacingOccurrences(of: "’", with: "'") + " "
        func occurrences(_ phrase: String) -> Int {
            // Whole words only: "will" must not match "willing".
            var count = 0
            var searchRange = text.startIndex..<text.endIndex
            while let found = text.range(of: phrase, range: searchRange) {
                let before = text[text.index(before: found.lowerBound)]
                let after = found.upperBound < text.endIndex ? text[found.upperBound] : " "
                if !before.isLetter && !after.isLetter { count += 1 }
                searchRange = found.upperBound..<text.endIndex
            }
            return count
        }
        var best = ("other", 0)
        for area in CallAnalysis.practiceAreas where area != "other" {
            let score = (areaWords[area] ?? []).reduce(0) { $0 + occurrences($1.0) * $1.1 }
            if score > best.1 { best = (area, score) }
        }
        let area = best.1 >= 3 ? best.0 : "other"
        let existing = existingClientWords.reduce(0) { $0 + occurrences($1) }
        let fresh = newEnquiryWords.reduce(0) { $0 + occurrences($1) }
        let urgentScore = urgentWords.reduce(0) { $0 + occurrences($1) }
        let calm = calmWords.reduce(0) { $0 + occurrences($1) }
        let urgency = urgentScore >= 1 && urgentScore > calm ? "high" : (calm > 0 ? "low" : "normal")
        let callback = callbackWords.contains { occurrences($0) > 0 }
        return CallAnalysis(practiceArea: area, newEnquiry: existing == 0 || fresh > existing, urgency: urgency, callbackRequested: callback,
                            summary: summary(transcript, area: area))
    }

    /// The two or three sentences that say most: those with the area's words and the caller's
    /// request, in the order they were said; the opening sentence when nothing scores.
    static func summary(_ transcript: String, area: String) -> String {
        // Without the speakers' labels ("caller: …").
        let spoken = transcript.split(separator: "\n").map { line -> Substring in
            guard let colon = line.firstIndex(of: ":"), line.distance(from: line.startIndex, to: colon) <= 32,
                  line[..<colon].allSatisfy({ $0.isLetter || $0.isNumber || $0 == " " }) else { return line }
            return line[line.index(after: colon)...]
        }.joined(separator: "\n")
        let sentences = spoken.split(whereSeparator: { ".?!\n".contains($0) })
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { $0.split(separator: " ").count >= 4 }
        guard !sentences.isEmpty else { return "A short call with no substantive enquiry recorded." }
        let cues = (areaWords[area] ?? []).map(\.0) + newEnquiryWords + urgentWords + callbackWords + ["need", "want", "help", "advice", "claim"]
        let scored = sentences.enumerated().map { index, sentence -> (Int, Int) in
            let lower = sentence.lowercased()
            return (index, cues.reduce(0) { $0 + (lower.contains($1) ? 1 : 0) })
        }
        let chosen = scored.filter { $0.1 > 0 }.sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }.prefix(3).map(\.0).sorted()
        let picked = (chosen.isEmpty ? [0] : Array(chosen.prefix(max(2, min(3, chosen.count))))).map { sentences[$0] }
        var summary = ""
        for sentence in picked {
            let next = summary.isEmpty ? sentence + "." : summary + " " + sentence + "."
            if next.count > 600 { break }
            summary = next
        }
        return summary.isEmpty ? String(sentences[0].prefix(597)) + "..." : summary
    }
}
