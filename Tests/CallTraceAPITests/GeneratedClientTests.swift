import CallTraceAPI
import CallTraceProto
import CallTraceRPC
import CallTraceSync
import CallTraceTestSupport
import Foundation
import Logging
import Testing

/// The generated handler protocol of the test service, implemented here: each method answers
/// from what it was given, so a reply shows which method ran and what reached it.
final class EchoHandler: Calltrace_Testing_V1_EchoServiceHandler {
    /// A different peer policy per method, to show each is applied to its own method.
    let policies = Calltrace_Testing_V1_EchoServicePolicies(echo: .gateways, upload: .service("media"), download: .gateways | .operators,
                                                            record: .operators)
    private let seen = Locked<[String: UInt64]>([:])

    func echo(_ request: Calltrace_Testing_V1_EchoRequest, context: ServerContext) async throws -> Calltrace_Testing_V1_EchoResponse {
        if request.failWithCode != 0 { throw RPCError(StatusCode(wireValue: request.failWithCode), "failing as asked: \(request.tag)") }
        return .with {
            $0.payload = Data(request.payload.reversed())
            $0.callerIdentity = context.peer.uri
            $0.echoedMetadata = context.metadata["x-echo"] ?? ""
        }
    }

    func upload(_ requests: RequestStream<Calltrace_Testing_V1_UploadRequest>, context: ServerContext) async throws -> Calltrace_Testing_V1_UploadResponse {
        var response = Calltrace_Testing_V1_UploadResponse()
        for try await request in requests {
            response.receivedMessages += 1
            response.receivedBytes += UInt64(request.chunk.count)
            response.checksum = request.chunk.reduce(response.checksum) { $0 &* 31 &+ UInt64($1) }
        }
        return response
    }

    func download(_ request: Calltrace_Testing_V1_DownloadRequest, responses: ResponseWriter<Calltrace_Testing_V1_DownloadResponse>,
                  context: ServerContext) async throws {
        for n in 0..<request.chunkCount {
            try await responses.send(.with { $0.chunk = Data(repeating: UInt8(truncatingIfNeeded: n), count: Int(request.chunkSizeBytes)) })
        }
    }

    func record(_ request: Calltrace_Testing_V1_RecordRequest, context: ServerContext) async throws -> Calltrace_Testing_V1_RecordResponse {
        let times = seen.withLock { seen in
            seen[request.tag, default: 0] += 1
            return seen[request.tag]!
        }
        return .with { $0.timesSeen = times }
    }
}

/// A server of `handlers` over mutual TLS on a free port, as `identity`, with clients for any peer.
final class HandlerServer: @unchecked Sendable {
    let pki: TemporaryPKI
    let server: RPCServer
    let identity: String

    init(_ handlers: [any RPCService], identity: String = TemporaryPKI.identity("service", "media"), pki: TemporaryPKI? = nil) throws {
        self.pki = try pki ?? TemporaryPKI()
        self.identity = identity
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        server = try RPCServer(configuration: .init(credentials: try self.pki.credentials(for: identity), info: .init(serviceName: "test", version: "1")),
                               services: handlers, logger: logger)
    }

    deinit { server.stop() }

    func client(_ peer: String) throws -> RPCClient {
        try RPCClient(target: .init(host: "127.0.0.1", port: server.port, identity: identity), configuration: .init(credentials: try pki.credentials(for: peer)))
    }
}

@Suite("API: generated typed clients and handler protocols over real TLS")
struct GeneratedClientTests {
    static let web = TemporaryPKI.identity("gateway", "web")

