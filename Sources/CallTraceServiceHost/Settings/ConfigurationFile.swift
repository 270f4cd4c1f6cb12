import Foundation

/// A service's JSON configuration file, read into the settings it assigns: one JSON object whose
/// keys are the settings' file keys, each a string, a list of names (for a list setting) or, for
/// `drain_seconds`, a whole number; `peers` maps service names to `host:port`. Unknown keys are
/// refused (a typo must not pass silently), and so is a value of the wrong shape. What a value
/// means is checked afterwards by the setting it is given to, as a flag's or a variable's is.
///
/// It reads bytes an operator wrote, so it is fuzzed (`Tests/Fuzz/InputFuzzer.swift`) and
/// depends on Foundation alone.
struct ConfigurationFile {
    /// (file key, value as a flag would give it), in the file's order of keys sorted.
    var assignments: [Assignment]
    /// `peers`, when the file names it.
    var peers: [String: String]?

    struct Assignment: Equatable {
        let key: String
        let value: String
    }

    /// `known` maps each file key to whether it takes a list of names.
    init(parsing data: Data, path: String, known: [String: Bool]) throws {
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw ConfigurationError("config file \(path) is not a JSON object")
        }
        if let unknown = object.keys.filter({ known[$0] == nil && $0 != "peers" }).sorted().first {
            throw ConfigurationError("config file \(path): unknown key \"\(Self.printable(unknown))\"")
        }
        assignments = []
        for key in object.keys.sorted() {
            let value = object[key]!
            if key == "peers" {
                guard let peers = value as? [String: String] else {
                    throw ConfigurationError("config file \(path): peers must map service names to \"host:port\"")
                }
                self.peers = peers
            } else if let range = Self.seconds[key] {
                // JSON's true bridges to Int (as 1): only a number that is whole is seconds.
                guard let number = value as? NSNumber, !Self.isBoolean(number), let seconds = Int(exactly: number) else {
                    throw ConfigurationError("config file \(path): \(key) must be a whole number of seconds from \(range)")
                }
                assignments.append(Assignment(key: key, value: String(seconds)))
            } else if known[key] == true {
                // The list reaches the setting as a flag's comma-separated text, which drops empty
                // items and trims spaces: a name holding a comma would become two names, and an
                // empty one would vanish (an empty list can mean "all").
                guard let names = value as? [String], names.allSatisfy(Self.isListItem) else {
                    throw ConfigurationError("config file \(path): \(key) must be a list of names")
                }
                assignments.append(Assignment(key: key, value: names.joined(separator: ",")))
            } else {
                guard let text = value as? String else { throw ConfigurationError("config file \(path): \(key) must be a string") }
                assignments.append(Assignment(key: key, value: text))
            }
        }
    }

    /// Reads and parses the file at `path`.
    init(contentsOf path: String, known: [String: Bool]) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError("config file \(path) cannot be read")
        }
        try self.init(parsing: data, path: path, known: known)
    }

    /// One item of a list as the comma-separated text keeps it: not empty, no comma, no space
    /// around it.
    static func isListItem(_ item: String) -> Bool {
        !item.isEmpty && !item.contains(",") && item == item.trimmingCharacters(in: .whitespaces)
    }

    /// Settings a file gives as a JSON number of seconds, and the range each allows (checked again
    /// as the setting is set).
    static let seconds = ["drain_seconds": "0 to 3600", "job_lease_seconds": "4 to 3600"]

    /// JSON's true and false: Foundation's two boolean instances.
    private static func isBoolean(_ number: NSNumber) -> Bool {
        number === (true as NSNumber) || number === (false as NSNumber)
    }

    /// A key as an operator can read it in one line: at most 64 characters, with controls, line
    /// and paragraph separators and invisible format characters (bidi overrides) escaped.
    private static func printable(_ key: String) -> String {
        let hidden: Set<Unicode.GeneralCategory> = [.control, .lineSeparator, .paragraphSeparator, .format]
        let shown = key.unicodeScalars.prefix(64).map { hidden.contains($0.properties.generalCategory) ? "\\u{\(String($0.value, radix: 16))}" : String($0) }
        return shown.joined() + (key.unicodeScalars.count > 64 ? "…" : "")
    }
}

/// A configuration problem, reported as one line.
public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
