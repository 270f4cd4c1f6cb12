import CallTraceAPI
import CallTraceProto
import CallTraceTestSupport
import Foundation
import SwiftProtobuf
import Testing

/// A temporary folder for one test's files, removed when the test ends.
final class Files: @unchecked Sendable {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("calltrace-api-\(UUID().uuidString)")

    init() throws { try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true) }
    deinit { try? FileManager.default.removeItem(at: url) }

    /// `text` written to `name`; its path.
    func write(_ name: String, _ text: String) throws -> String {
        let path = url.appendingPathComponent(name).path
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }
}

@Suite("API: JSON names for `calltrace --json`")
struct JSONNamesTests {
    @Test("protoJSONNames holds every message in proto/ with every field's JSON name, as protoc names them, and nothing else")
    func matchesProtoc() async throws {
        var expected: [String: [Int: String]] = [:]
        func collect(_ message: Google_Protobuf_DescriptorProto, prefix: String) {
            let name = "\(prefix).\(message.name)"
            expected[name] = Dictionary(uniqueKeysWithValues: message.field.map { (Int($0.number), $0.jsonName) })
            for nested in message.nestedType where !nested.options.mapEntry { collect(nested, prefix: name) }
        }
        for file in try await protoDescriptorSet().file {
            for message in file.messageType { collect(message, prefix: file.package) }
        }
        #expect(expected.count > 100)
        #expect(Set(protoJSONNames.keys) == Set(expected.keys))
        for (message, fields) in expected { #expect(protoJSONNames[message] == fields, "\(message)") }
    }

    @Test("They are the keys swift-protobuf writes: a message with every field set encodes to exactly its listed names")
    func matchesSwiftProtobuf() throws {
        let run = Calltrace_Compliance_V1_RetentionRun.with {
            $0.runID = "ret_1"; $0.orgID = "org_1"; $0.state = .finished; $0.requestedBy = "schedule"; $0.startedAtUnixMs = 1; $0.finishedAtUnixMs = 2
            $0.recordingsBeforeUnixMs = 3; $0.transcriptsBeforeUnixMs = 4; $0.callRecordsBeforeUnixMs = 5; $0.recordingsPurged = 6
            $0.recordingBytesPurged = 7; $0.transcriptsPurged = 8; $0.callRecordsPurged = 9; $0.lastError = "e"
        }
        let event = Calltrace_Compliance_V1_AuditEvent.with {
            $0.idempotencyKey = "media:1"; $0.orgID = "org_1"; $0.actor = "user:u"; $0.action = "recording.played"; $0.resource = "recording:r"
            $0.outcome = "success"; $0.occurredAtUnixMs = 1; $0.sourceService = "media"; $0.detail = "d"
        }
        for (name, json) in [(Calltrace_Compliance_V1_RetentionRun.protoMessageName, try run.jsonString()),
                             (Calltrace_Compliance_V1_AuditEvent.protoMessageName, try event.jsonString())] {
            let keys = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]).keys
            #expect(Set(keys) == Set(try #require(protoJSONNames[name]).values), "\(name)")
        }
        #expect(protoJSONNames["calltrace.compliance.v1.RetentionRun"]?[11] == "recordingBytesPurged")
    }
}

@Suite("API: the deployment file")
struct DeploymentFileTests {
    @Test("A deployment file maps services to host:port; a service it does not name is absent")
    func load() throws {
        let files = try Files()
        let path = try files.write("deployment.json", #"{"services": {"identity": "10.0.0.5:7101", "media": "media.internal:7102"}}"#)
        let deployment = try Deployment.load(path)
        #expect(deployment == Deployment(services: ["identity": "10.0.0.5:7101", "media": "media.internal:7102"]))
        #expect(deployment.services["compliance"] == nil)
        #expect(Deployment.serviceNames == ["identity", "media", "transcript", "compliance"])
    }

    @Test("Gateways are listed apart from the services, for health; no service takes them as a peer")
    func gateways() throws {
        let files = try Files()
        let path = try files.write("deployment.json", #"{"services": {"identity": "10.0.0.5:7101"}, "gateways": {"web": "10.0.0.8:7105"}}"#)
        let deployment = try Deployment.load(path)
        #expect(deployment.gateways == ["web": "10.0.0.8:7105"])
        #expect(deployment.services == ["identity": "10.0.0.5:7101"])
    }

    @Test("A fifth service or gateway is one more entry, its kind the section it is in; health lists the four first, then the others by name")
    func fifth() throws {
        let files = try Files()
        let path = try files.write("deployment.json", """
            {"services": {"billing": "10.0.0.9:7107", "media": "10.0.0.6:7102", "identity": "10.0.0.5:7101"},
             "gateways": {"web": "10.0.0.8:7105", "crm-bridge": "10.0.0.10:7108"}}
            """)
        let deployment = try Deployment.load(path)
        #expect(deployment.services["billing"] == "10.0.0.9:7107" && deployment.gateways["crm-bridge"] == "10.0.0.10:7108")
        #expect(deployment.everyone.map { "\($0.kind)/\($0.name) \($0.address)" } == [
            "service/identity 10.0.0.5:7101", "service/media 10.0.0.6:7102", "service/billing 10.0.0.9:7107",
            "gateway/crm-bridge 10.0.0.10:7108", "gateway/web 10.0.0.8:7105",
        ])
    }

