// Writes, for every `service` block in a protoc descriptor set, either the ctrpc method tables
// (for CallTraceProto) or, with `--services`, the typed client, the handler protocol and the
// per-method peer policies (for CallTraceAPI).
//
//   protoc --descriptor_set_out=/dev/stdout -I proto <files> | calltrace-protogen > Methods.swift
//   protoc --descriptor_set_out=/dev/stdout -I proto <files> | calltrace-protogen --services > Services.swift
//   protoc --descriptor_set_out=/dev/stdout -I proto <files> | calltrace-protogen --json-names > JSONNames.swift
//
// Run through `make proto`; the output is committed and never edited by hand.
import Foundation
import SwiftProtobuf

let input = FileHandle.standardInput.readDataToEndOfFile()
let set: Google_Protobuf_FileDescriptorSet
do {
    set = try Google_Protobuf_FileDescriptorSet(serializedBytes: input)
} catch {
    FileHandle.standardError.write(Data("calltrace-protogen: stdin is not a FileDescriptorSet: \(error)\n".utf8))
    exit(1)
}

/// swift-protobuf's name for a message: package components in UpperCamelCase joined by `_`.
func swiftPrefix(package: String) -> String {
    package.split(separator: ".").map { component in
        component.split(separator: "_").map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
    }.map { $0 + "_" }.joined()
}

func swiftType(_ protoType: String, package: String) -> String {
    let qualified = protoType.hasPrefix(".") ? String(protoType.dropFirst()) : protoType
    let packagePrefix = package + "."
    let local = qualified.hasPrefix(packagePrefix) ? String(qualified.dropFirst(packagePrefix.count)) : qualified
    let otherPackage = qualified.hasPrefix(packagePrefix) ? package : ""
    return swiftPrefix(package: otherPackage) + local.replacingOccurrences(of: ".", with: "_")
}

func lowerFirst(_ name: String) -> String { name.prefix(1).lowercased() + name.dropFirst() }

/// `MethodKind`'s case name for a method: which sides stream.
func kind(of method: Google_Protobuf_MethodDescriptorProto) -> String {
    switch (method.clientStreaming, method.serverStreaming) {
    case (false, false): return "unary"
    case (true, false): return "clientStreaming"
    case (false, true): return "serverStreaming"
    case (true, true): return "bidirectionalStreaming"
    }
}

/// One method as the generators see it.
struct Method {
    let name: String
    let property: String
    let kind: String
    let request: String
    let response: String
    let comment: String
    let access: Access
}

/// A method's `(calltrace.rpc.v1.access)` (proto/calltrace/rpc/v1/options.proto): what the
/// generated registration checks before the handler runs.
enum Access {
    /// A user or operator with the permission (its Swift case name); the handler gets the `Principal`.
    case user(String)
    /// As `user`, or a service acting as itself; the handler gets the actor.
    case userOrService(String)
    /// The handler checks (the base permission, if any, and why).
    case inHandler(String?, why: String)
    /// No user permission, and why.
    case none(why: String)

    /// The handler's extra parameter, if the registration checks.
    var parameter: (label: String, type: String, check: String, permission: String)? {
        switch self {
        case .user(let permission): ("principal", "Principal", "principal", permission)
        case .userOrService(let permission): ("actor", "String", "actor", permission)
        case .inHandler, .none: nil
        }
    }

    /// The line of the handler's documentation that says what the method needs.
    var documentation: String {
        func dotted(_ permission: String) -> String {
            permission.reduce(into: "") { $0 += $1.isUppercase ? ".\($1.lowercased())" : String($1) }
        }
        switch self {
        case .user(let permission): return "Access: \(dotted(permission)), checked before the call (`principal` is the authorised caller)."
        case .userOrService(let permission): return "Access: \(dotted(permission)), or a service as itself, checked before the call (`actor` names who)."
        case .inHandler(let permission, let why): return "Access: checked here, \(permission.map { dotted($0) + " at least" } ?? "by what the request names"): \(why)."
        case .none(let why): return "Access: no user permission (\(why))."
        }
    }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("calltrace-protogen: \(message)\n".utf8))
    exit(1)
}

