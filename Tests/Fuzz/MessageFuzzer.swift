// libFuzzer harness for swift-protobuf's decoding of our messages: the reference `Frame` and the
// requests peers send most (audit batches, logins, authorisation), built by `make fuzz` /
// `make fuzz-smoke` against an instrumented swift-protobuf (not part of the Swift package).
import Foundation
import SwiftProtobuf

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMessages(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Data(bytes: data, count: size)
    _ = try? Calltrace_Rpc_V1_Frame(serializedBytes: bytes)
    _ = try? Calltrace_Compliance_V1_AppendAuditEventsRequest(serializedBytes: bytes)
    _ = try? Calltrace_Identity_V1_LoginRequest(serializedBytes: bytes)
    _ = try? Calltrace_Identity_V1_AuthorizeRequest(serializedBytes: bytes)
    return 0
}
