import Foundation

/// UK-first phone number normalisation to E.164: a number without a country code is a UK
/// number; one with a country code is read by ITU-T E.164's table of country codes.
public enum PhoneNumber {
    /// `+441182304651` for "0118 230 4651", "+44 (0)118 230 4651", "+44 0118 230 4651",
    /// "00441182304651", "0118 230 4651 ext. 12" (extensions are dropped: they reach the same
    /// line); nil if not a number. Only ASCII digits count: "٠١١٨…" (other scripts' digits) is
    /// refused, not read as a different number.
    public static func e164(_ raw: String) -> String? {
        // An extension ("ext", "x", "#", in any case) ends the number.
        let scalars = raw.unicodeScalars
        var end = scalars.startIndex
        scan: while end != scalars.endIndex {
            switch scalars[end] {
            case "x", "X", "#": break scan
            case "e", "E":
                let rest = scalars[scalars.index(after: end)...].prefix(2)
                if rest.count == 2, "xX".unicodeScalars.contains(rest.first!), "tT".unicodeScalars.contains(rest.last!) { break scan }
            default: break
            }
            scalars.formIndex(after: &end)
        }
        // Separators people write; anything else (letters, other scripts' digits) is refused.
        var digits = ""
        var plus = false
        for character in scalars[..<end] {
            switch character {
            case "0"..."9": digits.unicodeScalars.append(character)
            case "+" where digits.isEmpty && !plus: plus = true
            case " ", "-", ".", "(", ")", "\u{00A0}", "/": continue
            default: return nil
            }
        }
        if !plus && digits.hasPrefix("00") {
            digits.removeFirst(2)
            plus = true
        }
        if plus {
            // "+44 (0)118…", "+49 (0)30…", "+33 0 1…": a trunk 0 written after the country code
            // goes, except where a 0 begins the national number itself (Italy's landlines).
            let country = countryCode(of: digits)
            let national = digits.dropFirst(country.count)
            if national.hasPrefix("0") && !significantZero.contains(country) { digits = country + national.dropFirst() }
        } else {
            guard digits.hasPrefix("0") else { return nil }
            digits = "44" + digits.dropFirst()
        }
        guard (8...15).contains(digits.count), !digits.hasPrefix("0") else { return nil }
        return "+" + digits
    }

    /// The country calling code that `digits` (an international number without its "+") begins
    /// with. E.164's codes are prefix-free: 1 (NANP) and 7 (Russia, Kazakhstan) are one digit;
    /// the two-digit codes are listed; every other code has three digits.
    static func countryCode(of digits: String) -> String {
        if digits.hasPrefix("1") || digits.hasPrefix("7") { return String(digits.prefix(1)) }
        return twoDigitCodes.contains(String(digits.prefix(2))) ? String(digits.prefix(2)) : String(digits.prefix(3))
    }

    static let twoDigitCodes: Set<String> = [
        "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45", "46", "47", "48", "49",
        "51", "52", "53", "54", "55", "56", "57", "58", "60", "61", "62", "63", "64", "65", "66",
        "81", "82", "84", "86", "90", "91", "92", "93", "94", "95", "98",
    ]

    /// Countries whose national numbers themselves begin with 0, so a 0 after the country code
    /// is dialled internationally: Italy, San Marino and the Vatican (landlines, "+39 06…"),
    /// Côte d'Ivoire ("+225 07…", since 2021), Congo ("+242 06…") and Gabon ("+241 06…").
    static let significantZero: Set<String> = ["39", "378", "379", "225", "242", "241"]

    /// Whether a caller's "number" says it was withheld: empty, a word carriers use ("anonymous",
    /// "restricted", "unknown", "private", "unavailable"), or one of the numbers Twilio puts in
    /// `From` for such callers (they spell ANONYMOUS, RESTRICTED, UNKNOWN and BLOCKED on a keypad).
    /// Such a caller has no number: never one caller shared by all who withhold theirs.
    public static func isWithheld(_ raw: String) -> Bool {
        let text = raw.trimmingCharacters(in: .whitespaces).lowercased()
        return text.isEmpty || withheldWords.contains(text) || withheldNumbers.contains(text)
    }

    static let withheldWords: Set<String> = ["anonymous", "restricted", "unknown", "private", "unavailable", "withheld"]
    static let withheldNumbers: Set<String> = ["+266696687", "+7378742833", "+86282452253", "+2562533"]

    /// "+44 7700 ••••23" for an E.164 number: enough to tell numbers apart, not enough to call.
    public static func masked(_ e164: String) -> String {
        let digits = Array(e164.dropFirst())
        let country = e164.hasPrefix("+44") ? 2 : 1
        guard digits.count >= country + 8 else { return "+" + String(repeating: "•", count: digits.count) }
        let national = digits.dropFirst(country)
        return "+" + String(digits.prefix(country)) + " " + String(national.prefix(4)) + " "
            + String(repeating: "•", count: national.count - 6) + String(national.suffix(2))
    }
}
