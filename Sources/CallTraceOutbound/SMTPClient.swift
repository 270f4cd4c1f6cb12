import CCurl
import Glibc
import Foundation

/// Where and how to send e-mail: a submission server that speaks TLS.
public struct SMTPSettings: Sendable, Equatable {
    /// `smtps://host:465` (TLS from the first byte) or `smtp://host:587` (STARTTLS, required:
    /// a server that does not offer it gets nothing, credentials included).
    public var url: String
    /// The sender, e.g. `no-reply@calltrace.example`.
    public var from: String
    /// PEM CA certificates that may sign the server's certificate; nil for the system's.
    public var caFile: String?
    /// Login, if the server asks for one.
    public var username: String?
    public var password: String?
    /// The whole exchange, connection included. Default 30 s.
    public var timeout: Duration = .seconds(30)

    public init(url: String, from: String, caFile: String? = nil, username: String? = nil, password: String? = nil) {
        self.url = url
        self.from = from
        self.caFile = caFile
        self.username = username
        self.password = password
    }

    /// The login in `path`: user name on the first line, password on the second. The file must
    /// be a regular file its owner alone can read (mode 0600 or stricter).
    public static func credentials(from path: String) throws -> (username: String, password: String) {
        let text: String
        do { text = try SecretFile.read(path) } catch { throw MailError("smtp_credentials \(error)") }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "\r")) }
        guard lines.count >= 2, !lines[0].isEmpty, !lines[1].isEmpty else {
            throw MailError("smtp_credentials \(path) must hold the user name on its first line and the password on its second")
        }
        return (lines[0], lines[1])
    }

    /// Checks what can be checked without a connection.
    public func validated() throws -> SMTPSettings {
        guard url.hasPrefix("smtps://") || url.hasPrefix("smtp://") else {
            throw MailError("smtp_url must start with smtps:// (implicit TLS) or smtp:// (STARTTLS), not \(url)")
        }
        guard MailAddress.isPlain(from) else { throw MailError("smtp_from is not a plain e-mail address") }
        if let failure = Libcurl.loadFailure { throw MailError(failure) }
        return self
    }
}

/// A small secret in a file (a password, an API key): a regular file its owner alone can read.
public enum SecretFile {
    /// The file's text. Refuses a link, a file group or others can read, or one over 4 KiB;
    /// the error names the path and what to do, never the contents.
    public static func read(_ path: String) throws -> String {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw SecretFileError("\(path) cannot be read: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG, info.st_size < 4096 else {
            throw SecretFileError("\(path) is not a small regular file")
        }
        guard info.st_mode & 0o077 == 0 else { throw SecretFileError("\(path) is accessible by group or others; run chmod 600 \(path)") }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        guard Glibc.read(fd, &bytes, bytes.count) == bytes.count else { throw SecretFileError("\(path) cannot be read") }
        return String(decoding: bytes, as: UTF8.self)
    }
}

public struct SecretFileError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// One plain-text message to one recipient.
public struct MailMessage: Sendable, Equatable {
    public var to: String
    public var subject: String
    public var body: String

    public init(to: String, subject: String, body: String) {
        self.to = to
        self.subject = subject
        self.body = body
    }
}

/// A failure to send. Its text names the step and curl's reason; never an address, a body or a
/// credential.
public struct MailError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// What an address may hold to be sent to.
public enum MailAddress {
    /// A bare address: printable ASCII without spaces or the characters that delimit addresses
    /// and headers, so nothing in it can end a mail header or an SMTP command.
    public static func isPlain(_ address: String) -> Bool {
        address.utf8.count <= 254 && address.contains("@")
            && address.unicodeScalars.allSatisfy { $0.value > 0x20 && $0.value < 0x7F && !"<>()[],;:\\\"".unicodeScalars.contains($0) }
    }
}