    @Test("Unary, client-streaming and server-streaming calls reach the handler method of their name, and its answer comes back typed")
    func eachKindOfCall() async throws {
        let fixture = try HandlerServer([EchoHandler()])
        let gateway = Calltrace_Testing_V1_EchoServiceClient(try fixture.client(Self.web))
        let echoed = try await gateway.echo(.with { $0.payload = Data([1, 2, 3]) }, options: .init(metadata: try Metadata(["x-echo": "from the test"])))
        #expect(echoed.payload == Data([3, 2, 1]) && echoed.callerIdentity == Self.web && echoed.echoedMetadata == "from the test")

        let chunks = try await gateway.download(.with { $0.chunkCount = 5; $0.chunkSizeBytes = 100_000 }) { stream in
            var chunks: [Data] = []
            for try await piece in stream { chunks.append(piece.chunk) }
            return chunks
        }
        #expect(chunks == (0..<5).map { Data(repeating: UInt8($0), count: 100_000) })

        let media = Calltrace_Testing_V1_EchoServiceClient(try fixture.client(TemporaryPKI.identity("service", "media")))
        let pieces = (0..<40).map { n in Data((0..<(n * 997 % 65_536)).map { UInt8(truncatingIfNeeded: $0 &+ n) }) }
        let uploaded = try await media.upload { writer in
            for piece in pieces { try await writer.send(.with { $0.chunk = piece }) }
        }
        #expect(uploaded.receivedMessages == 40 && uploaded.receivedBytes == UInt64(pieces.reduce(0) { $0 + $1.count }))
        #expect(uploaded.checksum == pieces.joined().reduce(UInt64(0)) { $0 &* 31 &+ UInt64($1) })

        let ops = Calltrace_Testing_V1_EchoServiceClient(try fixture.client(TemporaryPKI.identity("operator", "ops")))
        #expect(try await ops.record(.with { $0.tag = "a" }).timesSeen == 1)
        #expect(try await ops.record(.with { $0.tag = "a" }).timesSeen == 2)
    }

    @Test("Each method admits only the peers its policy names, before the handler runs")
    func policiesPerMethod() async throws {
        let handler = EchoHandler()
        let fixture = try HandlerServer([handler])
        func client(_ kind: String, _ name: String) throws -> Calltrace_Testing_V1_EchoServiceClient {
            .init(try fixture.client(TemporaryPKI.identity(kind, name)))
        }
        // (peer, echo, upload, download, record)
        let table: [(String, String, [StatusCode])] = [
            ("gateway", "web", [.ok, .permissionDenied, .ok, .permissionDenied]),
            ("service", "media", [.permissionDenied, .ok, .permissionDenied, .permissionDenied]),
            ("service", "transcript", [.permissionDenied, .permissionDenied, .permissionDenied, .permissionDenied]),
            ("operator", "ops", [.permissionDenied, .permissionDenied, .ok, .ok]),
        ]
        for (kind, name, expected) in table {
            let echo = try client(kind, name)
            let got = [
                await code { _ = try await echo.echo(.init()) },
                await code { _ = try await echo.upload { try await $0.send(.with { $0.chunk = Data([1]) }) } },
                await code { try await echo.download(.with { $0.chunkCount = 1; $0.chunkSizeBytes = 1 }) { for try await _ in $0 {} } },
                await code { _ = try await echo.record(.with { $0.tag = "\(kind)/\(name)" }) },
            ]
            #expect(got == expected, "\(kind)/\(name)")
        }
        // Only the operator's record call ran: the refused ones never reached the handler.
        let ops = try client("operator", "ops")
        #expect(try await ops.record(.with { $0.tag = "gateway/web" }).timesSeen == 1)
        #expect(try await ops.record(.with { $0.tag = "operator/ops" }).timesSeen == 2)
    }

    @Test("A handler's RPCError reaches the typed client with its code and message")
    func errorsTravel() async throws {
        let fixture = try HandlerServer([EchoHandler()])
        let gateway = Calltrace_Testing_V1_EchoServiceClient(try fixture.client(Self.web))
        for status in [StatusCode.notFound, .failedPrecondition, .resourceExhausted] {
            let error = await #expect(throws: RPCError.self) { _ = try await gateway.echo(.with { $0.failWithCode = status.rawValue; $0.tag = "t7" }) }
            #expect(error?.code == status && error?.message == "failing as asked: t7")
        }
    }
}

