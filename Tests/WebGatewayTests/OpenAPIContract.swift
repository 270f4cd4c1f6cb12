import CallTraceSync
import Foundation
import Testing
import Yams

/// services/web/openapi.yaml (or openapi-rpc.json, the relayed methods') as the tests check the gateway's answers against it: each answer's
/// status must be one the operation documents (or its `default`), its content type the
/// documented one, its required headers present, and a JSON body must match the schema (types,
/// required properties, no undocumented properties, enum values, formats, bounds). Every
/// operation checked is noted, so a test can ask that all of them were.
final class OpenAPIContract: Sendable {
    let document: [String: any Sendable]
    private let checked = Locked<Set<String>>([])

    init(_ name: String = "openapi.yaml") throws {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../services/web/\(name)")
        let loaded = try Yams.load(yaml: String(contentsOf: file, encoding: .utf8))
        document = try #require(Self.sendable(loaded) as? [String: any Sendable])
    }

    private static func sendable(_ value: Any?) -> any Sendable {
        switch value {
        case let map as [AnyHashable: Any]: Dictionary(uniqueKeysWithValues: map.map { ("\($0.key)", sendable($0.value)) })
        case let list as [Any]: list.map { sendable($0) }
        case let text as String: text
        case let number as Int: number
        case let number as Double: number
        case let flag as Bool: flag
        default: String(describing: value ?? "null")
        }
    }

    /// Every operation of the document: "GET /calls/{callId}".
    var operations: Set<String> {
        var all = Set<String>()
        for (path, item) in document["paths"] as? [String: any Sendable] ?? [:] {
            for method in (item as? [String: any Sendable] ?? [:]).keys where method != "parameters" { all.insert("\(method.uppercased()) \(path)") }
        }
        return all
    }

    var checkedOperations: Set<String> { checked.withLock { $0 } }

    /// The problems of one answer to `method` on `template` (a path of the document, "/calls/{callId}"); empty when it conforms.
    func problems(_ method: String, _ template: String, status: Int, headers: [String: String], body: Data) -> [String] {
        let operation = "\(method) \(template)"
        guard let item = (document["paths"] as? [String: any Sendable])?[template] as? [String: any Sendable],
              let spec = item[method.lowercased()] as? [String: any Sendable] else { return ["\(operation) is not in openapi.yaml"] }
        checked.withLock { _ = $0.insert(operation) }
        let responses = spec["responses"] as? [String: any Sendable] ?? [:]
        guard let found = responses[String(status)] ?? responses["default"], let response = resolve(found) as? [String: any Sendable] else {
            return ["\(operation): status \(status) is not documented"]
        }
        var problems: [String] = []
        func header(_ name: String) -> String? { headers.first { $0.key.lowercased() == name.lowercased() }?.value }
        for (name, value) in response["headers"] as? [String: any Sendable] ?? [:] {
            if (resolve(value) as? [String: any Sendable])?["required"] as? Bool == true, header(name) == nil {
                problems.append("\(operation) \(status): header \(name) is missing")
            }
        }
        guard let content = response["content"] as? [String: any Sendable] else {
            if !body.isEmpty { problems.append("\(operation) \(status): a body where none is documented") }
            return problems
        }
        let type = (header("Content-Type") ?? "").split(separator: ";")[0].trimmingCharacters(in: .whitespaces)
        guard let media = content.first(where: { key, _ in
            key == type || (key.hasSuffix("/*") && type.hasPrefix(String(key.dropLast())))
        }) else { return problems + ["\(operation) \(status): content type \(type) is not documented (\(content.keys.sorted()))"] }
        guard type.hasSuffix("json") else { return problems }
        guard let json = try? JSONDecoder().decode(JSONValue.self, from: body) else {
            return problems + ["\(operation) \(status): the body is not JSON"]
        }
        let schema = (media.value as? [String: any Sendable])?["schema"] ?? [String: any Sendable]()
        return problems + validate(json, schema, at: "\(operation) \(status) body")
    }

