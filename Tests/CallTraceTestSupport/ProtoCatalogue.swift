public import CallTraceProto
public import CallTraceRPC
import CallTraceSync
public import Foundation
public import SwiftProtobuf

/// The services, methods and messages of `proto/`, read from protoc's descriptor set, and the
/// requests made from them as raw protobuf bytes: the suites generated from the schema (hostile
/// values, the cross-tenant matrix) take every RPC from here, so a new one is in them without
/// anyone adding it.
public struct ProtoCatalogue: Sendable {
    public struct Method: Sendable {
        public let service: String
        public let name: String
        public let input: String
        public let kind: MethodKind
        /// What the method declares in its proto (`(calltrace.rpc.v1.access)`).
        public let access: Calltrace_Rpc_V1_Access
        public var fullName: String { "/\(service)/\(name)" }
        /// The proto package's second word: the service or gateway that serves it (`ops`: every one).
        public var package: String { service.split(separator: ".").dropFirst().first.map(String.init) ?? "" }

        /// Which of `running` serve it: its package's service, or all of them for `ops`.
        public func hosts(among running: [String]) -> [String] {
            package == "ops" ? running : running.filter { $0 == package }
        }

        /// 0 reads, 1 other changes, 2 what ends sessions, users or the firm's data.
        public var risk: Int {
            let ending = ["Delete", "Purge", "Erase", "Remove", "Revoke", "Suspend", "Offboard", "Logout", "SecurityPolicy",
                          "ResetTwoFactor", "ChangeUserRole", "Release", "Close", "Confirm", "Redact", "Export"]
            if ending.contains(where: { name.contains($0) }) { return 2 }
            return ["Get", "List", "Play", "Open", "Find", "Verify", "Check", "Locate", "Download", "Attribution"]
                .contains(where: { name.hasPrefix($0) }) ? 0 : 1
        }

        /// The permission its access names (a user's, a user's or service's, or the handler's
        /// base one); nil for `none` and an unspecified base.
        public var permission: Calltrace_Identity_V1_Permission? {
            let named: Calltrace_Identity_V1_Permission? = switch access.rule {
            case .user(let p), .userOrService(let p), .inHandler(let p): p
            case .some(.none), nil: nil
            }
            return named == .unspecified ? nil : named
        }
    }

    public let methods: [Method]
    public let messages: [String: Google_Protobuf_DescriptorProto]

    public static func load() async throws -> ProtoCatalogue {
        let set = try await protoDescriptorSet(includeImports: true)
        var messages: [String: Google_Protobuf_DescriptorProto] = [:]
        var methods: [Method] = []
        func collect(_ message: Google_Protobuf_DescriptorProto, prefix: String) {
            messages["\(prefix).\(message.name)"] = message
            for nested in message.nestedType { collect(nested, prefix: "\(prefix).\(message.name)") }
        }
        for file in set.file {
            for message in file.messageType { collect(message, prefix: ".\(file.package)") }
            guard file.package.hasPrefix("calltrace."), !file.package.hasPrefix("calltrace.rpc") else { continue }
            for service in file.service {
                for method in service.method {
                    // The access option arrives as an unknown field; read again with its extension known.
                    let options = try Google_Protobuf_MethodOptions(serializedBytes: try method.options.serializedBytes() as Data,
                                                                    extensions: Calltrace_Rpc_V1_Options_Extensions)
                    methods.append(Method(service: "\(file.package).\(service.name)", name: method.name, input: method.inputType,
                                          kind: MethodKind(method), access: options.Calltrace_Rpc_V1_access))
                }
            }
        }
        return ProtoCatalogue(methods: methods, messages: messages)
    }

    /// One field's value on the wire.
    public enum Value {
        case varint(UInt64), fixed32(UInt32), fixed64(UInt64), bytes(Data)
    }

