import CallTraceDeploymentSupport
import CallTraceRPC
import CallTraceServiceHost
import CallTraceTestSupport
import Foundation
import Testing

/// A peer given as several addresses is reached as replicas (`ReplicaSet`): media asks identity
/// about every user's token, and finds it at the second address when nothing listens at the first.
@Suite("Peers at several addresses: a service reaches the replica that answers")
struct PeerReplicasTests {
    @Test("Media's identity peer as two addresses, the first with nothing listening: every user's call is authorised, and listing, upload and playback work")
    func firstReplicaDown() async throws {
        let deployment = try await MediaDeployment(adjustMedia: { configuration in
            let identity = configuration.peers["identity"]!
            configuration.peers["identity"] = "127.0.0.1:\(ServiceSetup.nothingListens),\(identity)"
        })
        let (org, admin) = try await deployment.organisation()
        let file = wavFile(samples: 20_000)
        let stored = try await deployment.upload(file, org: org, call: "call-replicas")
        for _ in 0..<4 {
            let listed = try await deployment.gateway.listRecordings(.with { $0.orgID = org }, options: try bearer(admin))
            #expect(listed.recordings.map(\.recordingID) == [stored.recordingID])
        }
        #expect(try await deployment.gateway.play(stored.recordingID, org: org, options: try bearer(admin)) == file)
        await deployment.stop()
    }
}
