@testable import CallTraceServiceHost
import Foundation
import Testing

/// What a service takes from the deployment file: the host reads it the same way for any
/// service, knowing none by name.
@Suite("Peers from the deployment file")
struct DeploymentPeersTests {
    static let file = """
        {"services": {"identity": "10.0.0.5:7101", "transcript": "10.0.0.6:7103", "billing": "10.0.0.9:7107"},
         "gateways": {"web": "10.0.0.8:7105", "telephony": "10.0.0.8:7106", "crm": "10.0.0.10:7108"}}
        """

    func configuration(_ service: String, gateways: Set<String>, peers: [String: String] = [:]) throws -> ServiceConfiguration {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("deployment-\(UUID().uuidString).json").path
        try Data(Self.file.utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        var configuration = ServiceConfiguration.defaults(service: service, port: 7100)
        configuration.peers = peers
        configuration.deployment = path
        try configuration.applyDeployment(service: service, gateways: gateways)
        return configuration
    }

    @Test("Every other service is a peer, a fifth among them; of the gateways only those the service says it calls")
    func peers() throws {
        let web = try configuration("web", gateways: ["telephony"])
        #expect(web.peers == ["identity": "10.0.0.5:7101", "transcript": "10.0.0.6:7103", "billing": "10.0.0.9:7107",
                              "telephony": "10.0.0.8:7106"])
        let transcript = try configuration("transcript", gateways: [], peers: ["identity": "127.0.0.1:9101"])
        #expect(transcript.peers == ["identity": "127.0.0.1:9101", "billing": "10.0.0.9:7107"], "its own peers setting wins; itself and the gateways are left out")
    }

    @Test("The gateways it lists are the deployment's own: the service believes the address each passes on")
    func deploymentGateways() throws {
        #expect(try configuration("transcript", gateways: []).deploymentGateways == ["web", "telephony", "crm"])
        #expect(ServiceConfiguration.defaults(service: "transcript", port: 7103).deploymentGateways.isEmpty, "without a deployment file, none")
    }
}