    /// The extreme values of a field of `type` (0, 1, -1, minimum, maximum; empty, 1 MiB and
    /// control characters for text; NaN and infinities for floating point).
    static func extremes(of field: Google_Protobuf_FieldDescriptorProto) -> [Value] {
        func signed(_ values: [Int64]) -> [Value] { values.map { .varint(UInt64(bitPattern: $0)) } }
        func zigzag(_ values: [Int64]) -> [Value] { values.map { .varint(UInt64(bitPattern: ($0 << 1) ^ ($0 >> 63))) } }
        switch field.type {
        case .int32, .enum: return signed([0, 1, -1, Int64(Int32.min), Int64(Int32.max)])
        case .int64: return signed([0, 1, -1, Int64.min, Int64.max])
        case .uint32: return [.varint(0), .varint(1), .varint(UInt64(UInt32.max))]
        case .uint64: return [.varint(0), .varint(1), .varint(UInt64.max - 1), .varint(UInt64.max)]
        case .sint32: return zigzag([0, -1, Int64(Int32.min), Int64(Int32.max)])
        case .sint64: return zigzag([0, -1, Int64.min, Int64.max])
        case .bool: return [.varint(0), .varint(1)]
        case .fixed32, .sfixed32: return [.fixed32(0), .fixed32(UInt32.max), .fixed32(UInt32(bitPattern: Int32.min))]
        case .fixed64, .sfixed64: return [.fixed64(0), .fixed64(UInt64.max), .fixed64(UInt64(bitPattern: Int64.min))]
        case .float: return [Float.nan, .infinity, -.infinity, .greatestFiniteMagnitude].map { .fixed32($0.bitPattern) }
        case .double: return [Double.nan, .infinity, -.infinity, .greatestFiniteMagnitude].map { .fixed64($0.bitPattern) }
        case .string, .bytes:
            return [.bytes(Data()), .bytes(Data(repeating: UInt8(ascii: "9"), count: 1 << 20)), .bytes(Data("../\u{0}\n\r\u{1b}[31m%n".utf8))]
        default: return []
        }
    }

    /// The hostile requests for `messageName`: the seeded request first, then each field at each
    /// extreme (one level into nested messages), each extreme in every field at once, and every
    /// field repeated three times.
    public func hostileRequests(for messageName: String, seeds: [String: String]) -> [Data] {
        guard let message = messages[messageName] else { return [Data()] }
        var requests = [encode(message, seeds: seeds)]
        for field in message.field {
            if field.type == .message, let nested = messages[field.typeName] {
                for inner in nested.field {
                    for value in Self.extremes(of: inner) {
                        let child = encode(nested, seeds: seeds, override: (inner.number, value))
                        requests.append(encode(message, seeds: seeds, override: (field.number, .bytes(child))))
                    }
                }
            } else {
                for value in Self.extremes(of: field) {
                    requests.append(encode(message, seeds: seeds, override: (field.number, value)))
                    // The others at 1, so sums and differences meet the extreme (offset 1 and
                    // length 2^64-1; from -2^63 and before 1).
                    requests.append(encode(message, seeds: seeds, override: (field.number, value), others: .varint(1)))
                }
            }
        }
        for index in 0..<5 {
            requests.append(encode(message, seeds: seeds, every: index))
        }
        requests.append(encode(message, seeds: seeds, times: 3))
        return requests
    }

    /// A request for `messageName` as a caller who means it would send one, so a rule reaches
    /// what the request names: each string field `seeds[name]` (every repeated one that one
    /// value; "" leaves it out), else `text`; each number, enum and flag `numbers[name]`, else 1;
    /// nested messages alike, two levels down; of a oneof, its first member only. Bytes stay out.
    public func plausibleRequest(for messageName: String, seeds: [String: String], numbers: [String: UInt64] = [:],
                                 text: String = "Matrix check") -> Data {
        func encode(_ message: Google_Protobuf_DescriptorProto, depth: Int) -> Data {
            var out = Data()
            var oneofsSet = Set<Int32>()
            for field in message.field {
                if field.hasOneofIndex && !field.proto3Optional {
                    guard oneofsSet.insert(field.oneofIndex).inserted else { continue }
                }
                let value: Value?
                switch field.type {
                case .string:
                    let seed = seeds[field.name] ?? text
                    value = seed.isEmpty ? nil : .bytes(Data(seed.utf8))
                case .message:
                    guard let nested = messages[field.typeName], !nested.options.mapEntry, depth < 2 else { continue }
                    value = .bytes(encode(nested, depth: depth + 1))
                case .bytes, .group:
                    value = nil
                case .fixed32, .sfixed32: value = .fixed32(UInt32(truncatingIfNeeded: numbers[field.name] ?? 1))
                case .fixed64, .sfixed64: value = .fixed64(numbers[field.name] ?? 1)
                case .float: value = .fixed32(Float(numbers[field.name] ?? 1).bitPattern)
                case .double: value = .fixed64(Double(numbers[field.name] ?? 1).bitPattern)
                default: value = .varint(numbers[field.name] ?? 1)
                }
                if let value { Self.append(field.number, value, to: &out) }
            }
            return out
        }
        return messages[messageName].map { encode($0, depth: 0) } ?? Data()
    }

