import CallTraceAPI
import CallTraceKeys
import Foundation
import SwiftProtobuf

/// What `--json` prints, for every command that answers with a service's message: one JSON
/// object on one line, then a newline. Keys are the fields' lowerCamelCase names; a field left
/// at its default (0, "", false, empty) is left out, as in proto3's JSON. Values are spelled as
/// the flags and the text output spell them:
///
/// - enum values as the flags take them: `wav-pcm16`, `google-ads`, `personal-injury`;
/// - times (fields named `…_unix_ms`) in RFC 3339, UTC, to the millisecond, under the name
///   without the suffix: `"createdAt": "2026-12-05T13:29:07.123Z"`;
/// - digests and other bytes in lower-case hex;
/// - 64-bit numbers as numbers (protobuf's own JSON writes them as strings).
///
/// The README's "The command line" section says so once for every command.
enum JSONOutput {
    static func line(_ message: some Message) throws -> String {
        var visitor = Visitor(type: type(of: message).protoMessageName)
        try message.traverse(visitor: &visitor)
        return visitor.object.text
    }

    indirect enum Value {
        case number(String)
        case bool(Bool)
        case string(String)
        case array([Value])
        case object([(String, Value)])

        var text: String {
            switch self {
            case .number(let digits): return digits
            case .bool(let value): return value ? "true" : "false"
            case .string(let value): return Self.quoted(value)
            case .array(let values): return "[" + values.map(\.text).joined(separator: ",") + "]"
            case .object(let members): return "{" + members.map { Self.quoted($0.0) + ":" + $0.1.text }.joined(separator: ",") + "}"
            }
        }

        static func quoted(_ value: String) -> String {
            var out = "\""
            for scalar in value.unicodeScalars {
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\r": out += "\\r"
                case "\t": out += "\\t"
                case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
                default: out.unicodeScalars.append(scalar)
                }
            }
            return out + "\""
        }
    }

    /// Walks one message: each field it visits becomes a member, named from the generated table.
    struct Visitor: SwiftProtobuf.Visitor {
        let type: String
        var members: [(String, Value)] = []

        init(type: String) { self.type = type }

        var object: Value { .object(members) }

        func name(_ number: Int) -> String { protoJSONNames[type]?[number] ?? "field\(number)" }

        mutating func add(_ number: Int, _ value: Value) { members.append((name(number), value)) }

        /// A time field: renamed without `UnixMs`, its value RFC 3339.
        mutating func add(_ number: Int, integer: Int64) {
            let name = name(number)
            if name.hasSuffix("UnixMs") {
                members.append((String(name.dropLast("UnixMs".count)), .string(JSONOutput.rfc3339(unixMs: integer))))
            } else {
                members.append((name, .number(String(integer))))
            }
        }

        static func message(_ message: some Message) throws -> Value {
            var visitor = Visitor(type: Swift.type(of: message).protoMessageName)
            try message.traverse(visitor: &visitor)
            return visitor.object
        }

        static func enumValue(_ value: some Enum) -> Value { .string(flagSpelling(value)) }

        mutating func visitSingularDoubleField(value: Double, fieldNumber: Int) throws {
            add(fieldNumber, value.isFinite ? .number(String(value)) : .string(String(value)))
        }
        mutating func visitSingularInt64Field(value: Int64, fieldNumber: Int) throws { add(fieldNumber, integer: value) }
        mutating func visitSingularUInt64Field(value: UInt64, fieldNumber: Int) throws {
            if value <= UInt64(Int64.max) { add(fieldNumber, integer: Int64(value)) } else { add(fieldNumber, .number(String(value))) }
        }
        mutating func visitSingularBoolField(value: Bool, fieldNumber: Int) throws { add(fieldNumber, .bool(value)) }
        mutating func visitSingularStringField(value: String, fieldNumber: Int) throws { add(fieldNumber, .string(value)) }
        mutating func visitSingularBytesField(value: Data, fieldNumber: Int) throws { add(fieldNumber, .string(value.hexString)) }
        mutating func visitSingularEnumField<E: Enum>(value: E, fieldNumber: Int) throws { add(fieldNumber, Self.enumValue(value)) }
        mutating func visitSingularMessageField<M: Message>(value: M, fieldNumber: Int) throws { add(fieldNumber, try Self.message(value)) }
        mutating func visitSingularGroupField<G: Message>(value: G, fieldNumber: Int) throws { add(fieldNumber, try Self.message(value)) }

        mutating func visitRepeatedDoubleField(value: [Double], fieldNumber: Int) throws { add(fieldNumber, .array(value.map { .number(String($0)) })) }
        mutating func visitRepeatedFloatField(value: [Float], fieldNumber: Int) throws { add(fieldNumber, .array(value.map { .number(String($0)) })) }
        mutating func visitRepeatedInt32Field(value: [Int32], fieldNumber: Int) throws { add(fieldNumber, .array(value.map { .number(String($0)) })) }
        mutating func visitRepeatedInt64Field(value: [Int64], fieldNumber: Int) throws { add(fieldNumber, .array(value.map { .number(String($0)) })) }
        mutating func visitRepeatedUInt32Field(value: [UInt32], fieldNumber: Int) throws { add(fieldNumber, .array(value.map { .number(String($0)) })) }
        mutating func visitRepeatedUInt64Field(value: [UInt64], fieldNumber: Int) throws { add(fieldNumber, .array(value.map { .number(String($0)) })) }
        mutating func visitRepeatedBoolField(value: [Bool], fieldNumber: Int) throws { add(fieldNumber, .array(value.map { .bool($0) })) }
        mutating func visitRepeatedStringField(value: [String], fieldNumber: Int) throws { add(fieldNumber, .array(value.map { .string($0) })) }
        mutating func visitRepeatedBytesField(value: [Data], fieldNumber: Int) throws { add(fieldNumber, .array(value.map { .string($0.hexString) })) }
        mutating func visitRepeatedEnumField<E: Enum>(value: [E], fieldNumber: Int) throws { add(fieldNumber, .array(value.map(Self.enumValue))) }
        mutating func visitRepeatedMessageField<M: Message>(value: [M], fieldNumber: Int) throws {
            add(fieldNumber, .array(try value.map { try Self.message($0) }))
        }
        mutating func visitPackedInt32Field(value: [Int32], fieldNumber: Int) throws { try visitRepeatedInt32Field(value: value, fieldNumber: fieldNumber) }
        mutating func visitPackedInt64Field(value: [Int64], fieldNumber: Int) throws { try visitRepeatedInt64Field(value: value, fieldNumber: fieldNumber) }
        mutating func visitPackedUInt32Field(value: [UInt32], fieldNumber: Int) throws { try visitRepeatedUInt32Field(value: value, fieldNumber: fieldNumber) }
        mutating func visitPackedUInt64Field(value: [UInt64], fieldNumber: Int) throws { try visitRepeatedUInt64Field(value: value, fieldNumber: fieldNumber) }
        mutating func visitPackedDoubleField(value: [Double], fieldNumber: Int) throws { try visitRepeatedDoubleField(value: value, fieldNumber: fieldNumber) }
        mutating func visitPackedFloatField(value: [Float], fieldNumber: Int) throws { try visitRepeatedFloatField(value: value, fieldNumber: fieldNumber) }
        mutating func visitPackedBoolField(value: [Bool], fieldNumber: Int) throws { try visitRepeatedBoolField(value: value, fieldNumber: fieldNumber) }
        mutating func visitPackedEnumField<E: Enum>(value: [E], fieldNumber: Int) throws { try visitRepeatedEnumField(value: value, fieldNumber: fieldNumber) }

        mutating func visitMapField<KeyType, ValueType: MapValueType>(fieldType: _ProtobufMap<KeyType, ValueType>.Type,
                                                                     value: _ProtobufMap<KeyType, ValueType>.BaseType, fieldNumber: Int) throws {
            add(fieldNumber, .object(value.map { ("\($0.key)", .string("\($0.value)")) }.sorted { $0.0 < $1.0 }))
        }
        mutating func visitMapField<KeyType, ValueType>(fieldType: _ProtobufEnumMap<KeyType, ValueType>.Type,
                                                        value: _ProtobufEnumMap<KeyType, ValueType>.BaseType, fieldNumber: Int) throws {
            add(fieldNumber, .object(value.map { ("\($0.key)", Self.enumValue($0.value)) }.sorted { $0.0 < $1.0 }))
        }
        mutating func visitMapField<KeyType, ValueType>(fieldType: _ProtobufMessageMap<KeyType, ValueType>.Type,
                                                        value: _ProtobufMessageMap<KeyType, ValueType>.BaseType, fieldNumber: Int) throws {
            add(fieldNumber, .object(try value.map { ("\($0.key)", try Self.message($0.value)) }.sorted { $0.0 < $1.0 }))
        }
        mutating func visitUnknown(bytes: Data) throws {}
    }

    /// `AUDIO_FORMAT_WAV_PCM16` as the flags take it: `wav-pcm16` (swift-protobuf's case name, dashed).
    static func flagSpelling(_ value: some Enum) -> String {
        let name = "\(value)"
        return name.hasPrefix("UNRECOGNIZED") ? String(value.rawValue) : dashed(name)
    }

    static func rfc3339(unixMs: Int64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: Date(timeIntervalSince1970: TimeInterval(unixMs) / 1000))
    }
}
