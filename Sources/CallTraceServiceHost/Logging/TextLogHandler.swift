import Foundation
public import Logging

/// One line per event on standard error, for people reading a terminal:
/// `2026-11-30T23:59:59.123Z notice identity: serving address=127.0.0.1:7101 identity=spiffe://…`.
/// Control characters in the message and in metadata are escaped (`\n`, `\u{1B}`), so a value a
/// peer influenced can never forge a line or drive the terminal.
public struct TextLogHandler: LogHandler {
    let service: String
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    /// Where lines go.
    let write: @Sendable (String) -> Void

    /// - Parameter write: where lines go; standard error by default.
    public init(service: String, write: @escaping @Sendable (String) -> Void = { FileHandle.standardError.write(Data($0.utf8)) }) {
        self.service = service
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let fields = metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 })
            .sorted { $0.key < $1.key }
            .map { "\(Self.escaped($0.key))=\(Self.escaped("\($0.value)"))" }
        let line = ([JSONLogHandler.timestamp(), "\(event.level)", "\(service):", Self.escaped("\(event.message)")] + fields)
            .joined(separator: " ")
        write(line + "\n")
    }

    /// `text` with every control character written as an escape.
    static func escaped(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else { return text }
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.properties.generalCategory == .control {
                    out += "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }
}

