import CallTraceRPC
import Foundation
import Testing

/// The Connect protocol's wire details, as the web gateway's relay and the CLI both read them.
@Suite struct ConnectWireTests {
    @Test func everyStatusCodeHasAConnectNameThatReadsBack() {
        for code in StatusCode.allCases where code != .ok {
            let name = ConnectWire.name(of: code)
            #expect(name != nil && ConnectWire.code(named: name!) == code, "\(code)")
        }
        #expect(ConnectWire.code(named: "no_such_code") == .unknown)
        #expect(ConnectWire.httpStatus(of: .notFound) == 404 && ConnectWire.httpStatus(of: .unauthenticated) == 401
                && ConnectWire.httpStatus(of: .resourceExhausted) == 429 && ConnectWire.httpStatus(of: .unimplemented) == 501)
    }

    @Test func errorsReadBackFromTheirJSONOrFromTheHTTPStatus() {
        let error = ConnectWire.error(fromJSON: ConnectWire.errorJSON(RPCError(.permissionDenied, "role member lacks users.manage")), httpStatus: 403)
        #expect(error.code == .permissionDenied && error.message == "role member lacks users.manage")
        // A proxy's own page: the status says what it can.
        #expect(ConnectWire.error(fromJSON: Data("<html>Bad Gateway</html>".utf8), httpStatus: 502).code == .unavailable)
        #expect(ConnectWire.error(fromEndOfStream: Data("{}".utf8)) == nil)
        let ended = ConnectWire.endOfStream(RPCError(.notFound, "no such recording"))
        var reader = ConnectWire.EnvelopeReader(limit: 1024)
        reader.append(ended)
        let (flags, message) = try! #require(try reader.next())
        #expect(flags == ConnectWire.endStreamFlag && ConnectWire.error(fromEndOfStream: message)?.code == .notFound)
    }

    @Test func envelopesAreReadAcrossAnySplitOfTheBytes() throws {
        let messages = (0..<50).map { Data(repeating: UInt8($0), count: $0 * 37) }
        let stream = messages.reduce(Data()) { $0 + ConnectWire.envelope($1) } + ConnectWire.endOfStream(nil)
        for piece in [1, 3, 5, 64, 4096] {
            var reader = ConnectWire.EnvelopeReader(limit: 1 << 16)
            var read: [Data] = []
            var ended = false
            var offset = 0
            while offset < stream.count {
                reader.append(stream[offset..<min(offset + piece, stream.count)])
                offset += piece
                while let (flags, message) = try reader.next() {
                    if flags & ConnectWire.endStreamFlag != 0 { ended = true } else { read.append(message) }
                }
            }
            #expect(read == messages && ended && reader.isEmpty, "pieces of \(piece)")
        }
        // A length past the limit is refused before its bytes arrive.
        var reader = ConnectWire.EnvelopeReader(limit: 10)
        reader.append(Data([0, 0, 0, 0, 11]))
        #expect(throws: RPCError.self) { try reader.next() }
    }
}
