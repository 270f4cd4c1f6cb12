import CallTraceAPI
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceTestSupport
import Foundation
import SwiftProtobuf
import Testing

/// No request may terminate a process: every RPC of every service, generated from `proto/`
/// (protoc's descriptor set, so a new RPC or field is in the table without anyone adding it),
/// receives the extreme values of each of its fields, one field at a time on top of a request
/// that names a real firm's call, recording and share link (so a rule past validation sees the
/// value), then all fields at once, then every field twice. Each answer must be a status, and
/// every service must still answer SERVING at the end.
@Suite("Hostile values: every RPC, every field's extremes")
struct ExtremeValueTests {
    @Test("No request terminates a service: each answer is a status and all four still serve")
    func everyRPCSurvivesItsExtremes() async throws {
        let deployment = try await CallDataDeployment()
        defer { Task { await deployment.stop() } }
        let tracking = "+441632960001"
        let firm = try await deployment.organisation(tracking: tracking)
        let recording = try await deployment.call("call-extreme", org: firm.org, tracking: tracking, caller: "+447700900123",
                                                  at: CallDataDeployment.start)
        let link = try await Calltrace_Media_V1_ShareLinkServiceClient(try deployment.media.client(identity: CallDataDeployment.web))
            .createShareLink(.with { $0.orgID = firm.org; $0.recordingID = recording; $0.ttlSeconds = 3600 }, options: try bearer(firm.admin))
        let seeds: [String: String] = [
            "org_id": firm.org, "confirm_org_id": firm.org, "call_id": "call-extreme", "recording_id": recording,
            "token": link.token, "link_id": link.link.linkID, "tracking_number": tracking, "number": tracking,
            "caller_number": "+447700900123", "phone_number": "+447700900123",
        ]
        let catalogue = try await ProtoCatalogue.load()
        let hosts: [String: InProcessService] = [
            "identity": deployment.identity, "media": deployment.media, "transcript": deployment.transcript, "compliance": deployment.compliance,
        ]
        // Reads first and the firm's destruction last, so most methods meet a live firm.
        let methods = catalogue.methods.filter { $0.hostingServices.contains { hosts[$0] != nil } }  // not the test-only echo service
            .sorted { ($0.risk, $0.fullName) < ($1.risk, $1.fullName) }
        var calls = 0, admitted = 0
        var failures: [String] = []
        for method in methods {
            for service in method.hostingServices {
                guard let host = hosts[service] else { continue }
                let requests = catalogue.hostileRequests(for: method.input, seeds: seeds)
                // The first caller the route admits: the web gateway as the firm's admin, the
                // telephony gateway (calls and uploads), an operator, or the service peers (for
                // service-only methods).
                let callers = [CallDataDeployment.web, TemporaryPKI.telephony, TemporaryPKI.identity("operator", "ops")]
                    + ["identity", "media", "transcript", "compliance"].map { TemporaryPKI.identity("service", $0) }
                var chosen = callers[0]
                for caller in callers {
                    let answer = await Self.send(method, requests[0], to: host, as: caller, token: firm.admin)
                    if answer != .permissionDenied && answer != .unauthenticated { chosen = caller; admitted += 1; break }
                }
                for request in requests {
                    calls += 1
                    let answer = await Self.send(method, request, to: host, as: chosen, token: firm.admin)
                    if answer == nil || answer == .deadlineExceeded || answer == .unavailable {
                        failures.append("\(method.fullName) on \(service): \(answer.map { "\($0)" } ?? "no status")")
                    }
                }
            }
        }
        print("hostile values: \(calls) calls to \(methods.count) methods (\(admitted) admitted past the route)")
        #expect(failures.isEmpty, "\(failures.prefix(20))")
        #expect(methods.count >= 90)
        for (name, host) in hosts {
            let health = try await host.client().unary(Calltrace_Ops_V1_HealthService.check, .init(), options: .init(timeout: .seconds(10)))
            #expect(health.status == .serving, "\(name) no longer serves")
        }
    }

    /// Sends one request's bytes to `method`, whatever its kind; the status it ends with (nil:
    /// the call ended without one, as when the connection broke).
    static func send(_ method: ProtoCatalogue.Method, _ bytes: Data, to host: InProcessService, as caller: String,
                     token: String) async -> StatusCode? {
        await code {
            let client = try host.client(identity: caller)
            var options = try bearer(token)
            options.timeout = .seconds(60)
            let request = try Google_Protobuf_Empty(serializedBytes: bytes)  // unknown fields kept, sent as they are
            let descriptor = MethodDescriptor<Google_Protobuf_Empty, Google_Protobuf_Empty>(
                service: method.service, name: method.name, kind: method.kind, isIdempotent: false)
            switch method.kind {
            case .unary:
                _ = try await client.unary(descriptor, request, options: options)
            case .serverStreaming:
                try await client.serverStreaming(descriptor, request, options: options) { responses in
                    for try await _ in responses {}
                }
            case .clientStreaming, .bidirectionalStreaming:
                _ = try await client.clientStreaming(descriptor, options: options) { writer in
                    try await writer.send(request)
                    try await writer.send(request)
                }
            }
        }
    }
}

/// The services, methods and messages of `proto/`, read from protoc's descriptor set, and the
/// hostile requests made from them as raw protobuf bytes.
struct ProtoCatalogue {
    struct Method {
        let service: String
        let name: String
        let input: String
        let kind: MethodKind
        var fullName: String { "/\(service)/\(name)" }
        /// Which of the four serve it: its package's service, or all four for `ops`.
        var hostingServices: [String] {
            let package = service.split(separator: ".").dropFirst().first.map(String.init) ?? ""
            return package == "ops" ? ["identity", "media", "transcript", "compliance"] : [package]
        }
        /// 0 reads, 1 other changes, 2 what ends sessions, users or the firm's data.
        var risk: Int {
            let ending = ["Delete", "Purge", "Erase", "Remove", "Revoke", "Suspend", "Offboard", "Logout", "SecurityPolicy",
                          "ResetTwoFactor", "ChangeUserRole", "Release", "Close", "Confirm", "Redact", "Export"]
            if ending.contains(where: { name.contains($0) }) { return 2 }
            return ["Get", "List", "Play", "Open", "Find", "Verify", "Check", "Locate", "Download", "Attribution"]
                .contains(where: { name.hasPrefix($0) }) ? 0 : 1
        }
    }

    let methods: [Method]
    let messages: [String: Google_Protobuf_DescriptorProto]

    static func load() async throws -> ProtoCatalogue {
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
                    methods.append(Method(service: "\(file.package).\(service.name)", name: method.name, input: method.inputType, kind: MethodKind(method)))
                }
            }
        }
        return ProtoCatalogue(methods: methods, messages: messages)
    }

    /// One field's value on the wire.
    enum Value {
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
    func hostileRequests(for messageName: String, seeds: [String: String]) -> [Data] {
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
