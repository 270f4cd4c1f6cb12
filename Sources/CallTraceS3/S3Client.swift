import CallTraceKeys
public import CallTraceOutbound
import CallTraceStorage
public import Foundation

/// The S3 operations the blob store needs, each one signed request through libcurl: the
/// signature is libcurl's (`CURLOPT_AWS_SIGV4`, checked against AWS's published test vectors in
/// the suite); this type gives it what it signs — the method, the key's URL with its query
/// already canonical, and the body's SHA-256 in `x-amz-content-sha256`, so the store refuses a
/// body changed on the way. libcurl dates the request (`X-Amz-Date`) by the system clock.
///
/// Calls block their thread (a transfer each): callers run them where blocking is allowed, as
/// they do file I/O (a `BlockingPool`).
public struct S3Client: Sendable {
    /// Sends one request; the second argument is the most bytes the answer may carry.
    public typealias Transport = @Sendable (HTTPSRequest, Int) throws -> HTTPSResponse

    public let location: S3Location
    let transport: Transport
    /// A fixed clock for signatures (AWS's test vectors); nil lets libcurl date each request.
    let signingClock: (@Sendable () -> Date)?
    /// One request's limit, connection included.
    let timeout: Duration

    /// - Parameters:
    ///   - transport: nil for libcurl against the location's endpoint, verified with its CA file.
    ///   - signingClock: dates requests by this clock instead of libcurl's (tests: a vector's
    ///     date). libcurl 7.88 then sends `X-Amz-Date` twice, which a store joins and refuses;
    ///     nil in production (S3 refuses a date 15 minutes off its own, so keep the host's clock set).
    public init(location: S3Location, timeout: Duration = .seconds(60), transport: Transport? = nil,
                signingClock: (@Sendable () -> Date)? = nil) {
        self.location = location
        self.timeout = timeout
        self.signingClock = signingClock
        let caFile = location.caFile
        self.transport = transport ?? { request, limit in try CurlHTTPS(caFile: caFile, maxResponseBytes: limit).perform(request) }
    }

    /// Error answers are read up to this size, for their `<Code>`.
    static let errorBodyLimit = 64 << 10
    static let emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    /// The request for `method` on `key` (nil: the bucket), as sent: URL, headers, signing.
    public func request(_ method: String, key: String?, query: [(String, String)] = [], headers: [(String, String)] = [],
                        body: Data = Data()) throws -> HTTPSRequest {
        let digest = body.isEmpty ? Self.emptySHA256 : try Self.sha256Hex(body)
        // A PUT's or POST's type is given, so it is among the signed headers (libcurl would add
        // a form type of its own, unsigned, and a store that counts it refuses the signature).
        let type = !["PUT", "POST"].contains(method) || headers.contains(where: { $0.0.lowercased() == "content-type" }) ? []
            : [("Content-Type", "application/octet-stream")]
        var request = HTTPSRequest(url: location.url(key: key, query: query),
                                   headers: headers + type + (signingClock.map { [("x-amz-date", Self.amzDate($0()))] } ?? [])
                                       + [("x-amz-content-sha256", digest)],
                                   body: body, timeout: timeout)
        request.method = method
        request.awsSigV4 = AWSSigV4(region: location.region, service: "s3", accessKeyID: location.accessKeyID, secretKey: location.secretKey)
        return request
    }

    /// Sends `request`; an answer outside `expected` is an `S3Error` naming `operation`, the
    /// status and S3's error code. A request that got no answer, or a 500, 502, 503 or 504 (S3's
    /// "slow down" and its passing failures), is sent again, at most `attempts` times in all,
    /// after 0.1 s, then 0.4 s: every request here may be repeated (a second upload begun is a
    /// leftover, abandoned at a later start-up).
    func send(_ request: HTTPSRequest, _ operation: @autoclosure () -> String, expected: Set<Int> = [200], limit: Int = errorBodyLimit) throws -> HTTPSResponse {
        var attempt = 1
        while true {
            let response: HTTPSResponse
            do {
                response = try transport(request, max(limit, Self.errorBodyLimit))
            } catch {
                if attempt < Self.attempts { Self.pause(attempt); attempt += 1; continue }
                throw S3Error("\(operation()): \(error)")
            }
            if [500, 502, 503, 504].contains(response.status) && attempt < Self.attempts { Self.pause(attempt); attempt += 1; continue }
            guard expected.contains(response.status) else { throw Self.failure(operation(), response) }
            return response
        }
    }

