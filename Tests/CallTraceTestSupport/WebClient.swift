public import CallTraceSync
public import Foundation
#if canImport(FoundationNetworking)
public import FoundationNetworking
#endif

/// A browser without a screen, for the HTTP-level tests: it keeps the cookies the gateway sets
/// (as a browser would, by name), never follows redirects (the tests look at them), and shows
/// each answer's status, headers and body.
public final class WebClient: NSObject, URLSessionTaskDelegate, Sendable {
    public let base: String
    /// Whose browser it is, when a test made it for a user.
    public let email: String?
    private let jar = Locked<[String: String]>([:])
    /// Every Set-Cookie line the gateway sent, as sent (attributes included).
    public let setCookies = Locked<[String]>([])
    private let session = Locked<URLSession?>(nil)

    public init(base: String, email: String? = nil) {
        self.base = base
        self.email = email
    }

    public struct Page: Sendable {
        public let status: Int
        public let headers: [String: String]
        public let body: Data
        public var text: String { String(decoding: body, as: UTF8.self) }
        public func header(_ name: String) -> String? { headers.first { $0.key.lowercased() == name.lowercased() }?.value }
        /// The value of the hidden form token on this page.
        public var csrf: String? { text.firstMatch(of: /name="csrf" value="([^"]*)"/).map { String($0.1) } }
    }

    public var cookies: [String: String] { jar.withLock { $0 } }
    public func setCookie(_ name: String, _ value: String?) { jar.withLock { $0[name] = value } }

    public func get(_ path: String, headers: [String: String] = [:]) async throws -> Page {
        try await send("GET", path, headers: headers, body: nil)
    }

    public func post(_ path: String, form: [(String, String)], headers: [String: String] = [:]) async throws -> Page {
        let body = form.map { "\(Self.escape($0.0))=\(Self.escape($0.1))" }.joined(separator: "&")
        return try await post(path, body: Data(body.utf8), headers: headers)
    }

    public func post(_ path: String, body: Data, headers: [String: String] = [:]) async throws -> Page {
        var headers = headers
        headers["Content-Type"] = headers["Content-Type"] ?? "application/x-www-form-urlencoded"
        return try await send("POST", path, headers: headers, body: body)
    }

    public static func escape(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(.init(charactersIn: "-._~"))) ?? text
    }

    public func send(_ method: String, _ path: String, headers: [String: String], body: Data?) async throws -> Page {
        var request = URLRequest(url: URL(string: base + path)!)
        request.httpMethod = method
        request.httpShouldHandleCookies = false
        request.cachePolicy = .reloadIgnoringLocalAndRemoteCacheData
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        let cookieLine = cookies.map { "\($0.key)=\($0.value)" }.joined(separator: "; ")
        if !cookieLine.isEmpty { request.setValue(cookieLine, forHTTPHeaderField: "Cookie") }
        request.httpBody = body
        let (data, response) = try await urlSession().data(for: request)
        let http = response as! HTTPURLResponse
        var fields: [String: String] = [:]
        for (key, value) in http.allHeaderFields { fields[String(describing: key)] = String(describing: value) }
        if let line = fields.first(where: { $0.key.lowercased() == "set-cookie" })?.value {
            remember(line)
        }
        return Page(status: http.statusCode, headers: fields, body: data)
    }

    /// Foundation joins several Set-Cookie headers with ", "; ours never hold a comma (no Expires).
    private func remember(_ joined: String) {
        for line in joined.components(separatedBy: ", ") {
            setCookies.withLock { $0.append(line) }
            let pair = line.split(separator: ";", maxSplits: 1)[0]
            guard let equals = pair.firstIndex(of: "=") else { continue }
            let name = String(pair[..<equals]).trimmingCharacters(in: .whitespaces), value = String(pair[pair.index(after: equals)...])
            let expired = line.lowercased().contains("max-age=0")
            jar.withLock { $0[name] = expired || value.isEmpty ? nil : value }
        }
    }

    private func urlSession() -> URLSession {
        session.withLock { session in
            if let session { return session }
            let configuration = URLSessionConfiguration.ephemeral
            configuration.httpShouldSetCookies = false
            configuration.httpCookieAcceptPolicy = .never
            configuration.urlCache = nil
            configuration.timeoutIntervalForRequest = 60
            let made = URLSession(configuration: configuration, delegate: self, delegateQueue: nil)
            session = made
            return made
        }
    }

    public func urlSession(_ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
                    newRequest request: URLRequest, completionHandler: @escaping @Sendable (URLRequest?) -> Void) {
        completionHandler(nil)
    }

    public func close() {
        session.withLock { $0?.invalidateAndCancel(); $0 = nil }
    }
}
