import ArgumentParser
import Foundation

// Times and enum values as every command group prints and parses them.

/// A day (`2026-11-30`, UTC midnight) or an instant (`2026-11-30T14:00:00Z`) as UTC milliseconds.
package func unixMs(_ text: String, option: String) throws -> Int64 {
    let day = DateFormatter()
    day.locale = Locale(identifier: "en_US_POSIX")
    day.timeZone = TimeZone(identifier: "UTC")
    day.dateFormat = "yyyy-MM-dd"
    guard let date = day.date(from: text) ?? ISO8601DateFormatter().date(from: text) else {
        throw ValidationError("\(option) must be a date (2026-11-30) or an ISO 8601 time (2026-11-30T14:00:00Z)")
    }
    return Int64(date.timeIntervalSince1970 * 1000)
}

package func iso(_ ms: Int64) -> String { ms == 0 ? "-" : ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(ms) / 1000)) }

/// `googleAds` → `google-ads`, for enum values printed and parsed on the command line.
package func dashed(_ value: Any) -> String {
    var out = ""
    for character in "\(value)" {
        if character.isUppercase { out += "-" + character.lowercased() } else { out.append(character) }
    }
    return out
}

package func parseEnum<E: CaseIterable>(_ text: String, _ type: E.Type, option: String) throws -> E {
    guard let value = E.allCases.first(where: { dashed($0) == text }) else {
        throw ValidationError("\(option) must be one of \(E.allCases.map(dashed).filter { $0 != "unspecified" }.joined(separator: ", "))")
    }
    return value
}