/// The protobuf wire fields of `bytes` in order: varints as numbers, length-delimited ones as bytes
/// (fixed-width ones skipped); nil if malformed.
func wireFields(_ bytes: [UInt8]) -> [(number: Int, varint: UInt64, bytes: [UInt8])]? {
    var fields: [(number: Int, varint: UInt64, bytes: [UInt8])] = []
    var index = 0
    func varint() -> UInt64? {
        var value: UInt64 = 0
        for shift in stride(from: UInt64(0), to: 64, by: 7) where index < bytes.count {
            let byte = bytes[index]
            index += 1
            value |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 { return value }
        }
        return nil
    }
    while index < bytes.count {
        guard let key = varint() else { return nil }
        switch key & 7 {
        case 0:
            guard let value = varint() else { return nil }
            fields.append((Int(key >> 3), value, []))
        case 2:
            guard let length = varint(), length <= UInt64(bytes.count - index) else { return nil }
            fields.append((Int(key >> 3), 0, Array(bytes[index..<index + Int(length)])))
            index += Int(length)
        case 1: index += 8
        case 5: index += 4
        default: return nil
        }
    }
    return index == bytes.count ? fields : nil
}

/// The extension's field number (options.proto: `Access access = 50029`).
let accessExtension = 50029

/// Permission numbers → Swift case names (`PERMISSION_REPORTS_READ` → `reportsRead`).
func permissionNames(_ set: Google_Protobuf_FileDescriptorSet) -> [UInt64: String] {
    guard let permission = set.file.lazy.filter({ $0.package == "calltrace.identity.v1" })
        .flatMap(\.enumType).first(where: { $0.name == "Permission" }) else { fail("no calltrace.identity.v1.Permission in the descriptor set") }
    return Dictionary(uniqueKeysWithValues: permission.value.map { value in
        let words = value.name.dropFirst("PERMISSION_".count).lowercased().split(separator: "_")
        return (UInt64(value.number), words.first.map(String.init)! + words.dropFirst().map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined())
    })
}

/// What `method` of `service` declares; a method without a sound declaration stops the generator,
/// so no RPC ships without saying who may call it.
func access(of method: Google_Protobuf_MethodDescriptorProto, in service: String, request: Google_Protobuf_DescriptorProto?,
            permissions: [UInt64: String]) -> Access {
    let name = "\(service)/\(method.name)"
    guard let declared = wireFields(Array(method.options.unknownFields.data))?.last(where: { $0.number == accessExtension }),
          let fields = wireFields(declared.bytes) else {
        fail("\(name) declares no access: add `option (calltrace.rpc.v1.access) = { … };` (proto/calltrace/rpc/v1/options.proto)")
    }
    let why = fields.last(where: { $0.number == 5 }).map { String(decoding: $0.bytes, as: UTF8.self) } ?? ""
    guard let rule = fields.last(where: { (1...4).contains($0.number) }) else { fail("\(name): its access names no rule") }
    if rule.number >= 3 && why.isEmpty { fail("\(name): say why (`why: \"…\"`) with in_handler or none") }
    let permission = permissions[rule.varint].flatMap { $0 == "unspecified" ? nil : $0 }
    switch rule.number {
    case 3: return .inHandler(permission, why: why)
    case 4: return .none(why: why)
    default:
        guard let permission else { fail("\(name): name the permission a user needs") }
        guard !method.clientStreaming else {
            fail("\(name): a client stream's organisation comes with its first message; declare in_handler or none and check there")
        }
        guard request?.field.contains(where: { $0.name == "org_id" && $0.type == .string && $0.label != .repeated }) == true else {
            fail("\(name): the route check reads the request's top-level `string org_id`, which \(method.inputType) lacks")
        }
        return rule.number == 1 ? .user(permission) : .userOrService(permission)
    }
}

