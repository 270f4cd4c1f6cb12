public import CallTraceOutbound
public import CallTraceS3
import Foundation

/// A throw-away S3-compatible server for the suite: moto's server (PyPI `moto[server]`, pinned;
/// `make s3-emulator` installs it in a venv under .build, and `make test` does) on 127.0.0.1,
/// over TLS with a certificate of `pki`'s CA for `localhost`.
///
/// It checks signatures: started with `INITIAL_NO_AUTH_ACTION_COUNT=3`, it lets three requests
/// in unsigned — creating an IAM user, its access key and a policy allowing it S3 — and from then
/// on refuses any request not signed (SigV4) with that key's secret. What it does not check is
/// the body against `x-amz-content-sha256` (AWS does); the suite says so where it matters.
public final class TemporaryS3: Sendable {
    public static let server = repositoryRoot.appendingPathComponent(".build/s3-emulator/bin/moto_server").path
    public let endpoint: String
    public let accessKeyID: String
    public let secretKey: String
    /// The secret key in a file (mode 0600), as `S3Location` reads it.
    public let secretKeyFile: String
    public let caFile: String
    private let process: RunningProcess

    /// Starts the server and makes the user and its key: about two seconds.
    public init(pki: TemporaryPKI) async throws {
        guard FileManager.default.isExecutableFile(atPath: Self.server) else {
            throw S3HarnessError("the S3 emulator is not installed: run `make s3-emulator` (make test does)")
        }
        let credentials = try pki.credentials(for: TemporaryPKI.identity("service", "s3"))
        var environment = ProcessInfo.processInfo.environment
        environment["INITIAL_NO_AUTH_ACTION_COUNT"] = "3"
        var started: (RunningProcess, Int)?
        for _ in 0..<5 where started == nil {
            let port = try freePort()
            let process = try RunningProcess(path: Self.server, ["-H", "127.0.0.1", "-p", "\(port)", "-c", credentials.certificateChainPath,
                                                                 "-k", credentials.privateKeyPath], environment: environment, input: nil)
            if await process.waitForOutput(containing: "Running on") { started = (process, port) } else { process.signal(SIGKILL) }
        }
        guard let (process, port) = started else { throw S3HarnessError("the S3 emulator did not start") }
        self.process = process
        endpoint = "https://localhost:\(port)"
        caFile = pki.caPath
        do {
            let iam = { (form: String) throws -> Data in
                var request = HTTPSRequest(url: "https://localhost:\(port)/", headers: [("Content-Type", "application/x-www-form-urlencoded")],
                                           body: Data((form + "&Version=2010-05-08").utf8))
                // Unsigned requests would go to S3: the emulator routes by the credential's service.
                request.awsSigV4 = AWSSigV4(region: "us-east-1", service: "iam", accessKeyID: "x", secretKey: "unused")
                let response = try CurlHTTPS(caFile: pki.caPath).perform(request)
                guard response.status == 200 else { throw S3HarnessError("IAM answered \(response.status): \(String(decoding: response.body, as: UTF8.self))") }
                return response.body
            }
            _ = try iam("Action=CreateUser&UserName=calltrace")
            let key = try iam("Action=CreateAccessKey&UserName=calltrace")
            accessKeyID = try Self.text("AccessKeyId", in: key)
            secretKey = try Self.text("SecretAccessKey", in: key)
            let policy = #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#
            _ = try iam("Action=PutUserPolicy&UserName=calltrace&PolicyName=s3&PolicyDocument="
                        + (policy.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""))
        } catch {
            process.signal(SIGKILL)
            throw error
        }
        secretKeyFile = pki.directory.appendingPathComponent("s3-secret-\(UUID().uuidString)").path
        guard FileManager.default.createFile(atPath: secretKeyFile, contents: Data("\(secretKey)\n".utf8), attributes: [.posixPermissions: 0o600]) else {
            process.signal(SIGKILL)
            throw S3HarnessError("cannot write \(secretKeyFile)")
        }
    }

    /// A location in a new bucket of this server (created), under `prefix`.
    public func newBucket(prefix: String = "", region: String = "eu-west-2") throws -> S3Client {
        let bucket = "calltrace-" + UUID().uuidString.lowercased().prefix(8)
        let client = S3Client(location: try S3Location(endpoint: endpoint, bucket: bucket, prefix: prefix, region: region,
                                                      accessKeyID: accessKeyID, secretKeyFile: secretKeyFile, caFile: caFile))
        try client.createBucket()
        return client
    }

    /// Ends the server (what it held was in its memory only).
    public func stop() {
        process.signal(SIGKILL)
    }

    private static func text(_ tag: String, in xml: Data) throws -> String {
        let text = String(decoding: xml, as: UTF8.self)
        guard let open = text.range(of: "<\(tag)>"), let close = text.range(of: "</\(tag)>", range: open.upperBound..<text.endIndex) else {
            throw S3HarnessError("IAM's answer has no \(tag)")
        }
        return String(text[open.upperBound..<close.lowerBound])
    }
}

/// Runs `body` with a new server, stopped afterwards whatever `body` does.
public func withTemporaryS3<T>(pki: TemporaryPKI, _ body: (TemporaryS3) async throws -> T) async throws -> T {
    let server = try await TemporaryS3(pki: pki)
    defer { server.stop() }
    return try await body(server)
}

public struct S3HarnessError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
