@testable import CallTraceS3
import CallTraceOutbound
import CallTraceTestSupport
import Foundation
import Testing

/// The adapter's requests as they leave libcurl, signed, checked against AWS's published SigV4
/// test vectors: the signature is libcurl's, and what it signs (the URL's canonical query, the
/// headers, the date) is the adapter's. Each request goes to a local server (the vector's host
/// kept in the Host header, which libcurl signs), and the Authorization it carries must be the
/// vector's to the last hex digit.
@Suite("S3: requests signed as AWS's SigV4 test vectors say")
struct SigV4VectorTests {
    /// The credentials of AWS's signature test suite (aws-sig-v4-test-suite).
    static let suite = AWSSigV4(region: "us-east-1", service: "service", accessKeyID: "AKIDEXAMPLE",
                                secretKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    static let suiteScope = "Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request"

    /// A local server that keeps what it is sent, and a transport sending there whatever host the
    /// request names (the name kept in the Host header).
    static func capture(answer: FakeHTTPSServer.Response = .init(body: Data())) throws -> (FakeHTTPSServer, S3Client.Transport) {
        try capture { _ in answer }
    }

    static func capture(_ respond: @escaping @Sendable (FakeHTTPSServer.Request) -> FakeHTTPSServer.Response) throws -> (FakeHTTPSServer, S3Client.Transport) {
        let pki = try TemporaryPKI()  // kept by the transport: its folder holds the CA file
        let server = try FakeHTTPSServer(credentials: try pki.credentials(for: TemporaryPKI.identity("service", "s3")), respond: respond)
        let caFile = pki.caPath, port = server.port
        let transport: S3Client.Transport = { request, limit in
            _ = pki
            var sent = request
            let url = try #require(URLComponents(string: request.url))
            sent.url = "https://localhost:\(port)\(url.percentEncodedPath)\(url.percentEncodedQuery.map { "?\($0)" } ?? "")"
            sent.headers.append(("Host", url.host! + (url.port.map { ":\($0)" } ?? "")))
            return try CurlHTTPS(caFile: caFile, maxResponseBytes: limit).perform(sent)
        }
        return (server, transport)
    }

    @Test("get-vanilla, get-vanilla-query-order-key-case (the query sorted by the adapter) and post-vanilla: libcurl's Authorization is the suite's")
    func suiteVectors() throws {
        let (server, transport) = try Self.capture()
        defer { server.stop() }
        let vectors: [(name: String, method: String, query: [(String, String)], signature: String)] = [
            ("get-vanilla", "GET", [], "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
            ("get-vanilla-query-order-key-case", "GET", [("Param2", "value2"), ("Param1", "value1")],
             "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
            ("post-vanilla", "POST", [], "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
        ]
        for vector in vectors {
            let query = vector.query.isEmpty ? "" : "?" + S3Location.canonicalQuery(vector.query)
            var request = HTTPSRequest(url: "https://example.amazonaws.com/\(query)", headers: [("X-Amz-Date", "20150830T123600Z")], body: Data())
            request.method = vector.method
            request.awsSigV4 = Self.suite
            _ = try transport(request, 1 << 20)
            let sent = try #require(server.requests.last)
            #expect(sent.method == vector.method && sent.target == "/\(query)", "\(vector.name)")
            #expect(sent.headers["authorization"] == "AWS4-HMAC-SHA256 \(Self.suiteScope), SignedHeaders=host;x-amz-date, Signature=\(vector.signature)",
                    "\(vector.name)")
        }
    }

    @Test("S3's documented GetObject example (a range of examplebucket/test.txt, 24 May 2013): the client's request is signed as AWS's page says")
    func getObjectExample() throws {
        let (server, transport) = try Self.capture(answer: .init(status: 206, headers: ["Content-Range": "bytes 0-9/100"], body: Data("0123456789".utf8)))
        defer { server.stop() }
        let location = try S3Location(endpoint: "https://s3.amazonaws.com", bucket: "examplebucket", region: "us-east-1",
                                      accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                                      addressing: .virtualHosted)
        let client = S3Client(location: location, transport: transport, signingClock: { Date(timeIntervalSince1970: 1_369_353_600) })
        #expect(try client.getObject("test.txt", offset: 0, length: 10) == Data("0123456789".utf8))
        let sent = try #require(server.requests.last)
        #expect(sent.method == "GET" && sent.target == "/test.txt" && sent.headers["host"] == "examplebucket.s3.amazonaws.com")
        #expect(sent.headers["range"] == "bytes=0-9" && sent.headers["x-amz-date"] == "20130524T000000Z")
        #expect(sent.headers["x-amz-content-sha256"] == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(sent.headers["authorization"] == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
                + "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
    }

    @Test("A body's SHA-256 is what x-amz-content-sha256 says, and the query is canonical: names and values encoded as SigV4 asks, sorted")
    func bodyDigestAndQuery() throws {
        let (server, transport) = try Self.capture(answer: .init(headers: ["ETag": "\"e1\""], body: Data()))
        defer { server.stop() }
        let location = try S3Location(endpoint: "https://store.example:9000", bucket: "recordings", prefix: "media", region: "eu-west-2",
                                      accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretKey: "secret")
        let client = S3Client(location: location, transport: transport)
        #expect(try client.uploadPart("media/rec-1", upload: "a+b/c=", number: 2, Data("hello".utf8)) == "\"e1\"")
        let sent = try #require(server.requests.last)
        #expect(sent.method == "PUT" && sent.target == "/recordings/media/rec-1?partNumber=2&uploadId=a%2Bb%2Fc%3D")
        #expect(sent.headers["host"] == "store.example:9000" && sent.body == Data("hello".utf8))
        #expect(sent.headers["x-amz-content-sha256"] == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
        #expect(sent.headers["authorization"]?.hasPrefix("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/") == true)
        #expect(!(sent.headers["authorization"] ?? "").contains("secret"))
        #expect(S3Location.canonicalQuery([("uploads", ""), ("prefix", "a b~"), ("key-marker", "é")]) == "key-marker=%C3%A9&prefix=a%20b~&uploads=")
    }
}