/// The leading comments protoc kept for `path` in `file`, as `///` lines.
func docComment(_ file: Google_Protobuf_FileDescriptorProto, path: [Int32], indent: String) -> String {
    guard let location = file.sourceCodeInfo.location.first(where: { $0.path == path }), !location.leadingComments.isEmpty else { return "" }
    return location.leadingComments.split(separator: "\n", omittingEmptySubsequences: false)
        .map { $0.trimmingCharacters(in: .whitespaces) }
        .reduce(into: [String]()) { lines, line in if !(line.isEmpty && lines.last?.isEmpty != false) { lines.append(line) } }
        .filter { !$0.isEmpty }
        .map { "\(indent)/// \($0)\n" }.joined()
}

/// Every message's fields, number → JSON name, nested messages included: what the CLI's
/// `--json` needs to name the fields its visitor walks (swift-protobuf keeps its name maps internal).
func jsonNamesFile(_ set: Google_Protobuf_FileDescriptorSet) -> String {
    var rows: [String] = []
    func add(_ message: Google_Protobuf_DescriptorProto, prefix: String) {
        let name = "\(prefix).\(message.name)"
        let fields = message.field.sorted { $0.number < $1.number }.map { "\($0.number): \"\($0.jsonName)\"" }
        rows.append("    \"\(name)\": [\(fields.isEmpty ? ":" : fields.joined(separator: ", "))],")
        for nested in message.nestedType where !nested.options.mapEntry { add(nested, prefix: name) }
    }
    for file in set.file.sorted(by: { $0.name < $1.name }) {
        for message in file.messageType { add(message, prefix: file.package) }
    }
    return """
    // Generated by calltrace-protogen --json-names from proto/ (`make proto`). Do not edit.

    /// Each message's fields (full proto name → field number → JSON name), for `calltrace --json`.
    public let protoJSONNames: [String: [Int: String]] = [
    \(rows.joined(separator: "\n"))
    ]

    """
}

if CommandLine.arguments.contains("--json-names") {
    FileHandle.standardOutput.write(Data(jsonNamesFile(set).utf8))
    exit(0)
}

/// The methods listed in `file` (`<proto service>/<Method>` per line; `#` comments), each checked
/// against the descriptors: it must exist and be unary or server-streaming.
func relayedMethods(_ set: Google_Protobuf_FileDescriptorSet, listedIn path: String) -> [(file: Google_Protobuf_FileDescriptorProto, service: Google_Protobuf_ServiceDescriptorProto, method: Google_Protobuf_MethodDescriptorProto)] {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
        FileHandle.standardError.write(Data("calltrace-protogen: cannot read \(path)\n".utf8))
        exit(1)
    }
    var found: [(Google_Protobuf_FileDescriptorProto, Google_Protobuf_ServiceDescriptorProto, Google_Protobuf_MethodDescriptorProto)] = []
    for line in text.split(separator: "\n") {
        let entry = line.trimmingCharacters(in: .whitespaces)
        if entry.isEmpty || entry.hasPrefix("#") { continue }
        let parts = entry.split(separator: "/")
        let match = parts.count == 2 ? set.file.lazy.flatMap { file in
            file.service.lazy.filter { "\(file.package).\($0.name)" == parts[0] }.flatMap { service in
                service.method.lazy.filter { $0.name == parts[1] }.map { (file, service, $0) }
            }
        }.first : nil
        guard let match, !match.2.clientStreaming else {
            FileHandle.standardError.write(Data("calltrace-protogen: \(path): \(entry) is not a unary or server-streaming method of proto/\n".utf8))
            exit(1)
        }
        found.append(match)
    }
    return found
}