    /// `message` with its seeded values (ids of the real firm by field name, else absent),
    /// `override` in place of one field (with `others` in every other integer field), or the
    /// `every`-th extreme in each field, each written `times`.
    func encode(_ message: Google_Protobuf_DescriptorProto, seeds: [String: String], override: (Int32, Value)? = nil,
                others: Value? = nil, every: Int? = nil, times: Int = 1, depth: Int = 0) -> Data {
        let integers: Set<Google_Protobuf_FieldDescriptorProto.TypeEnum> = [.int32, .int64, .uint32, .uint64, .sint32, .sint64]
        var out = Data()
        for field in message.field {
            var value: Value?
            if let override, override.0 == field.number {
                value = override.1
            } else if let others, integers.contains(field.type) {
                value = others
            } else if let every {
                if field.type == .message, let nested = messages[field.typeName], depth < 2 {
                    value = .bytes(encode(nested, seeds: seeds, every: every, depth: depth + 1))
                } else {
                    let extremes = Self.extremes(of: field)
                    value = extremes.isEmpty ? nil : extremes[every % extremes.count]
                }
            } else if let seed = seeds[field.name], field.type == .string {
                value = .bytes(Data(seed.utf8))
            } else if field.type == .message, let nested = messages[field.typeName], depth < 2 {
                value = .bytes(encode(nested, seeds: seeds, times: times, depth: depth + 1))
            }
            guard let value else { continue }
            for _ in 0..<times { Self.append(field.number, value, to: &out) }
        }
        return out
    }

    static func append(_ number: Int32, _ value: Value, to out: inout Data) {
        func varint(_ v: UInt64) {
            var v = v
            while v >= 0x80 { out.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
            out.append(UInt8(v))
        }
        let tag = UInt64(number) << 3
        switch value {
        case .varint(let v): varint(tag | 0); varint(v)
        case .fixed64(let v): varint(tag | 1); withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
        case .bytes(let b): varint(tag | 2); varint(UInt64(b.count)); out.append(b)
        case .fixed32(let v): varint(tag | 5); withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
        }
    }
}

extension ProtoCatalogue.Method {
    /// Sends `request`'s bytes to this method on `client`, whatever its kind (a client stream
    /// sends them `times` times): the status it ended with (nil when the call ended without one,
    /// as when the connection broke), its message, and every response message's bytes (those
    /// of a stream that then failed too).
    public func call(_ request: Data, on client: RPCClient, options: CallOptions, times: Int = 1) async
        -> (code: StatusCode?, message: String, body: Data) {
        let received = Received()
        do {
            let message = try Google_Protobuf_Empty(serializedBytes: request)  // unknown fields kept, sent as they are
            let descriptor = MethodDescriptor<Google_Protobuf_Empty, Google_Protobuf_Empty>(service: service, name: name, kind: kind, isIdempotent: false)
            switch kind {
            case .unary:
                received.add(try await client.unary(descriptor, message, options: options))
            case .serverStreaming:
                try await client.serverStreaming(descriptor, message, options: options) { responses in
                    for try await response in responses { received.add(response) }
                }
            case .clientStreaming, .bidirectionalStreaming:
                received.add(try await client.clientStreaming(descriptor, options: options) { writer in
                    for _ in 0..<times { try await writer.send(message) }
                })
            }
            return (.ok, "", received.bytes)
        } catch let error as RPCError {
            return (error.code, error.message, received.bytes)
        } catch {
            return (nil, "\(type(of: error))", received.bytes)
        }
    }

    /// Every response message's bytes, as they arrive.
    private final class Received: Sendable {
        private let received = Locked(Data())
        func add(_ message: Google_Protobuf_Empty) { received.withLock { $0 += (try? message.serializedBytes()) ?? Data() } }
        var bytes: Data { received.withLock { $0 } }
    }
}
