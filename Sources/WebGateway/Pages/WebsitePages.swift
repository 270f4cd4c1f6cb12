import CallTraceProto
import CallTraceRPC
import HTTPTypes
import Hummingbird

/// The firm's websites (issue 32): each with the tag a developer pastes (`/dni.js` and the
/// website's public key), the firm's own numbers it replaces, the source its visitors come under,
/// and its pool of tracking numbers, one visitor at a time. Transcript lets settings.manage
/// change them and reports.read see them; the page is linked from Numbers.
struct WebsitePages: Sendable {
    let app: WebApp

    func register(on router: Router<WebContext>) {
        router.get("/numbers/websites") { request, context in
            let notice: String? = switch request.query["done"] {
            case "created": "Website added. Paste its tag into every page of the site, then give it a pool of numbers."
            case "pooled": "Pool saved. Visitors who consent see one of these numbers from their next page."
            case "deleted": "Website deleted. Its tag now changes nothing; its visits stay until the firm's retention removes them."
            default: nil
            }
            return try await list(context, notice: notice)
        }
        router.post("/numbers/websites") { request, context in try await create(request, context) }
        router.post("/numbers/websites/:website/pool") { request, context in try await pool(request, context) }
        router.post("/numbers/websites/:website/delete") { request, context in try await delete(request, context) }
    }

    private func list(_ context: WebContext, notice: String? = nil, typed: [String: String] = [:], problem: FormProblem? = nil,
                      status: HTTPResponse.Status = .ok) async throws -> Response {
        let session = try app.session(context)
        let (chrome, permissions) = try await app.chrome(context, current: "Numbers")
        let options = context.caller.options
        let websites = try await app.backend.websites.listWebsites(.with { $0.orgID = session.orgID }, options: options).websites
        let numbers = try await app.backend.trackingNumbers.listTrackingNumbers(.with { $0.orgID = session.orgID }, options: options).trackingNumbers
        let managing = permissions.contains(.settingsManage)
        var data: [String: Any] = typed
        data["csrf"] = session.csrf
        data["managing"] = managing
        data["empty"] = websites.isEmpty
        data["sources"] = Array(Set(numbers.map(\.source))).sorted().map { ["source": $0, "selected": $0 == typed["source"]] }
        // A number serves one website's pool: another website's shows, but cannot be ticked.
        let poolOf = Dictionary(websites.flatMap { website in website.poolNumbers.map { ($0, website) } }, uniquingKeysWith: { first, _ in first })
        var shown: [[String: Any]] = []
        for website in websites {
            let status = try await app.backend.websites.getPoolStatus(.with { $0.orgID = session.orgID; $0.websiteID = website.websiteID },
                                                                      options: options)
            let pooled = Set(website.poolNumbers)
            shown.append([
                "id": website.websiteID, "name": website.name, "key": website.siteKey, "origins": website.origins.joined(separator: ", "),
                "targets": website.targetNumbers.map(NumberPages.national).joined(separator: ", "), "source": website.source,
                "snippet": "<script src=\"\(app.publicURL.base)/dni.js\" data-site-key=\"\(website.siteKey)\" async></script>",
                "status": "\(status.held) of \(status.poolSize) numbers held now; in the last 30 days \(status.visits) visits and "
                    + "\(status.takenOver) taken over from another visitor" + (status.takenOver > 0 ? " (the pool ran out: add numbers)." : "."),
                "numbers": numbers.filter { $0.source == website.source || pooled.contains($0.number) }.map { number -> [String: Any] in
                    var shown: [String: Any] = ["number": number.number, "label": NumberPages.national(number.number), "checked": pooled.contains(number.number)]
                    if let other = poolOf[number.number], other.websiteID != website.websiteID { shown["elsewhere"] = other.name }
                    return shown
                },
            ])
        }
        data["websites"] = shown
        if let notice { data["notice"] = notice }
        if let problem { data["problem"] = problem.values }
        return app.renderer.page("websites", title: "Websites", data: data, chrome: chrome, status: status)
    }

    private func create(_ request: Request, _ context: WebContext) async throws -> Response {
        let session = try app.session(context)
        let form = try await Form.read(request, context: context)
        func lines(_ field: String) -> [String] {
            form[field].split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        do {
            _ = try await app.backend.websites.createWebsite(.with {
                $0.orgID = session.orgID
                $0.settings = .with { $0.name = form["name"]; $0.origins = lines("origins"); $0.targetNumbers = lines("targets"); $0.source = form["source"] }
            }, options: context.caller.options)
        } catch let error as RPCError where error.code == .invalidArgument {
            let field = ["origins", "target_numbers", "source"].first { error.message.hasPrefix($0) }.map { $0 == "target_numbers" ? "targets" : $0 } ?? "name"
            return try await list(context, typed: ["name": form["name"], "origins": form["origins"], "targets": form["targets"], "source": form["source"]],
                                  problem: FormProblem(Failures.sentence(error.message), field: field), status: .badRequest)
        }
        return WebApp.seeOther("/numbers/websites?done=created")
    }

    private func pool(_ request: Request, _ context: WebContext) async throws -> Response {
        let session = try app.session(context)
        let website = try context.parameters.require("website")
        let form = try await Form.read(request, context: context)
        _ = try await app.backend.websites.setPoolNumbers(.with {
            $0.orgID = session.orgID; $0.websiteID = website; $0.numbers = form.names(after: "number-")
        }, options: context.caller.options)
        return WebApp.seeOther("/numbers/websites?done=pooled")
    }

    private func delete(_ request: Request, _ context: WebContext) async throws -> Response {
        let session = try app.session(context)
        let website = try context.parameters.require("website")
        _ = try await Form.read(request, context: context)
        _ = try await app.backend.websites.deleteWebsite(.with { $0.orgID = session.orgID; $0.websiteID = website }, options: context.caller.options)
        return WebApp.seeOther("/numbers/websites?done=deleted")
    }
}
