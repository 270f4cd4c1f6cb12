@testable import CallTraceServiceHost
import Foundation
import Testing

/// The JSON configuration file as the host reads it for any service: each value reaches its
/// setting as a flag's would, and a value of the wrong shape is refused by name, never bent.
@Suite("The configuration file")
struct ConfigurationFileTests {
    static let known = ["listen": false, "drain_seconds": false, "job_lease_seconds": false, "credential_gateways": true, "log_level": false]

    func parse(_ json: String) throws -> ConfigurationFile {
        try ConfigurationFile(parsing: Data(json.utf8), path: "service.json", known: Self.known)
    }

    func refusal(_ json: String) -> String {
        do {
            let file = try parse(json)
            return "accepted: \(file)"
        } catch {
            return "\(error)"
        }
    }

    @Test("Strings, lists of names, a whole number of seconds and the peers, in the order of their keys")
    func accepted() throws {
        let file = try parse(#"{"listen": "0.0.0.0:7101", "credential_gateways": ["web", "crm"], "drain_seconds": 30, "job_lease_seconds": 120, "peers": {"media": "10.0.0.7:7102"}}"#)
        #expect(file.assignments == [.init(key: "credential_gateways", value: "web,crm"), .init(key: "drain_seconds", value: "30"),
                                     .init(key: "job_lease_seconds", value: "120"), .init(key: "listen", value: "0.0.0.0:7101")])
        #expect(file.peers == ["media": "10.0.0.7:7102"])
        let empty = try parse("{}")
        #expect(empty.assignments.isEmpty && empty.peers == nil)
    }

    @Test("JSON's true or 1.5 is not a number of seconds, a name with a comma is not two names nor an empty one none, and each refusal names the key")
    func refused() {
        let cases: [(String, String)] = [
            (#"{"drain_seconds": true}"#, "drain_seconds must be a whole number of seconds from 0 to 3600"),
            (#"{"drain_seconds": 1.5}"#, "drain_seconds must be a whole number of seconds from 0 to 3600"),
            (#"{"drain_seconds": "30"}"#, "drain_seconds must be a whole number of seconds from 0 to 3600"),
            (#"{"drain_seconds": 1e300}"#, "drain_seconds must be a whole number of seconds from 0 to 3600"),
            (#"{"job_lease_seconds": "60"}"#, "job_lease_seconds must be a whole number of seconds from 4 to 3600"),
            (#"{"credential_gateways": ["web,crm"]}"#, "credential_gateways must be a list of names"),
            (#"{"credential_gateways": "web"}"#, "credential_gateways must be a list of names"),
            (#"{"credential_gateways": [""]}"#, "credential_gateways must be a list of names"),
            (#"{"credential_gateways": [" web"]}"#, "credential_gateways must be a list of names"),
            (#"{"listen": 7101}"#, "listen must be a string"),
            (#"{"peers": {"media": 7102}}"#, "peers must map service names to \"host:port\""),
            (#"{"lsiten": "0.0.0.0:7101"}"#, #"unknown key "lsiten""#),
            ("{\"a\\u0007b\": 1}", #"unknown key "a\u{7}b""#),
            ("{\"a\\u2028b\\u202ec\": 1}", #"unknown key "a\u{2028}b\u{202e}c""#),
            (#"["listen"]"#, "is not a JSON object"),
            ("{\"listen\": \"x\"", "is not a JSON object"),
        ]
        for (json, expected) in cases {
            let answer = refusal(json)
            #expect(answer.hasPrefix("config file service.json") && answer.hasSuffix(expected), "\(json): \(answer)")
        }
    }
}