    private func resolve(_ value: any Sendable) -> any Sendable {
        guard let map = value as? [String: any Sendable], let reference = map["$ref"] as? String, reference.hasPrefix("#/") else { return value }
        var node: (any Sendable)? = document
        for part in reference.dropFirst(2).split(separator: "/") { node = (node as? [String: any Sendable])?[String(part)] }
        return node.map(resolve) ?? value
    }

    private func validate(_ value: JSONValue, _ schemaValue: any Sendable, at path: String) -> [String] {
        guard let schema = resolve(schemaValue) as? [String: any Sendable] else { return [] }
        if let allowed = schema["enum"] as? [any Sendable] {
            guard case .string(let text) = value, allowed.contains(where: { "\($0)" == text }) else { return ["\(path): \(value) is not one of \(allowed)"] }
        }
        switch (schema["type"] as? String, value) {
        case ("object", .object(let object)):
            let properties = schema["properties"] as? [String: any Sendable] ?? [:]
            var problems = (schema["required"] as? [any Sendable] ?? []).compactMap { name in
                object["\(name)"] == nil ? "\(path): required \(name) is missing" : nil
            }
            let others = schema["additionalProperties"] as? [String: any Sendable]  // a map's values
            for (key, item) in object {
                guard let property = properties[key] ?? others else { problems.append("\(path): \(key) is not documented"); continue }
                problems += validate(item, property, at: "\(path).\(key)")
            }
            return problems
        case ("array", .array(let array)):
            var problems: [String] = []
            if let least = schema["minItems"] as? Int, array.count < least { problems.append("\(path): fewer than \(least) items") }
            for (index, item) in array.enumerated() { problems += validate(item, schema["items"] ?? [String: any Sendable](), at: "\(path)[\(index)]") }
            return problems
        case ("string", .string(let text)):
            if let most = schema["maxLength"] as? Int, text.count > most { return ["\(path): longer than \(most)"] }
            if schema["format"] as? String == "date-time", (try? Date(text, strategy: .iso8601)) == nil { return ["\(path): \(text) is not RFC 3339"] }
            if let pattern = schema["pattern"] as? String, text.range(of: pattern, options: .regularExpression) == nil {
                return ["\(path): \(text) does not match \(pattern)"]
            }
            return []
        case ("number", .number):
            return []
        case ("integer", .number(let number)):
            guard number == number.rounded() else { return ["\(path): \(number) is not an integer"] }
            if let least = schema["minimum"] as? Int, number < Double(least) { return ["\(path): below \(least)"] }
            if let most = schema["maximum"] as? Int, number > Double(most) { return ["\(path): above \(most)"] }
            return []
        case ("boolean", .bool), (nil, _):
            return []
        case (let type?, _):
            return ["\(path): \(value) is not of type \(type)"]
        }
    }
}

/// Any JSON value, decoded strictly (a number is never a boolean).
indirect enum JSONValue: Decodable, CustomStringConvertible {
    case object([String: JSONValue]), array([JSONValue]), string(String), number(Double), bool(Bool), null

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let flag = try? container.decode(Bool.self) { self = .bool(flag) }
        else if let number = try? container.decode(Double.self) { self = .number(number) }
        else if let text = try? container.decode(String.self) { self = .string(text) }
        else if let list = try? container.decode([JSONValue].self) { self = .array(list) }
        else { self = .object(try container.decode([String: JSONValue].self)) }
    }

    var description: String {
        switch self {
        case .object: "an object"
        case .array: "an array"
        case .string(let text): "\"\(text)\""
        case .number(let number): "\(number)"
        case .bool(let flag): "\(flag)"
        case .null: "null"
        }
    }

    subscript(key: String) -> JSONValue? { if case .object(let object) = self { object[key] } else { nil } }
    var text: String? { if case .string(let text) = self { text } else { nil } }
    var list: [JSONValue] { if case .array(let list) = self { list } else { [] } }
}
