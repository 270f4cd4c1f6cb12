import CallTraceKeys
import Foundation

// The documents compliance signs, as anyone holding the deployment's public key checks them:
// the service itself, the `calltrace` CLI, a firm's own tools. Signing them (from compliance's
// rows) stays in ComplianceDomain.

/// The deletion certificate (P11): a JSON document of what each service purged and when, the
/// audit chain's head and the export's digest, followed by an Ed25519 signature over every byte
/// before it. `verify` needs nothing but the text (and, to pin the signer, its public key).
///
///     CALLTRACE DELETION CERTIFICATE v1
///     { …the certificate, JSON… }
///     -----BEGIN CALLTRACE SIGNATURE-----
///     ed25519 <key id> <base64 signature>
///     -----END CALLTRACE SIGNATURE-----
public enum DeletionCertificate {
    package static let title = "CALLTRACE DELETION CERTIFICATE v1\n"
    package static let begin = SignedDocument.begin
    package static let end = SignedDocument.end

    /// The first 16 hex digits of the public key's SHA-256.
    public static func keyID(_ publicKey: Data) -> String { SignedDocument.keyID(publicKey) }

    public struct Verdict: Sendable {
        public let valid: Bool
        /// Why not, or what was checked.
        public let reason: String
        public let keyID: String
        public let organisation: String
    }

    /// Checks that the certificate was signed by `pinned`, the deployment's key as the verifier
    /// holds it, over every byte before the signature. The key a certificate names is never
    /// trusted on its own word: anyone can sign a forgery with a fresh key and name that.
    public static func verify(_ text: String, pinned: Data) -> Verdict {
        let opened = SignedDocument.open(text, title: title, kind: "deletion certificate", pinned: pinned)
        let org = opened.json?["organisation"] as? String ?? ""
        if let problem = opened.problem { return Verdict(valid: false, reason: problem, keyID: opened.keyID, organisation: org) }
        return Verdict(valid: true, reason: "signature valid (key \(opened.keyID), pinned)", keyID: opened.keyID, organisation: org)
    }
}

/// An audit checkpoint as the firm keeps it: the layout of a deletion certificate (see
/// `SignedDocument`) under its own title, so neither is ever taken for the other.
///
///     CALLTRACE AUDIT CHECKPOINT v1
///     {
///       "chain_index" : 42,
///       "checkpoint_id" : "ckp_…",
///       "head" : "<the head's link, hex>",
///       "organisation" : "org_…",
///       "reason" : "daily",
///       "signed_at" : "2026-11-03T01:00:00Z",
///       "signed_at_unix_ms" : 1793667600000,
///       "signing_key" : { "algorithm" : "ed25519", "key_id" : "…", "public_key" : "…" }
///     }
///     -----BEGIN CALLTRACE SIGNATURE-----
///     ed25519 <key id> <base64 signature>
///     -----END CALLTRACE SIGNATURE-----
public enum AuditCheckpointDocument {
    package static let title = "CALLTRACE AUDIT CHECKPOINT v1\n"

    public struct Verdict: Sendable {
        public var valid = false
        /// Why not, or what was checked.
        public var reason = ""
        public var keyID = ""
        public var organisation = ""
        public var checkpointID = ""
        /// The head's chain index and link (hex) when it was signed.
        public var chainIndex: Int64 = 0
        public var head = ""
        public var signedAtUnixMs: Int64 = 0
        /// daily, export or requested.
        public var signedFor = ""
    }

    /// Checks that the checkpoint was signed by `pinned`, the deployment's key as the verifier
    /// holds it (never the key the checkpoint names), over every byte before the signature.
    public static func verify(_ text: String, pinned: Data) -> Verdict {
        let opened = SignedDocument.open(text, title: title, kind: "audit checkpoint", pinned: pinned)
        let json = opened.json ?? [:]
        var verdict = Verdict(reason: opened.problem ?? "signature valid (key \(opened.keyID), pinned)", keyID: opened.keyID,
                              organisation: json["organisation"] as? String ?? "", checkpointID: json["checkpoint_id"] as? String ?? "",
                              chainIndex: (json["chain_index"] as? NSNumber)?.int64Value ?? 0, head: json["head"] as? String ?? "",
                              signedAtUnixMs: (json["signed_at_unix_ms"] as? NSNumber)?.int64Value ?? 0, signedFor: json["reason"] as? String ?? "")
        verdict.valid = opened.problem == nil
        return verdict
    }
}
