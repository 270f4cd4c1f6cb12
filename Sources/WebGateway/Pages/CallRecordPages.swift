import CallTraceProto
import CallTraceRPC
import Foundation
import Hummingbird

/// A call's record as a whole (P10, P14): exporting it to the matter file (compliance
/// `ExportMatter`, matters.export) and deleting it everywhere (compliance `DeleteCall`,
/// records.delete), the latter after a page that names what goes. Compliance refuses the roles
/// without the permission; the call's page offers only what the person's role allows.
struct CallRecordPages: Sendable {
    let app: WebApp

    func register(on router: Router<WebContext>) {
        router.post("/calls/:call/export") { request, context in try await export(request, context) }
        router.get("/calls/:call/delete") { _, context in try await confirmDeletion(context) }
        router.post("/calls/:call/delete") { request, context in try await delete(request, context) }
    }

    /// The call page's "Export to matter file" and "Delete" sections, for the roles that may.
    static func actions(into data: inout [String: Any], call: Calltrace_Transcript_V1_Call, permissions: Set<Calltrace_Identity_V1_Permission>) {
        if permissions.contains(.mattersExport) { data["exporting"] = ["reference": call.matterReference] }
        if permissions.contains(.recordsDelete) { data["deleting"] = true }
    }

    private func export(_ request: Request, _ context: WebContext) async throws -> Response {
        let session = try app.session(context)
        let id = try context.parameters.require("call")
        let form = try await Form.read(request, context: context)
        let reference = form["reference"]
        guard !reference.isEmpty, reference.count <= 64, !reference.contains(where: \.isNewline) else {
            throw PageError.invalid("Enter the matter reference (one line, at most 64 characters).")
        }
        let bundle = try await app.backend.matters.exportMatter(.with {
            $0.orgID = session.orgID
            $0.callID = id
            $0.matterReference = reference
            $0.deleteAfterExport = form["delete"] == "yes"
        }, options: context.caller.options).bundle
        return WebApp.seeOther(BundlePages.path(bundle.bundleID))
    }

    /// What goes, named before anything does: the call's record, its recording, transcript and
    /// summary, and every share link of the recording.
    private func confirmDeletion(_ context: WebContext) async throws -> Response {
        let session = try app.session(context)
        let (chrome, permissions) = try await app.chrome(context, current: "Calls")
        guard permissions.contains(.recordsDelete) else {
            throw RPCError(.permissionDenied, "records.delete is needed")
        }
        let call = try await app.backend.calls.getCall(.with {
            $0.orgID = session.orgID
            $0.callID = try context.parameters.require("call")
        }, options: context.caller.options).call
        var data = CallPages.row(call)
        data["csrf"] = session.csrf
        data["callID"] = call.callID
        data["hasRecording"] = !call.recordingID.isEmpty
        return app.renderer.page("call-delete", title: "Delete this call?", data: data, chrome: chrome)
    }

    private func delete(_ request: Request, _ context: WebContext) async throws -> Response {
        let session = try app.session(context)
        let id = try context.parameters.require("call")
        let form = try await Form.read(request, context: context)
        guard form["confirm"] == "yes" else { throw PageError.invalid("Tick the box to confirm that the call and everything of it goes.") }
        let reason = form["reason"]
        guard reason.count <= 200, !reason.contains(where: \.isNewline) else { throw PageError.invalid("A reason is one line, at most 200 characters.") }
        let deletion = try await app.backend.deletions.deleteCall(.with {
            $0.orgID = session.orgID
            $0.callID = id
            $0.reason = reason.isEmpty ? "deleted in the web app" : reason
        }, options: context.caller.options).deletion
        let (chrome, _) = try await app.chrome(context, current: "Calls")
        let text = deletion.state == .done
            ? "The call, its recording, transcript, summary and share links are deleted."
            : "The call is deleted: it no longer appears anywhere. Its recording's files are being removed and will be gone within minutes."
        return app.renderer.message(title: "Call deleted", text: text, link: (href: "/calls", label: "Back to calls"), chrome: chrome, status: .ok)
    }
}