    static let attempts = 3
    private static func pause(_ attempt: Int) { usleep(useconds_t(100_000 << (2 * (attempt - 1)))) }

    /// A 404 for want of the object, as S3 says it (not a bucket gone, nor a proxy's page: the
    /// store's failure, not a missing blob).
    static func isNoSuchKey(_ response: HTTPSResponse) -> Bool {
        response.status == 404 && S3XML.texts("Code", in: response.body).first == "NoSuchKey"
    }

    static func failure(_ operation: String, _ response: HTTPSResponse) -> S3Error {
        let code = S3XML.texts("Code", in: response.body).first.map { " \($0)" } ?? ""
        return S3Error("\(operation): the object store answered \(response.status)\(code)")
    }

    // MARK: Objects

    public func putObject(_ key: String, _ body: Data) throws {
        let response = try send(try request("PUT", key: key, body: body), "storing \(key)")
        // A store that stored it says so with the object's ETag; a 200 without one is not trusted.
        guard response.headers["etag"].map({ !$0.isEmpty }) ?? false else { throw S3Error("storing \(key): the object store did not confirm it (no ETag)") }
    }

    /// `length` bytes from `offset`; nil when there is no such object. An object shorter than
    /// the range is a `BlobError` (damage), as a failure to reach the store is not.
    public func getObject(_ key: String, offset: Int64, length: Int) throws -> Data? {
        let range = [("Range", "bytes=\(offset)-\(offset + Int64(length) - 1)")]
        let response = try send(try request("GET", key: key, headers: range), "reading \(key)", expected: [200, 206, 404, 416], limit: length)
        switch response.status {
        case 404:
            guard Self.isNoSuchKey(response) else { throw Self.failure("reading \(key)", response) }
            return nil
        case 416: throw BlobError("blob \(key) is shorter than expected (truncated)")
        default: break
        }
        guard response.body.count == length else { throw BlobError("blob \(key) is shorter than expected (truncated)") }
        return response.body
    }

    /// A small object whole (at most 4 KiB); nil when there is none.
    public func getSmallObject(_ key: String) throws -> Data? {
        let response = try send(try request("GET", key: key), "reading \(key)", expected: [200, 404], limit: 4096)
        if response.status == 404 {
            guard Self.isNoSuchKey(response) else { throw Self.failure("reading \(key)", response) }
            return nil
        }
        return response.body
    }

    /// Whether `key` is there (an empty object included).
    public func exists(_ key: String) throws -> Bool {
        let response = try send(try request("GET", key: key, headers: [("Range", "bytes=0-0")]), "looking for \(key)", expected: [200, 206, 404, 416], limit: 1)
        if response.status == 404 && !Self.isNoSuchKey(response) { throw Self.failure("looking for \(key)", response) }
        return response.status != 404
    }

    /// Removes `key` (S3 answers alike whether it was there or not).
    public func deleteObject(_ key: String) throws {
        _ = try send(try request("DELETE", key: key), "deleting \(key)", expected: [200, 204])
    }

    /// The keys under `prefix`, every page of them.
    public func listKeys(prefix: String) throws -> [String] {
        try listObjects(prefix: prefix).map(\.key)
    }

    /// The objects under `prefix`, every page of them, each with when it was last written (nil
    /// if the store did not say).
    public func listObjects(prefix: String) throws -> [(key: String, modified: Date?)] {
        var keys: [(key: String, modified: Date?)] = [], token: String?
        repeat {
            var query = [("list-type", "2"), ("prefix", prefix)]
            if let token { query.append(("continuation-token", token)) }
            let body = try send(try request("GET", key: nil, query: query), "listing \(location.bucket)/\(prefix)", limit: 4 << 20).body
            keys += S3XML.elements("Contents", in: body).compactMap { element in
                S3XML.texts("Key", in: element).first.map { ($0, S3XML.texts("LastModified", in: element).first.flatMap(Self.parseDate)) }
            }
            let next = S3XML.texts("IsTruncated", in: body).first == "true" ? S3XML.texts("NextContinuationToken", in: body).first : nil
            if let next, next == token { throw S3Error("listing \(location.bucket)/\(prefix): the object store repeated its page") }
            token = next
        } while token != nil
        return keys
    }