/// A small implementation of a real service's generated protocol: tracking numbers in memory.
final class TrackingNumbers: Calltrace_Transcript_V1_TrackingNumberServiceHandler {
    let policies: Calltrace_Transcript_V1_TrackingNumberServicePolicies
    let authorizer: any Authorizing
    private let numbers = Locked<[String: Calltrace_Transcript_V1_TrackingNumber]>([:])
    /// The principal of each call that reached a method.
    let reached = Locked<[String]>([])

    /// - Parameter listing: who may list the numbers.
    init(authorizer: any Authorizing = EveryoneMay(), listing: PeerPolicy = .gateways | .operators) {
        self.authorizer = authorizer
        policies = .init(assignTrackingNumber: .gateways, releaseTrackingNumber: .gateways, listTrackingNumbers: listing, setRouting: .gateways)
    }

    func assignTrackingNumber(_ request: Calltrace_Transcript_V1_AssignTrackingNumberRequest, principal: Principal, context: ServerContext) async throws
        -> Calltrace_Transcript_V1_AssignTrackingNumberResponse {
        reached.withLock { $0.append(principal.actor) }
        guard !request.number.isEmpty else { throw RPCError(.invalidArgument, "name the number") }
        let assigned = Calltrace_Transcript_V1_TrackingNumber.with {
            $0.number = request.number; $0.orgID = request.orgID; $0.source = request.source; $0.channel = request.channel
        }
        try numbers.withLock { numbers in
            guard numbers[request.number] == nil else { throw RPCError(.alreadyExists, "\(request.number) is assigned") }
            numbers[request.number] = assigned
        }
        return .with { $0.trackingNumber = assigned }
    }

    func releaseTrackingNumber(_ request: Calltrace_Transcript_V1_ReleaseTrackingNumberRequest, principal: Principal, context: ServerContext) async throws
        -> Calltrace_Transcript_V1_ReleaseTrackingNumberResponse {
        reached.withLock { $0.append(principal.actor) }
        guard numbers.withLock({ $0.removeValue(forKey: request.number) }) != nil else { throw RPCError(.notFound, "\(request.number) is not assigned") }
        return .init()
    }

    func listTrackingNumbers(_ request: Calltrace_Transcript_V1_ListTrackingNumbersRequest, principal: Principal, context: ServerContext) async throws
        -> Calltrace_Transcript_V1_ListTrackingNumbersResponse {
        reached.withLock { $0.append(principal.actor) }
        return .with { $0.trackingNumbers = numbers.withLock { $0.values.filter { $0.orgID == request.orgID }.sorted { $0.number < $1.number } } }
    }

    func setRouting(_ request: Calltrace_Transcript_V1_SetRoutingRequest, principal: Principal, context: ServerContext) async throws -> Calltrace_Transcript_V1_SetRoutingResponse {
        reached.withLock { $0.append(principal.actor) }
        let routed = try numbers.withLock { numbers in
            guard numbers[request.number] != nil else { throw RPCError(.notFound, "\(request.number) is not assigned") }
            numbers[request.number]?.routing = request.routing
            return numbers[request.number]!
        }
        return .with { $0.trackingNumber = routed }
    }
}

/// Lets every caller in as one admin, without asking anyone: for tests of what the handler does.
struct EveryoneMay: Authorizing {
    static let admin = Principal(org: "org_1", acting: .user(id: "u_admin", role: .admin))

    func authorizeUser(token: String, org: String, permission: Calltrace_Identity_V1_Permission,
                       gateway: String, clientAddress: String?) async throws -> Principal { Self.admin }
    func authorizeOperator(name: String, org: String, permission: Calltrace_Identity_V1_Permission) async throws -> Principal { Self.admin }
    func principal(of context: ServerContext, in org: String, may permission: Calltrace_Identity_V1_Permission) async throws -> Principal { Self.admin }
    func actor(of context: ServerContext, in org: String, may permission: Calltrace_Identity_V1_Permission) async throws -> String { Self.admin.actor }
}