/// The web gateway's table of relayed methods: path → method and the service that serves it.
func relayFile(_ set: Google_Protobuf_FileDescriptorSet, listedIn path: String) -> String {
    let rows = relayedMethods(set, listedIn: path).map { file, service, method -> String in
        let table = swiftPrefix(package: file.package) + service.name
        let peer = file.package.split(separator: ".").dropFirst().first.map(String.init) ?? file.package
        let kind = method.serverStreaming ? "serverStreaming" : "unary"
        return "        \"\(file.package).\(service.name)/\(method.name)\": .\(kind)(\(table).\(lowerFirst(method.name)), peer: \"\(peer)\"),"
    }
    return """
    // Generated by calltrace-protogen --relay \(path) from proto/ (`make proto`). Do not edit.
    import CallTraceProto

    extension RelayedMethod {
        /// What `/api/v1/rpc/<service>/<Method>` relays, by `<service>/<Method>`: \(path)'s list.
        static let table: [String: RelayedMethod] = [
    \(rows.joined(separator: "\n"))
        ]
    }

    """
}

/// The OpenAPI 3.1 document of the relayed methods: one `POST /api/v1/rpc/<service>/<Method>` each,
/// its request and answer as the proto3 JSON mapping writes them (the schemas generated from the
/// messages: 64-bit integers as decimal strings, bytes as base64, enums by name, defaults omitted).
func relayOpenAPI(_ set: Google_Protobuf_FileDescriptorSet, listedIn path: String) -> String {
    var messages: [String: Google_Protobuf_DescriptorProto] = [:]
    var enums: [String: Google_Protobuf_EnumDescriptorProto] = [:]
    func index(_ message: Google_Protobuf_DescriptorProto, prefix: String) {
        let name = "\(prefix).\(message.name)"
        messages[name] = message
        for nested in message.nestedType { index(nested, prefix: name) }
        for e in message.enumType { enums["\(name).\(e.name)"] = e }
    }
    for file in set.file {
        for message in file.messageType { index(message, prefix: file.package) }
        for e in file.enumType { enums["\(file.package).\(e.name)"] = e }
    }
    var schemas: [String: Any] = [:]
    func reference(_ typeName: String) -> [String: Any] { ["$ref": "#/components/schemas/\(typeName.hasPrefix(".") ? String(typeName.dropFirst()) : typeName)"] }
    func schema(of field: Google_Protobuf_FieldDescriptorProto) -> [String: Any] {
        let single: [String: Any]
        switch field.type {
        case .string: single = ["type": "string"]
        case .bool: single = ["type": "boolean"]
        case .int32, .sint32, .sfixed32: single = ["type": "integer", "format": "int32"]
        case .uint32, .fixed32: single = ["type": "integer", "minimum": 0, "maximum": 4_294_967_295]
        case .int64, .sint64, .sfixed64: single = ["type": "string", "pattern": "^-?[0-9]{1,19}$", "description": "a 64-bit integer, in decimal"]
        case .uint64, .fixed64: single = ["type": "string", "pattern": "^[0-9]{1,20}$", "description": "an unsigned 64-bit integer, in decimal"]
        case .double, .float: single = ["type": "number"]
        case .bytes: single = ["type": "string", "contentEncoding": "base64"]
        case .enum:
            let name = String(field.typeName.dropFirst())
            add(enumNamed: name)
            single = reference(name)
        case .message, .group:
            let name = String(field.typeName.dropFirst())
            if let entry = messages[name], entry.options.mapEntry, entry.field.count == 2 {
                return ["type": "object", "additionalProperties": schema(of: entry.field[1])]
            }
            add(messageNamed: name)
            single = reference(name)
        }
        return field.label == .repeated ? ["type": "array", "items": single] : single
    }
    func add(enumNamed name: String) {
        guard schemas[name] == nil, let e = enums[name] else { return }
        schemas[name] = ["type": "string", "enum": e.value.map(\.name)]
    }
    func add(messageNamed name: String) {
        guard schemas[name] == nil, let message = messages[name] else { return }
        schemas[name] = [:]  // a placeholder, for messages that refer to themselves
        var properties: [String: Any] = [:]
        for field in message.field { properties[field.jsonName] = schema(of: field) }
        schemas[name] = ["type": "object", "properties": properties, "additionalProperties": false]
    }
    var paths: [String: Any] = [:]
    for (file, service, method) in relayedMethods(set, listedIn: path) {
        let serviceIndex = file.service.firstIndex(of: service)!, methodIndex = service.method.firstIndex(of: method)!
        let request = String(method.inputType.dropFirst()), response = String(method.outputType.dropFirst())
        add(messageNamed: request)
        add(messageNamed: response)
        let comment = docComment(file, path: [6, Int32(serviceIndex), 2, Int32(methodIndex)], indent: "")
            .split(separator: "\n").map { $0.dropFirst(4) }.joined(separator: " ")
        let streaming = method.serverStreaming
        let body: [String: Any] = streaming
            ? ["application/connect+json": ["schema": ["type": "string", "format": "binary",
                                                       "description": "one enveloped \(request) (a flags byte, 0; its length, 4 bytes big-endian; the JSON)"]]]
            : ["application/json": ["schema": reference(request)]]
        let answer: [String: Any] = streaming
            ? ["application/connect+json": ["schema": ["type": "string", "format": "binary",
                                                       "description": "enveloped \(response) messages, then the end-of-stream message (flags 2): {} or {\"error\":{\"code\":…,\"message\":…}}"]]]
            : ["application/json": ["schema": reference(response)]]
        paths["/api/v1/rpc/\(file.package).\(service.name)/\(method.name)"] = ["post": [
            "operationId": "\(service.name).\(method.name)",
            "tags": [service.name],
            "summary": "\(file.package).\(service.name)/\(method.name)" + (streaming ? " (server stream)" : ""),
            "description": comment,
            "requestBody": ["required": true, "content": body],
            "responses": [
                "200": ["description": streaming ? "the stream" : "the answer", "content": answer],
                "default": ["description": "the service's or the gateway's refusal: the status code's name and a message",
                            "content": ["application/json": ["schema": ["$ref": "#/components/schemas/ConnectError"]]]],
            ],
        ]]
    }
    schemas["ConnectError"] = ["type": "object", "required": ["code"], "additionalProperties": false, "properties": [
        "code": ["type": "string", "enum": ["canceled", "unknown", "invalid_argument", "deadline_exceeded", "not_found", "already_exists",
                                            "permission_denied", "resource_exhausted", "failed_precondition", "aborted", "out_of_range",
                                            "unimplemented", "internal", "unavailable", "data_loss", "unauthenticated"]],
        "message": ["type": "string"],
    ]]
    let document: [String: Any] = [
        "openapi": "3.1.0",
        "info": ["title": "CallTrace: the services' methods through the web app", "version": "1",
                 "description": "Generated by calltrace-protogen --relay-openapi from proto/ and \(path) (`make proto`); do not edit. "
                     + "The Connect protocol (https://connectrpc.com/docs/protocol) with JSON bodies: a person's API token "
                     + "(Authorization: Bearer ctk_…), the organisation in each request's orgId. The answers are the services' own."],
        "security": [["apiToken": []]],
        "paths": paths,
        "components": ["schemas": schemas, "securitySchemes": ["apiToken": ["type": "http", "scheme": "bearer"]]],
    ]
    let data = try! JSONSerialization.data(withJSONObject: document, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    return String(decoding: data, as: UTF8.self) + "\n"
}

if let index = CommandLine.arguments.firstIndex(of: "--relay-openapi"), index + 1 < CommandLine.arguments.count {
    FileHandle.standardOutput.write(Data(relayOpenAPI(set, listedIn: CommandLine.arguments[index + 1]).utf8))
    exit(0)
}

if let index = CommandLine.arguments.firstIndex(of: "--relay"), index + 1 < CommandLine.arguments.count {
    FileHandle.standardOutput.write(Data(relayFile(set, listedIn: CommandLine.arguments[index + 1]).utf8))
    exit(0)
}

if CommandLine.arguments.contains("--services") {
    FileHandle.standardOutput.write(Data(servicesFile(set).utf8))
    exit(0)
}

/// The typed client, handler protocol and policies of every service.
func servicesFile(_ set: Google_Protobuf_FileDescriptorSet) -> String {
    var out = """
    // Generated by calltrace-protogen --services from proto/ (`make proto`). Do not edit.
    //
    // Per proto service: `<Service>Client`, a typed client (one method per RPC); `<Service>Handler`,
    // the protocol its server implements (a missing RPC is a compile error) and registers with
    // `register(with:)`; `<Service>Policies`, which peers may call each RPC (every one named).
    public import CallTraceProto
    public import CallTraceRPC


    """
    let permissions = permissionNames(set)
    let messages = Dictionary(set.file.flatMap { file in file.messageType.map { (".\(file.package).\($0.name)", $0) } }) { first, _ in first }
    for file in set.file.sorted(by: { $0.name < $1.name }) where !file.service.isEmpty {
        for (serviceIndex, service) in file.service.enumerated() {
            let qualified = "\(file.package).\(service.name)"
            let table = swiftPrefix(package: file.package) + service.name
            let methods = service.method.enumerated().map { index, method -> Method in
                Method(name: method.name, property: lowerFirst(method.name), kind: kind(of: method),
                              request: swiftType(method.inputType, package: file.package),
                              response: swiftType(method.outputType, package: file.package),
                              comment: docComment(file, path: [6, Int32(serviceIndex), 2, Int32(index)], indent: "    "),
                              access: access(of: method, in: qualified, request: messages[method.inputType], permissions: permissions))
            }.filter { $0.kind != "bidirectionalStreaming" }
            let checked = methods.contains { $0.access.parameter != nil }
            out += "// MARK: \(qualified)\n\n"
            // Policies
            out += "/// Which peers may call each method of `\(qualified)`.\n"
            out += "public struct \(table)Policies: Sendable {\n"
            for method in methods { out += "    public var \(method.property): PeerPolicy\n" }
            out += "\n    public init(" + methods.map { "\($0.property): PeerPolicy" }.joined(separator: ", ") + ") {\n"
            for method in methods { out += "        self.\(method.property) = \(method.property)\n" }
            out += "    }\n}\n\n"
            // Handler
            out += "/// The server side of `\(qualified)`: implement every method, name who may call each in\n"
            out += "/// `policies`, and hand the value to the server (it registers itself).\n"
            out += "public protocol \(table)Handler: RPCService {\n"
            out += "    var policies: \(table)Policies { get }\n"
            if checked {
                out += "    /// Answers the route check the registration runs before each method that declares a permission.\n"
                out += "    var authorizer: any Authorizing { get }\n"
            }
            for method in methods {
                out += "\n" + method.comment + (method.comment.isEmpty ? "" : "    ///\n") + "    /// \(method.access.documentation)\n"
                let checked = method.access.parameter.map { "\($0.label): \($0.type), " } ?? ""
                switch method.kind {
                case "unary":
                    out += "    func \(method.property)(_ request: \(method.request), \(checked)context: ServerContext) async throws -> \(method.response)\n"
                case "serverStreaming":
                    out += "    func \(method.property)(_ request: \(method.request), \(checked)responses: ResponseWriter<\(method.response)>, context: ServerContext) async throws\n"
                default:
                    out += "    func \(method.property)(_ requests: RequestStream<\(method.request)>, context: ServerContext) async throws -> \(method.response)\n"
                }
            }
            out += "}\n\n"
            out += "extension \(table)Handler {\n"
            out += "    /// Each method under its peer policy; one that declares a permission only after the route check.\n"
            out += "    public func register(with router: inout RPCRouter) {\n"
            out += "        let policies = self.policies\n"
            if checked { out += "        let authorizer = self.authorizer\n" }
            for method in methods {
                let route = "router.\(method.kind)(\(table).\(method.property), allow: policies.\(method.property))"
                guard let parameter = method.access.parameter else {
                    switch method.kind {
                    case "serverStreaming": out += "        \(route) { try await self.\(method.property)($0, responses: $1, context: $2) }\n"
                    default: out += "        \(route) { try await self.\(method.property)($0, context: $1) }\n"
                    }
                    continue
                }
                let check = "\(parameter.label): try await authorizer.\(parameter.check)(of: context, in: request.orgID, may: .\(parameter.permission))"
                switch method.kind {
                case "serverStreaming":
                    out += "        \(route) { request, responses, context in\n"
                    out += "            try await self.\(method.property)(request, \(check), responses: responses, context: context)\n        }\n"
                default:
                    out += "        \(route) { request, context in\n"
                    out += "            try await self.\(method.property)(request, \(check), context: context)\n        }\n"
                }
            }
            out += "    }\n}\n\n"
            // Client
            out += "/// A typed client of `\(qualified)` over one channel: an `RPCClient` (its connection, retries\n"
            out += "/// and deadlines), or any other `RPCChannel` to the same methods.\n"
            out += "public struct \(table)Client: Sendable {\n"
            out += "    public let rpc: any RPCChannel\n\n"
            out += "    public init(_ rpc: any RPCChannel) {\n        self.rpc = rpc\n    }\n"
            for method in methods {
                out += "\n" + method.comment
                switch method.kind {
                case "unary":
                    out += "    public func \(method.property)(_ request: \(method.request), options: CallOptions = CallOptions()) async throws -> \(method.response) {\n"
                    out += "        try await rpc.unary(\(table).\(method.property), request, options: options)\n    }\n"
                case "serverStreaming":
                    out += "    public func \(method.property)<Result: Sendable>(_ request: \(method.request), options: CallOptions = CallOptions(),\n"
                    out += "        handle: (ResponseStream<\(method.response)>) async throws -> Result) async throws -> Result {\n"
                    out += "        try await rpc.serverStreaming(\(table).\(method.property), request, options: options, handle: handle)\n    }\n"
                default:
                    out += "    public func \(method.property)(options: CallOptions = CallOptions(),\n"
                    out += "        send: (RequestWriter<\(method.request)>) async throws -> Void) async throws -> \(method.response) {\n"
                    out += "        try await rpc.clientStreaming(\(table).\(method.property), options: options, send: send)\n    }\n"
                }
            }
            out += "}\n\n"
        }
    }
    return out
}

var out = """
// Generated by calltrace-protogen from proto/ (`make proto`). Do not edit.

"""
var allServices: [String] = []
for file in set.file.sorted(by: { $0.name < $1.name }) where !file.service.isEmpty {
    out += "// MARK: \(file.name)\n\n"
    for service in file.service {
        let qualified = "\(file.package).\(service.name)"
        let enumName = swiftPrefix(package: file.package) + service.name
        allServices.append(enumName)
        out += "/// `\(qualified)`\n"
        out += "public enum \(enumName) {\n"
        out += "    public static let name = \"\(qualified)\"\n"
        var names: [String] = []
        for method in service.method {
            let kind = kind(of: method)
            let level = method.options.idempotencyLevel
            let idempotent = level == .noSideEffects || level == .idempotent
            let request = swiftType(method.inputType, package: file.package)
            let response = swiftType(method.outputType, package: file.package)
            let property = lowerFirst(method.name)
            names.append(property)
            out += """

                /// `/\(qualified)/\(method.name)`
                public static let \(property) = MethodDescriptor<\(request), \(response)>(
                    service: name, name: "\(method.name)", kind: .\(kind), isIdempotent: \(idempotent))

            """
        }
        out += "\n    /// Every method of the service, in declaration order.\n"
        out += "    public static let methods: [MethodInfo] = [\(names.map { "\($0).info" }.joined(separator: ", "))]\n"
        out += "}\n\n"
    }
}
out += """
/// Every service declared under proto/.
public enum ProtoServices {
    public static let all: [(name: String, methods: [MethodInfo])] = [
\(allServices.map { "        (\($0).name, \($0).methods)," }.joined(separator: "\n"))
    ]
}

"""
FileHandle.standardOutput.write(Data(out.utf8))
