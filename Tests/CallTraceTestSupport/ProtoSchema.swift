public import CallTraceProto
import Foundation
public import SwiftProtobuf

/// proto/ as protoc reads it: the descriptor set of every .proto file (with `includeImports`,
/// the files they import too), for the tests generated from the schema.
public func protoDescriptorSet(includeImports: Bool = false) async throws -> Google_Protobuf_FileDescriptorSet {
    let protoRoot = repositoryRoot.appendingPathComponent("proto")
    let files = try FileManager.default.subpathsOfDirectory(atPath: protoRoot.path).filter { $0.hasSuffix(".proto") }.sorted()
    let output = FileManager.default.temporaryDirectory.appendingPathComponent("descriptors-\(UUID().uuidString).pb")
    defer { try? FileManager.default.removeItem(at: output) }
    let protoc = try await run("/usr/bin/protoc", ["-I", protoRoot.path, "--descriptor_set_out=\(output.path)"]
                                   + (includeImports ? ["--include_imports"] : []) + files)
    guard protoc.status == 0, !files.isEmpty else { throw CocoaError(.fileReadCorruptFile, userInfo: [NSLocalizedDescriptionKey: "protoc failed: \(protoc.stderr)"]) }
    return try Google_Protobuf_FileDescriptorSet(serializedBytes: try Data(contentsOf: output))
}

extension MethodKind {
    /// The kind a method's streaming flags declare.
    public init(_ method: Google_Protobuf_MethodDescriptorProto) {
        self = switch (method.clientStreaming, method.serverStreaming) {
        case (false, false): .unary
        case (true, false): .clientStreaming
        case (false, true): .serverStreaming
        case (true, true): .bidirectionalStreaming
        }
    }
}