@Suite("API: a service's typed client, and CallTraceConnections reaching it")
struct ServiceClientTests {
    @Test("Transcript's TrackingNumberService client drives an implementation of its generated protocol: messages, enums and errors as declared")
    func trackingNumbers() async throws {
        let fixture = try HandlerServer([TrackingNumbers()], identity: TemporaryPKI.identity("service", "transcript"))
        let client = Calltrace_Transcript_V1_TrackingNumberServiceClient(try fixture.client(TemporaryPKI.identity("gateway", "web")))
        let assigned = try await client.assignTrackingNumber(.with {
            $0.orgID = "org_1"; $0.number = "01184960000"; $0.source = "Google Ads"; $0.channel = .googleAds
        }).trackingNumber
        #expect(assigned.number == "01184960000" && assigned.channel == .googleAds && assigned.source == "Google Ads")
        _ = try await client.assignTrackingNumber(.with { $0.orgID = "org_1"; $0.number = "01184960001"; $0.channel = .directory })
        _ = try await client.assignTrackingNumber(.with { $0.orgID = "org_2"; $0.number = "01184960002" })
        #expect(await code { _ = try await client.assignTrackingNumber(.with { $0.orgID = "org_1"; $0.number = "01184960000" }) } == .alreadyExists)
        let listed = try await client.listTrackingNumbers(.with { $0.orgID = "org_1" }).trackingNumbers
        #expect(listed.map(\.number) == ["01184960000", "01184960001"] && listed.map(\.channel) == [.googleAds, .directory])
        _ = try await client.releaseTrackingNumber(.with { $0.orgID = "org_1"; $0.number = "01184960000" })
        #expect(await code { _ = try await client.releaseTrackingNumber(.with { $0.orgID = "org_1"; $0.number = "01184960000" }) } == .notFound)
        let service = Calltrace_Transcript_V1_TrackingNumberServiceClient(try fixture.client(TemporaryPKI.identity("service", "media")))
        #expect(await code { _ = try await service.listTrackingNumbers(.with { $0.orgID = "org_1" }) } == .permissionDenied)
    }

    @Test("CallTraceConnections reaches each service at its address as that service's identity, and refuses a server that is another")
    func connections() async throws {
        let pki = try TemporaryPKI()
        let transcript = try HandlerServer([TrackingNumbers()], identity: TemporaryPKI.identity("service", "transcript"), pki: pki)
        let impostor = try HandlerServer([TrackingNumbers()], identity: TemporaryPKI.identity("service", "media"), pki: pki)
        let credentials = try pki.credentials(for: TemporaryPKI.identity("gateway", "crm"))
        let settings = CallTraceConnections.Settings(certificate: credentials.certificateChainPath, privateKey: credentials.privateKeyPath,
                                                     ca: credentials.trustRootsPath, trustDomain: TemporaryPKI.trustDomain,
                                                     services: ["transcript": "127.0.0.1:\(transcript.server.port)",
                                                                "compliance": "127.0.0.1:\(impostor.server.port)"])
        let connections = try CallTraceConnections(settings)
        defer { connections.close() }
        let numbers = Calltrace_Transcript_V1_TrackingNumberServiceClient(connections.transcript)
        _ = try await numbers.assignTrackingNumber(.with { $0.orgID = "org_1"; $0.number = "01184960000" })
        #expect(try await numbers.listTrackingNumbers(.with { $0.orgID = "org_1" }).trackingNumbers.count == 1)

        // Compliance's address answers as media: the client will not talk to it.
        let error = await #expect(throws: RPCError.self) {
            _ = try await connections.compliance.unary(Calltrace_Ops_V1_HealthService.check, .init(), options: .init(timeout: .seconds(20)))
        }
        #expect(error?.code == .unavailable, "\(error?.message ?? "")")
        #expect(error?.message.contains("server identity is \(TemporaryPKI.identity("service", "media")), expected \(TemporaryPKI.identity("service", "compliance"))") == true,
                "\(error?.message ?? "")")
    }
}