    /// Makes the bucket (deployment set-up and tests; a service never creates its bucket).
    public func createBucket() throws {
        let body = location.region == "us-east-1" ? Data() : Data("""
            <CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><LocationConstraint>\(location.region)</LocationConstraint></CreateBucketConfiguration>
            """.utf8)
        _ = try send(try request("PUT", key: nil, headers: body.isEmpty ? [] : [("Content-Type", "application/xml")], body: body),
                     "creating bucket \(location.bucket)")
    }

    // MARK: Multipart uploads

    /// An upload under way: invisible until completed.
    public struct Upload: Sendable, Equatable {
        public let key: String
        public let id: String
        /// When it began (nil if the store did not say).
        public let initiated: Date?
    }

    public func startUpload(_ key: String) throws -> String {
        let body = try send(try request("POST", key: key, query: [("uploads", "")]), "starting the upload of \(key)").body
        guard let id = S3XML.texts("UploadId", in: body).first, !id.isEmpty else {
            throw S3Error("starting the upload of \(key): the object store gave no upload id")
        }
        return id
    }

    /// Sends part `number` (from 1) of `upload`; returns its ETag, which completing it names.
    public func uploadPart(_ key: String, upload: String, number: Int, _ body: Data) throws -> String {
        let response = try send(try request("PUT", key: key, query: [("partNumber", "\(number)"), ("uploadId", upload)], body: body),
                                "sending part \(number) of \(key)")
        guard let etag = response.headers["etag"], !etag.isEmpty else { throw S3Error("sending part \(number) of \(key): no ETag came back") }
        return etag
    }

    /// Joins the parts into the object, which becomes visible whole.
    public func completeUpload(_ key: String, upload: String, etags: [String]) throws {
        let parts = etags.enumerated().map { index, etag in
            "<Part><PartNumber>\(index + 1)</PartNumber><ETag>\(S3XML.escape(etag))</ETag></Part>"
        }.joined()
        let body = Data("<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\(parts)</CompleteMultipartUpload>".utf8)
        let response = try send(try request("POST", key: key, query: [("uploadId", upload)], headers: [("Content-Type", "application/xml")], body: body),
                                "completing the upload of \(key)")
        // S3 may answer 200 and then report a failure in the body: only its result is success.
        guard S3XML.elements("Error", in: response.body).isEmpty,
              String(decoding: response.body, as: UTF8.self).contains("<CompleteMultipartUploadResult") else {
            throw Self.failure("completing the upload of \(key)", response)
        }
    }

    /// Forgets an upload and its parts; one already gone is not an error.
    public func abortUpload(_ key: String, upload: String) throws {
        _ = try send(try request("DELETE", key: key, query: [("uploadId", upload)]), "abandoning the upload of \(key)", expected: [200, 204, 404])
    }

    /// Uploads begun and not completed or abandoned under `prefix`, every page of them.
    public func listUploads(prefix: String) throws -> [Upload] {
        var uploads: [Upload] = [], marker: (key: String, id: String)?
        repeat {
            var query = [("uploads", ""), ("prefix", prefix)]
            if let marker { query += [("key-marker", marker.key), ("upload-id-marker", marker.id)] }
            let body = try send(try request("GET", key: nil, query: query), "listing unfinished uploads", limit: 4 << 20).body
            uploads += S3XML.elements("Upload", in: body).compactMap { element in
                guard let key = S3XML.texts("Key", in: element).first, let id = S3XML.texts("UploadId", in: element).first else { return nil }
                return Upload(key: key, id: id, initiated: S3XML.texts("Initiated", in: element).first.flatMap(Self.parseDate))
            }
            let truncated = S3XML.texts("IsTruncated", in: body).first == "true"
            let next = (S3XML.texts("NextKeyMarker", in: body).first, S3XML.texts("NextUploadIdMarker", in: body).first)
            let following = truncated ? next.0.flatMap { key in next.1.map { (key: key, id: $0) } } : nil
            if let following, let marker, following == marker { throw S3Error("listing unfinished uploads: the object store repeated its page") }
            marker = following
        } while marker != nil
        return uploads
    }

    // MARK: Encoding

    static func sha256Hex(_ data: Data) throws -> String {
        let digest = try SHA256Stream()
        digest.update(data)
        return digest.finish().hexString
    }

    /// `20150830T123600Z`.
    static func amzDate(_ date: Date) -> String {
        var time = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&time, &parts)
        return String(format: "%04d%02d%02dT%02d%02d%02dZ", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec)
    }

    /// S3's `2026-12-07T11:16:45.000Z`.
    static func parseDate(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }
}
