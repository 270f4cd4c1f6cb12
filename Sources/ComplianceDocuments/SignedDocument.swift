import CallTraceKeys
import Foundation

/// What compliance signs with the deployment's Ed25519 key — deletion certificates (P11) and
/// audit checkpoints (P15): a title line naming the kind, the document as JSON (naming its
/// signing key), then a signature over every byte before the signature block. The title is
/// signed too, so one kind is never taken for another.
///
///     <TITLE>
///     { …the document, JSON, pretty-printed, keys sorted… }
///     -----BEGIN CALLTRACE SIGNATURE-----
///     ed25519 <key id> <base64 signature>
///     -----END CALLTRACE SIGNATURE-----
package enum SignedDocument {
    package static let begin = "-----BEGIN CALLTRACE SIGNATURE-----\n"
    package static let end = "-----END CALLTRACE SIGNATURE-----\n"

    /// The first 16 hex digits of the public key's SHA-256.
    package static func keyID(_ publicKey: Data) -> String {
        let digest = try! SHA256Stream()
        digest.update(publicKey)
        return String(digest.finish().hexString.prefix(16))
    }

    /// `document` with its `signing_key` added, under `title`, signed.
    package static func sign(title: String, _ document: [String: Any], with signer: Ed25519Signer) throws -> String {
        var document = document
        document["signing_key"] = ["algorithm": "ed25519", "public_key": signer.publicKey.base64EncodedString(), "key_id": keyID(signer.publicKey)]
        let json = String(decoding: try JSONSerialization.data(withJSONObject: document, options: [.prettyPrinted, .sortedKeys]), as: UTF8.self)
        let body = title + json + "\n"
        let signature = try signer.sign(Data(body.utf8))
        return body + begin + "ed25519 \(keyID(signer.publicKey)) \(signature.base64EncodedString())\n" + end
    }

    /// What `open` read: the JSON (when it parsed), the key id it names, and why it is not valid (nil: valid).
    package struct Opened {
        package var json: [String: Any]?
        package var keyID = ""
        package var problem: String?
    }

    /// Checks that `text` is a `title` document signed by `pinned` — the key as the verifier holds
    /// it, never the key the document names (anyone can sign a forgery with a fresh key and name
    /// that) — over every byte before the signature. `kind` names it in reasons ("deletion certificate").
    package static func open(_ text: String, title: String, kind: String, pinned: Data) -> Opened {
        let noun = kind.split(separator: " ").last.map(String.init) ?? kind
        guard text.hasPrefix(title), let split = text.range(of: begin) else { return Opened(problem: "not a CallTrace \(kind)") }
        let body = String(text[..<split.lowerBound])
        let lines = text[split.upperBound...].split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.count == 3, lines[1] + "\n" == end, lines[2].isEmpty else { return Opened(problem: "the signature block is malformed") }
        let parts = lines[0].split(separator: " ")
        guard parts.count == 3, parts[0] == "ed25519", let signature = Data(base64Encoded: String(parts[2])) else {
            return Opened(problem: "the signature line is malformed")
        }
        let json = try? JSONSerialization.jsonObject(with: Data(body.dropFirst(title.count).utf8)) as? [String: Any]
        guard let signing = json?["signing_key"] as? [String: Any], let keyText = signing["public_key"] as? String,
              let publicKey = Data(base64Encoded: keyText) else { return Opened(json: json, problem: "the \(noun) does not name its signing key") }
        let id = keyID(publicKey)
        guard String(parts[1]) == id, signing["key_id"] as? String == id else { return Opened(json: json, keyID: id, problem: "the key id does not match the key") }
        if pinned != publicKey {
            return Opened(json: json, keyID: id, problem: "signed by key \(id), not by the pinned key \(keyID(pinned))")
        }
        guard Ed25519Signer.verify(signature, of: Data(body.utf8), publicKey: publicKey) else {
            return Opened(json: json, keyID: id, problem: "the signature does not match: the \(noun) was altered")
        }
        return Opened(json: json, keyID: id)
    }
}
