import CallTraceProto
import CallTraceTestSupport
import Foundation
import SwiftProtobuf
import Testing

/// The method tables compiled into the code must be exactly the `service` blocks of proto/.
@Suite("Method tables match proto/")
struct MethodTableTests {
    @Test("Every method in proto/ is in the generated table with its kind and idempotency, nothing else; RPC types and enums follow the style")
    func tablesMatchSchema() async throws {
        let set = try await protoDescriptorSet()

        var fromSchema: [String: MethodInfo] = [:]
        for file in set.file {
            for service in file.service {
                for method in service.method {
                    let kind = MethodKind(method)
                    let level = method.options.idempotencyLevel
                    let info = MethodInfo(service: "\(file.package).\(service.name)", name: method.name, kind: kind,
                                          isIdempotent: level == .idempotent || level == .noSideEffects)
                    fromSchema[info.fullName] = info
                    // House style: each RPC has its own <Rpc>Request / <Rpc>Response.
                    #expect(method.inputType == ".\(file.package).\(method.name)Request", "\(info.fullName) request type")
                    #expect(method.outputType == ".\(file.package).\(method.name)Response", "\(info.fullName) response type")
                }
            }
            for enumeration in file.enumType {
                #expect(enumeration.value.first?.number == 0)
                #expect(enumeration.value.first?.name.hasSuffix("_UNSPECIFIED") == true, "\(enumeration.name) zero value")
            }
        }
        var compiled: [String: MethodInfo] = [:]
        for service in ProtoServices.all {
            for method in service.methods { compiled[method.fullName] = method }
        }
        #expect(compiled == fromSchema)
        #expect(compiled["/calltrace.ops.v1.HealthService/Check"]?.isIdempotent == true)
        #expect(compiled["/calltrace.testing.v1.EchoService/Upload"]?.kind == .clientStreaming)
    }

    @Test("Every proto lives at proto/calltrace/<svc>/v1 with package calltrace.<svc>.v1, no proto3 optional, services end in Service")
    func protoStyle() async throws {
        let protoRoot = repositoryRoot.appendingPathComponent("proto")
        let files = try FileManager.default.subpathsOfDirectory(atPath: protoRoot.path).filter { $0.hasSuffix(".proto") }
        for file in files {
            let text = try String(contentsOf: protoRoot.appendingPathComponent(file), encoding: .utf8)
            let parts = file.split(separator: "/")
            #expect(parts.count == 4 && parts[0] == "calltrace" && parts[2] == "v1", "\(file) is not proto/calltrace/<svc>/v1/")
            #expect(text.contains("package calltrace.\(parts[1]).v1;"), "\(file) has the wrong package")
            #expect(!text.contains("optional "), "\(file) uses proto3 optional, which protoc-c 1.4.1 rejects")
        }
        for service in ProtoServices.all {
            #expect(service.name.hasSuffix("Service"))
        }
    }
}

@Suite("Typed clients and handler protocols match proto/")
struct GeneratedServicesTests {
    @Test("Sources/CallTraceAPI/Generated/Services.swift is what calltrace-protogen --services makes of proto/ today")
    func servicesAreCurrent() async throws {
        let protoRoot = repositoryRoot.appendingPathComponent("proto")
        let files = try FileManager.default.subpathsOfDirectory(atPath: protoRoot.path).filter { $0.hasSuffix(".proto") }.sorted()
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("descriptors-\(UUID().uuidString).pb")
        defer { try? FileManager.default.removeItem(at: output) }
        let protoc = try await run("/usr/bin/protoc", ["-I", protoRoot.path, "--include_source_info", "--descriptor_set_out=\(output.path)"]
                                   + files.map { protoRoot.appendingPathComponent($0).path.replacingOccurrences(of: protoRoot.path + "/", with: "") })
        try #require(protoc.status == 0, "protoc failed: \(protoc.stderr)")
        let generated = try await run(productsDirectory.appendingPathComponent("calltrace-protogen").path, ["--services"],
                                      input: try Data(contentsOf: output))
        try #require(generated.status == 0, "\(generated.stderr)")
        let committed = try String(contentsOf: repositoryRoot.appendingPathComponent("Sources/CallTraceAPI/Generated/Services.swift"), encoding: .utf8)
        #expect(generated.stdout == committed, "run `make proto` and commit the result")
    }

    @Test("Every method of every service declares its access (proto/calltrace/rpc/v1/options.proto): a permission on a request with org_id, or why not")
    func everyMethodDeclaresItsAccess() async throws {
        let set = try await protoDescriptorSet()
        let requests = Dictionary(set.file.flatMap { file in file.messageType.map { (".\(file.package).\($0.name)", $0) } }) { first, _ in first }
        var methods = 0
        for file in set.file {
            for service in file.service {
                for method in service.method {
                    methods += 1
                    let name = "\(service.name)/\(method.name)"
                    let bytes: [UInt8] = try method.options.serializedBytes()
                    let options = try Google_Protobuf_MethodOptions(serializedBytes: bytes, extensions: Calltrace_Rpc_V1_Options_Extensions)
                    #expect(options.hasCalltrace_Rpc_V1_access, "\(name) declares no access")
                    let access = options.Calltrace_Rpc_V1_access
                    switch access.rule {
                    case .user(let permission)?, .userOrService(let permission)?:
                        #expect(permission != .unspecified, "\(name) names no permission")
                        #expect(!method.clientStreaming, "\(name): a client stream's organisation is not in a request the route check can read")
                        #expect(requests[method.inputType]?.field.contains { $0.name == "org_id" && $0.type == .string } == true, "\(name) has no org_id")
                    case .some(.inHandler), .some(.none):
                        #expect(!access.why.isEmpty, "\(name) says not why")
                    case nil:
                        Issue.record("\(name) names no rule")
                    }
                }
            }
        }
        #expect(methods > 100)
    }

    @Test("calltrace-protogen refuses a method that declares no access, naming it, and writes nothing")
    func generatorRefusesUndeclaredAccess() async throws {
        var set = try await protoDescriptorSet()
        let file = try #require(set.file.firstIndex { $0.package == "calltrace.media.v1" })
        let method = try #require(set.file[file].service[0].method.firstIndex { $0.name == "DeleteRecording" })
        set.file[file].service[0].method[method].options = Google_Protobuf_MethodOptions()
        let generated = try await run(productsDirectory.appendingPathComponent("calltrace-protogen").path, ["--services"],
                                      input: try set.serializedBytes() as Data)
        #expect(generated.status != 0 && generated.stdout.isEmpty)
        #expect(generated.stderr.contains("calltrace.media.v1.RecordingService/DeleteRecording declares no access"))
    }
}