    @Test("A file that cannot be used is refused with what is wrong", arguments: [
        (#"{"services": {"media": "10.0.0.6"}}"#, #"media must be host:port with a port from 1 to 65535, not "10.0.0.6""#),
        (#"{"services": {"media": "10.0.0.6:0"}}"#, #"media must be host:port with a port from 1 to 65535, not "10.0.0.6:0""#),
        (#"{"services": {"media": "10.0.0.6:65536"}}"#, #"media must be host:port with a port from 1 to 65535, not "10.0.0.6:65536""#),
        (#"{"services": {"media": ":7102"}}"#, #"media must be host:port with a port from 1 to 65535, not ":7102""#),
        (#"{"services": {"Billing": "10.0.0.6:7105"}}"#, #"service "Billing" is not a name (lowercase letters, digits, '-', '.' or '_')"#),
        (#"{"services": {"media/x": "10.0.0.6:7105"}}"#, #"service "media/x" is not a name (lowercase letters, digits, '-', '.' or '_')"#),
        (#"{"services": {"media": "10.0.0.6:7102"}, "gateways": {"media": "10.0.0.8:7105"}}"#, "media is listed both as a service and as a gateway"),
        (#"{"services": {"media": 7102}}"#, #"services must map service names to "host:port""#),
        (#"{"services": {}, "ca": "/etc/ca.crt"}"#, #"unknown key "ca" (it holds only "services" and "gateways")"#),
        (#"{"services": {}, "gateways": {"": "10.0.0.8:7105"}}"#, #"gateway "" is not a name (lowercase letters, digits, '-', '.' or '_')"#),
        (#"{"services": {}, "gateways": {"web": "10.0.0.8"}}"#, #"web must be host:port with a port from 1 to 65535, not "10.0.0.8""#),
        (#"{"services": {}, "gateways": ["web"]}"#, #"gateways must map gateway names to "host:port""#),
        ("[1, 2]", "is not a JSON object"),
        ("services: media", "is not a JSON object"),
    ])
    func refused(_ contents: String, _ reason: String) throws {
        let files = try Files()
        let path = try files.write("deployment.json", contents)
        let error = #expect(throws: Deployment.FileError.self) { _ = try Deployment.load(path) }
        #expect(error?.description.hasPrefix("deployment file \(path)") == true && error?.description.hasSuffix(reason) == true, "\(error?.description ?? "")")
    }

    @Test("A missing file is named")
    func missing() {
        let error = #expect(throws: Deployment.FileError.self) { _ = try Deployment.load("/nonexistent/deployment.json") }
        #expect(error?.description == "deployment file /nonexistent/deployment.json cannot be read")
    }

    @Test("host:port splits at the last colon; the port must be 1–65535", arguments: [
        ("127.0.0.1:7101", "127.0.0.1", 7101), ("media.internal:1", "media.internal", 1), ("h:65535", "h", 65535),
    ])
    func hostAndPort(_ address: String, _ host: String, _ port: Int) {
        let split = Deployment.hostAndPort(address)
        #expect(split?.host == host && split?.port == port)
    }

    @Test("Not host:port", arguments: ["7101", ":7101", "h:", "h:0", "h:65536", "h:-1", "h:port", ""])
    func notHostAndPort(_ address: String) {
        #expect(Deployment.hostAndPort(address) == nil)
    }
}

@Suite("API: client settings from a file and the environment")
struct ClientSettingsTests {
    @Test("The file gives everything; the environment wins over it, key by key and service by service")
    func fileThenEnvironment() throws {
        let files = try Files()
        let file = try files.write("client.json", """
            {"certificate": "/pki/web.crt", "private_key": "/pki/web.key", "ca": "/pki/ca.crt", "trust_domain": "firm.test",
             "services": {"media": "10.0.0.6:7102", "transcript": "10.0.0.6:7103"}}
            """)
        #expect(try CallTraceConnections.settings(file: file, environment: [:]) == CallTraceConnections.Settings(
            certificate: "/pki/web.crt", privateKey: "/pki/web.key", ca: "/pki/ca.crt", trustDomain: "firm.test",
            services: ["media": "10.0.0.6:7102", "transcript": "10.0.0.6:7103"]))
        let environment = ["CALLTRACE_CLIENT_CONFIG": file, "CALLTRACE_CLIENT_PRIVATE_KEY": "/secure/web.key", "CALLTRACE_TRUST_DOMAIN": "other.test",
                           "CALLTRACE_MEDIA_ADDRESS": "127.0.0.1:9102", "CALLTRACE_IDENTITY_ADDRESS": "127.0.0.1:9101"]
        #expect(try CallTraceConnections.settings(environment: environment) == CallTraceConnections.Settings(
            certificate: "/pki/web.crt", privateKey: "/secure/web.key", ca: "/pki/ca.crt", trustDomain: "other.test",
            services: ["media": "127.0.0.1:9102", "transcript": "10.0.0.6:7103", "identity": "127.0.0.1:9101"]))
        // The environment alone is enough.
        let alone = ["CALLTRACE_CLIENT_CERTIFICATE": "/c", "CALLTRACE_CLIENT_PRIVATE_KEY": "/k", "CALLTRACE_CLIENT_CA": "/ca", "CALLTRACE_TRUST_DOMAIN": "t.test"]
        #expect(try CallTraceConnections.settings(environment: alone) == .init(certificate: "/c", privateKey: "/k", ca: "/ca", trustDomain: "t.test"))
        // What Settings encodes is what the file takes.
        let written = try files.write("encoded.json", String(decoding: try JSONEncoder().encode(CallTraceConnections.Settings(
            certificate: "/c", privateKey: "/k", ca: "/ca", trustDomain: "t.test", services: ["compliance": "h:7104"])), as: UTF8.self))
        #expect(try CallTraceConnections.settings(file: written, environment: [:]).services == ["compliance": "h:7104"])
    }

    @Test("Missing, unreadable or malformed settings are named", arguments: [
        ("{\"ca\": \"/ca\"}", [String: String](), "client settings lack certificate, private_key, trust_domain"),
        ("{\"certificate\": \"/c\", \"private_key\": \"/k\", \"ca\": \"/ca\", \"trust_domain\": \"\"}", [:], "client settings lack trust_domain"),
        ("{\"certificate\": \"/c\", \"private_key\": \"/k\", \"ca\": \"/ca\", \"trust_domain\": \"t\", \"services\": {\"billing\": \"h:1\"}}", [:],
         "unknown service billing (identity, media, transcript, compliance)"),
        ("{\"certificate\": \"/c\", \"private_key\": \"/k\", \"ca\": \"/ca\", \"trust_domain\": \"t\"}", ["CALLTRACE_MEDIA_ADDRESS": "nowhere"],
         "the address of media must be host:port, not nowhere"),
        ("{\"certificate\": 7}", [:], "is not valid JSON of certificate, private_key, ca, trust_domain, services"),
    ])
    func refused(_ contents: String, _ environment: [String: String], _ reason: String) throws {
        let files = try Files()
        let file = try files.write("client.json", contents)
        let error = #expect(throws: CallTraceConnections.SettingsError.self) { _ = try CallTraceConnections.settings(file: file, environment: environment) }
        #expect(error?.description.contains(reason) == true, "\(error?.description ?? "")")
    }

    @Test("A file that cannot be read is named")
    func unreadable() {
        let error = #expect(throws: CallTraceConnections.SettingsError.self) {
            _ = try CallTraceConnections.settings(environment: ["CALLTRACE_CLIENT_CONFIG": "/nonexistent/client.json"])
        }
        #expect(error?.description == "client config /nonexistent/client.json cannot be read")
    }
}
