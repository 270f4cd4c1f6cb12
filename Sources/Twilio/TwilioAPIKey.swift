import CallTraceOutbound
import Foundation

/// A Twilio API key (`SK…`) and its secret: the REST API's basic-auth user and password. An API
/// key rather than the account's auth token, so it can be revoked alone; the auth token is kept
/// only for checking webhook signatures.
///
/// Its description shows the key's SID and never the secret.
public struct TwilioAPIKey: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public let sid: String
    let secret: String

    public init(sid: String, secret: String) {
        self.sid = sid
        self.secret = secret
    }

    /// Reads `<key SID>:<secret>` (one line, as `curl -u` takes it) from a file its owner alone
    /// can read (mode 0600 or stricter).
    ///
    /// - Throws: `TwilioError(.configuration)` naming the path and what to do (a file group or
    ///   others can read: `chmod 600`), never the file's contents.
    public static func read(from path: String) throws(TwilioError) -> TwilioAPIKey {
        let text: String
        do { text = try SecretFile.read(path) } catch {
            throw TwilioError(.configuration, operation: "reading the API key", message: "\(error)")
        }
        let line = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let colon = line.firstIndex(of: ":"), !line.contains("\n") else {
            throw TwilioError(.configuration, operation: "reading the API key", message: "\(path) must hold one line: <API key SID>:<secret>")
        }
        let sid = String(line[..<colon]), secret = String(line[line.index(after: colon)...])
        guard TwilioSID.isValid(sid, prefix: "SK"), !secret.isEmpty else {
            throw TwilioError(.configuration, operation: "reading the API key",
                              message: "\(path) must hold one line: <API key SID, SK and 32 hex digits>:<secret>")
        }
        return TwilioAPIKey(sid: sid, secret: secret)
    }

    /// Whether `credentials` (basic auth's decoded `user:password`) are this key's, compared in
    /// constant time: for a server that takes this key (the fake Twilio).
    public func matches(basicCredentials credentials: String) -> Bool {
        TwilioSignature.equal(credentials, "\(sid):\(secret)")
    }

    /// The `Authorization` header's value.
    var basicAuthorization: String { "Basic " + Data("\(sid):\(secret)".utf8).base64EncodedString() }

    public var description: String { "API key \(sid)" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["sid": sid]) }
}

/// Twilio's resource identifiers: two capital letters saying the kind (`AC` account, `PN`
/// number, `CA` call, `RE` recording, `SK` API key, `BU` bundle, `AD` address) and 32 hex digits.
/// Checked before one goes into a URL path.
public enum TwilioSID {
    public static func isValid(_ sid: String, prefix: String) -> Bool {
        sid.utf8.count == 34 && sid.hasPrefix(prefix) && sid.utf8.dropFirst(2).allSatisfy { byte in
            (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
                || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(byte)
        }
    }
}
