import CallTraceServiceHost
import CallTraceTestSupport
import ComplianceDomain
import Foundation
import IdentityDomain
import MediaDomain
import Testing
import TranscriptDomain

/// The four services' audit vocabularies, side by side: what firms filter their trail on.
@Suite("P15: every service's audit vocabulary is well-formed, British, and the one the README lists")
struct AuditVocabularyTests {
    static let vocabularies: [(service: String, actions: [String], problems: [String])] = [
        ("identity", IdentityAuditAction.allCases.map(\.rawValue), AuditAction.problems(in: IdentityAuditAction.self)),
        ("media", MediaAuditAction.allCases.map(\.rawValue), AuditAction.problems(in: MediaAuditAction.self)),
        ("transcript", TranscriptAuditAction.allCases.map(\.rawValue), AuditAction.problems(in: TranscriptAuditAction.self)),
        ("compliance", ComplianceAuditAction.allCases.map(\.rawValue), AuditAction.problems(in: ComplianceAuditAction.self)),
    ]

    /// The backquoted names in the README table's row for `row` (an example in brackets left
    /// out; a family `operator.access.<permission>` as its stem).
    static func listed(_ row: String, in readme: String) throws -> [String] {
        let line = try #require(readme.split(separator: "\n").first { $0.hasPrefix("  | \(row) | ") }, "no row for \(row)")
        let cell = line.dropFirst("  | \(row) | ".count).replacing(/\([^)]*\)/, with: "")
        return cell.matches(of: /`([^`]+)`/).map { String($0.1).replacingOccurrences(of: ".<permission>", with: "") }
    }

    @Test("No action in any vocabulary is malformed or spelt `organization`; each service names each action once")
    func wellFormed() {
        for vocabulary in Self.vocabularies {
            #expect(vocabulary.problems.isEmpty, "\(vocabulary.service): \(vocabulary.problems)")
            #expect(Set(vocabulary.actions).count == vocabulary.actions.count, "\(vocabulary.service)")
            #expect(vocabulary.actions.allSatisfy { !$0.contains("organization") }, "\(vocabulary.service)")
        }
        // The two offboarding purges read alike, so one filter finds both services' events.
        #expect(MediaAuditAction.organisationPurged.rawValue == TranscriptAuditAction.organisationPurged.rawValue)
    }

    @Test("services/compliance/README.md lists exactly each service's actions and the resource kinds")
    func readmeListsTheVocabulary() throws {
        let readme = try String(contentsOf: repositoryRoot.appendingPathComponent("services/compliance/README.md"), encoding: .utf8)
        for vocabulary in Self.vocabularies {
            #expect(try Self.listed(vocabulary.service, in: readme) == vocabulary.actions, "\(vocabulary.service)")
        }
        #expect(try Self.listed("resources", in: readme) == AuditResource.Kind.allCases.map { "\($0.rawValue):" })
    }
}
