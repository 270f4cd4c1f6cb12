import CallTraceAPI
import CallTraceKeys
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceStorage
import Foundation
import SwiftProtobuf

/// A bundle to build.
struct BundleBuild: IdentifiedJob {
    static let kind = "bundle.build"
    let id: String
}

struct BundleJob: DurableJobHandler {
    let rules: BundleRules
    let contents: BundleContents

    func run(_ work: BundleBuild, job: Job) async throws -> JobOutcome {
        try await rules.build(work.id, attempt: job.attempts, contents: contents)
        return .done
    }
}

/// Hourly (scheduled): bundles past their expiry are destroyed.
struct BundleExpiry: PayloadFreeJob { static let kind = "bundle.expire" }

struct BundleExpiryJob: DurableJobHandler {
    let rules: BundleRules

    func run(_ work: BundleExpiry, job: Job) async throws -> JobOutcome {
        _ = try await rules.expire()
        return .done
    }
}