/// Sends e-mail through Debian's libcurl (on the system OpenSSL): TLS 1.2 or later, the
/// server's certificate and name verified, SMTP and SMTPS only. Blocking: call it off the
/// connections' I/O threads (a job, the blocking pool).
public enum SMTPClient {
    public static func send(_ message: MailMessage, settings: SMTPSettings, now: Date = Date()) throws {
        guard MailAddress.isPlain(message.to) else { throw MailError("the recipient is not a plain e-mail address") }
        guard !message.subject.contains(where: { $0.isNewline }) else { throw MailError("the subject has a line break") }
        let settings = try settings.validated()  // also loads libcurl
        guard let handle = ct_curl_easy_init() else { throw MailError("cannot create a mail transfer") }
        defer { ct_curl_easy_cleanup(handle) }
        let recipients = ct_curl_slist_append(nil, "<\(message.to)>")
        defer { ct_curl_slist_free_all(recipients) }
        let upload = Upload(Data(render(message, from: settings.from, now: now).utf8))
        var errorText = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        let outcome: CURLcode = errorText.withUnsafeMutableBufferPointer { errorBuffer in
            withExtendedLifetime(upload) {
                let context = Unmanaged.passUnretained(upload).toOpaque()
                var steps: [CURLcode] = [
                    ct_curl_set_string(handle, CURLOPT_URL, settings.url),
                    ct_curl_set_string(handle, CURLOPT_PROTOCOLS_STR, "smtp,smtps"),
                    ct_curl_set_long(handle, CURLOPT_USE_SSL, Int(CURLUSESSL_ALL.rawValue)),
                    ct_curl_set_long(handle, CURLOPT_SSLVERSION, CURL_SSLVERSION_TLSv1_2),
                    ct_curl_set_long(handle, CURLOPT_SSL_VERIFYPEER, 1),
                    ct_curl_set_long(handle, CURLOPT_SSL_VERIFYHOST, 2),
                    ct_curl_set_long(handle, CURLOPT_NOSIGNAL, 1),
                    ct_curl_set_long(handle, CURLOPT_TIMEOUT_MS, Int(settings.timeout.components.seconds * 1000)),
                    ct_curl_set_string(handle, CURLOPT_MAIL_FROM, "<\(settings.from)>"),
                    ct_curl_set_list(handle, CURLOPT_MAIL_RCPT, recipients),
                    ct_curl_set_long(handle, CURLOPT_UPLOAD, 1),
                    ct_curl_set_callback(handle, CURLOPT_READFUNCTION, readUpload),
                    ct_curl_set_pointer(handle, CURLOPT_READDATA, context),
                    ct_curl_set_pointer(handle, CURLOPT_ERRORBUFFER, errorBuffer.baseAddress),
                ]
                if let caFile = settings.caFile { steps.append(ct_curl_set_string(handle, CURLOPT_CAINFO, caFile)) }
                if let username = settings.username { steps.append(ct_curl_set_string(handle, CURLOPT_USERNAME, username)) }
                if let password = settings.password { steps.append(ct_curl_set_string(handle, CURLOPT_PASSWORD, password)) }
                if let failed = steps.first(where: { $0 != CURLE_OK }) { return failed }
                return ct_curl_easy_perform(handle)
            }
        }
        guard outcome == CURLE_OK else {
            var response = 0
            _ = ct_curl_get_long(handle, CURLINFO_RESPONSE_CODE, &response)
            let reason = String(cString: ct_curl_easy_strerror(outcome))
            throw MailError("sending mail through \(Self.server(of: settings.url)) failed: \(reason)\(response > 0 ? " (server said \(response))" : "")")
        }
    }

    /// `scheme://host:port` of the URL, without any user part.
    static func server(of url: String) -> String {
        guard let parsed = URL(string: url), let scheme = parsed.scheme, let host = parsed.host else { return "the mail server" }
        return "\(scheme)://\(host)\(parsed.port.map { ":\($0)" } ?? "")"
    }

    /// RFC 5322 headers and a UTF-8 body with CRLF line ends (libcurl escapes leading dots).
    static func render(_ message: MailMessage, from: String, now: Date) -> String {
        let date = DateFormatter()
        date.locale = Locale(identifier: "en_US_POSIX")
        date.timeZone = TimeZone(identifier: "UTC")
        date.dateFormat = "EEE, dd MMM yyyy HH:mm:ss '+0000'"
        let domain = from.split(separator: "@").last.map(String.init) ?? "calltrace.invalid"
        let subject = message.subject.allSatisfy(\.isASCII)
            ? message.subject : "=?UTF-8?B?\(Data(message.subject.utf8).base64EncodedString())?="
        let headers = [
            "From: <\(from)>", "To: <\(message.to)>", "Subject: \(subject)", "Date: \(date.string(from: now))",
            "Message-ID: <\(UUID().uuidString.lowercased())@\(domain)>", "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit",
        ]
        let body = message.body.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\n", with: "\r\n")
        return headers.joined(separator: "\r\n") + "\r\n\r\n" + body + "\r\n"
    }
}

/// The bytes curl reads from, in order.
private final class Upload {
    let bytes: Data
    var offset = 0
    init(_ bytes: Data) { self.bytes = bytes }
}

private func readUpload(_ buffer: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ context: UnsafeMutableRawPointer?) -> Int {
    guard let buffer, let context else { return 0 }
    let upload = Unmanaged<Upload>.fromOpaque(context).takeUnretainedValue()
    let n = min(size * count, upload.bytes.count - upload.offset)
    guard n > 0 else { return 0 }
    upload.bytes.withUnsafeBytes { source in
        UnsafeMutableRawPointer(buffer).copyMemory(from: source.baseAddress! + upload.offset, byteCount: n)
    }
    upload.offset += n
    return n
}

/// libcurl, loaded (and `curl_global_init` run) by the first transfer (see CCurl.h), or at start
/// by a service configured to send mail (`SMTPSettings.validated`) or to call a sub-processor
/// (`load()`), which then refuses to start on a machine without it.
public enum Libcurl {
    /// Loads libcurl now, or says why it cannot be.
    public static func load() throws {
        if let failure = loadFailure { throw HTTPSError(failure) }
    }

    /// Why libcurl cannot be used, or nil once it is loaded.
    static let loadFailure: String? = {
        var error = [CChar](repeating: 0, count: 256)
        guard ct_curl_load(&error, error.count) != 0 else { return nil }
        return error.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }()
}
