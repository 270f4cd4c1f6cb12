public import CallTraceOutbound
import Foundation

/// Twilio's REST API (2010-04-01) for one account: form-encoded requests, JSON answers, basic
/// auth with an API key, over `HTTPSTransport` (in production `CurlHTTPS`: Debian's libcurl on
/// the system OpenSSL). Every failure is a `TwilioError`; see `TwilioClient+Numbers.swift`,
/// `+Calls` and `+Recordings` for the calls.
public struct TwilioClient: Sendable {
    public struct Configuration: Sendable {
        /// The account whose resources are used (`AC…`); it is in every path.
        public var accountSID: String
        /// Where the API is. Default `https://api.twilio.com`; tests point it at the fake.
        public var baseURL: String
        /// The whole of one JSON request. Default 30 s.
        public var timeout: Duration
        /// The whole of one recording's download. Default 10 min (an hour of WAV is ~115 MB at
        /// 8 kHz, two channels, 16-bit).
        public var downloadTimeout: Duration

        public init(accountSID: String, baseURL: String = "https://api.twilio.com", timeout: Duration = .seconds(30),
                    downloadTimeout: Duration = .seconds(600)) {
            self.accountSID = accountSID
            self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
            self.timeout = timeout
            self.downloadTimeout = downloadTimeout
        }
    }

    public let configuration: Configuration
    let apiKey: TwilioAPIKey
    let transport: any HTTPSTransport

    /// - Throws: `TwilioError(.configuration)` for an account SID that is not `AC` and 32 hex digits.
    public init(configuration: Configuration, apiKey: TwilioAPIKey, transport: any HTTPSTransport) throws(TwilioError) {
        guard TwilioSID.isValid(configuration.accountSID, prefix: "AC") else {
            throw TwilioError(.configuration, operation: "configuring the Twilio client", message: "the account SID must be AC and 32 hex digits")
        }
        self.configuration = configuration
        self.apiKey = apiKey
        self.transport = transport
    }

    /// `/2010-04-01/Accounts/AC…`: every path starts here.
    var accountPath: String { "/2010-04-01/Accounts/\(configuration.accountSID)" }

    /// One request to `path` (from the host, starting `/`); the answer's status is not checked.
    func send(_ method: String, _ path: String, query: FormParameters = FormParameters(), form: FormParameters? = nil,
              operation: String, sink: (any HTTPSResponseSink)? = nil) async throws(TwilioError) -> HTTPSResponse {
        var url = configuration.baseURL + path
        if !query.pairs.isEmpty { url += (path.contains("?") ? "&" : "?") + query.encodedText }
        // A download's type is the path's extension (`.wav`); everything else answers JSON.
        var headers = [("Authorization", apiKey.basicAuthorization), ("Accept", sink == nil ? "application/json" : "*/*")]
        if form != nil { headers.append(("Content-Type", "application/x-www-form-urlencoded")) }
        var request = HTTPSRequest(url: url, headers: headers, body: form?.encoded ?? Data(),
                                   timeout: sink == nil ? configuration.timeout : configuration.downloadTimeout)
        request.method = method
        request.sink = sink
        do {
            return try await transport.send(request)
        } catch let error as HTTPSError {
            throw TwilioError(.transport, operation: operation, message: error.description)
        } catch {
            throw TwilioError(.transport, operation: operation, message: "\(error)")
        }
    }

    /// The answer's JSON as `T` when its status is one of `expected`, else Twilio's error.
    func decode<T: Decodable>(_ type: T.Type, from response: HTTPSResponse, expected: Set<Int> = [200, 201], operation: String) throws(TwilioError) -> T {
        guard expected.contains(response.status) else { throw TwilioError.answer(status: response.status, body: response.body, operation: operation) }
        do {
            return try JSONDecoder().decode(T.self, from: response.body)
        } catch {
            throw TwilioError(.unexpectedAnswer, operation: operation, status: response.status,
                              message: "the answer is not the documented \(T.self) JSON")
        }
    }

    /// Refuses a SID that is not `prefix` and 32 hex digits before it goes into a path.
    func checked(_ sid: String, _ prefix: String, operation: String) throws(TwilioError) -> String {
        guard TwilioSID.isValid(sid, prefix: prefix) else {
            throw TwilioError(.configuration, operation: operation, message: "not a \(prefix) SID")
        }
        return sid
    }
}
