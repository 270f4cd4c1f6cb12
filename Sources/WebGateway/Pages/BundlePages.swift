import CallTraceProto
import CallTraceRPC
import Foundation
import HTTPTypes
import Hummingbird

/// Bundles (a subject's access bundle, a matter file, the offboarding export): a page with what
/// the bundle is, its size and SHA-256 before anyone downloads it, and the download, streamed
/// from compliance's `DownloadBundle` to the browser piece by piece (`StreamedDownload`), never
/// held whole. Compliance decides who may read each kind and audits every download.
struct BundlePages: Sendable {
    let app: WebApp

    func register(on router: Router<WebContext>) {
        router.get("/bundles/:bundle") { _, context in try await show(context) }
        router.get("/bundles/:bundle/download") { _, context in try await download(context) }
    }

    static func kind(_ kind: Calltrace_Compliance_V1_BundleKind) -> (name: String, file: String) {
        switch kind {
        case .subjectAccess: ("Subject access bundle", "subject-access")
        case .matter: ("Matter file", "matter-file")
        case .offboarding: ("Offboarding export", "offboarding-export")
        default: ("Bundle", "bundle")
        }
    }

    static func path(_ id: String) -> String { "/bundles/\(id.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? "")" }

    private func bundle(_ context: WebContext) async throws -> Calltrace_Compliance_V1_Bundle {
        let session = try app.session(context)
        let id = try context.parameters.require("bundle")
        return try await app.backend.bundles.getBundle(.with {
            $0.orgID = session.orgID
            $0.bundleID = id
        }, options: context.caller.options).bundle
    }

    private func show(_ context: WebContext) async throws -> Response {
        let (chrome, _) = try await app.chrome(context, current: "")
        let bundle = try await bundle(context)
        let kind = Self.kind(bundle.kind)
        var data: [String: Any] = [
            "id": bundle.bundleID, "kind": kind.name, "created": Formats.dateTime(unixMs: bundle.createdAtUnixMs),
            "ready": bundle.state == .ready, "building": bundle.state == .building,
        ]
        switch bundle.state {
        case .ready:
            data["size"] = Formats.size(bytes: bundle.sizeBytes)
            data["bytes"] = bundle.sizeBytes
            data["sha256"] = bundle.sha256
            data["entries"] = bundle.entries
            data["expires"] = Formats.dateTime(unixMs: bundle.expiresAtUnixMs)
            data["downloads"] = bundle.downloads
        case .building: break
        case .failed: data["problem"] = "It could not be built: \(Failures.sentence(bundle.failureReason)) Start it again from where you asked for it."
        default: data["problem"] = "It has expired (bundles are kept 7 days after they are ready) and can no longer be downloaded."
        }
        switch bundle.kind {
        case .subjectAccess: data["back"] = ["href": "/requests/\(bundle.subject)", "label": "Back to the request"]
        case .matter: data["back"] = ["href": "/calls/\(bundle.subject)", "label": "Back to the call"]
        case .offboarding: data["back"] = ["href": "/settings/offboarding", "label": "Back to offboarding"]
        default: break
        }
        return app.renderer.page("bundle", title: kind.name, data: data, chrome: chrome)
    }

    /// The archive as compliance streams it: a refusal or a bundle not ready is a page before any
    /// header is written; then every piece goes to the browser as it comes.
    private func download(_ context: WebContext) async throws -> Response {
        let session = try app.session(context)
        let bundle = try await bundle(context)
        guard bundle.state == .ready else { throw PageError.invalid("This bundle is not ready to download. Open its page to see where it stands.") }
        let bundles = app.backend.bundles, options = context.caller.streamOptions, id = bundle.bundleID
        let headers: HTTPFields = [
            .contentType: "application/x-tar",
            .contentDisposition: StreamedDownload.attachment("\(Self.kind(bundle.kind).file)-\(id).tar"),
        ]
        return try await StreamedDownload.response(headers: headers, contentLength: Int(bundle.sizeBytes)) { write in
            try await bundles.downloadBundle(.with {
                $0.orgID = session.orgID
                $0.bundleID = id
            }, options: options) { stream in
                for try await piece in stream { try await write(piece.data) }
            }
        }
    }
}
