import CallTraceProto
import Foundation
import Hummingbird

/// Tracking numbers, the marketing source each stands for and how calls to it are connected.
/// Transcript lets anyone with reports.read list them (analysts read which number is which
/// advert, and each number's routing with the phones masked) and only settings.manage (admins)
/// assign, release and route them, so the forms are shown only to those; whatever a form
/// sends, transcript decides under the person's token.
struct NumberPages: Sendable {
    let app: WebApp

    func register(on router: Router<WebContext>) {
        router.get("/numbers") { request, context in
            let notice: String? = switch request.query["done"] {
            case "assigned": "Saved. Calls to the number from now on count for its new source; earlier calls keep theirs."
            case "released": "Released. The number no longer takes calls for the firm; its history stays."
            case "routed": "Routing saved. The next call to the number is connected this way."
            default: nil
            }
            return try await list(request, context, notice: notice)
        }
        router.post("/numbers/assign") { request, context in try await assign(request, context) }
        router.post("/numbers/release") { request, context in try await release(request, context) }
        router.get("/numbers/routing") { request, context in try await routingForm(request, context) }
        router.post("/numbers/routing") { request, context in try await saveRouting(request, context) }
    }

    static let channels: [(value: String, channel: Calltrace_Transcript_V1_Channel)] = [
        ("google-ads", .googleAds), ("paid-social", .paidSocial), ("organic", .organic), ("directory", .directory),
        ("referral", .referral), ("print", .print), ("email", .email), ("other", .other),
    ]

    private func list(_ request: Request, _ context: WebContext, notice: String?) async throws -> Response {
        let session = try app.session(context)
        let (chrome, permissions) = try await app.chrome(context, current: "Numbers")
        let history = request.query["history"] == "1"
        let numbers = try await app.backend.trackingNumbers.listTrackingNumbers(.with {
            $0.orgID = session.orgID
            $0.includeHistory = history
        }, options: context.caller.options).trackingNumbers
        let manage = permissions.contains(.settingsManage)
        var data: [String: Any] = [
            "csrf": session.csrf, "history": history,
            "numbers": numbers.map { number -> [String: Any] in
                var row: [String: Any] = [
                    "number": number.number, "display": Self.national(number.number), "source": number.source,
                    "channel": Formats.channel(number.channel), "from": Formats.dateTime(unixMs: number.effectiveFromUnixMs),
                    "current": number.effectiveUntilUnixMs == 0, "manage": manage && number.effectiveUntilUnixMs == 0,
                ]
                if !number.campaign.isEmpty { row["campaign"] = number.campaign }
                if number.effectiveUntilUnixMs > 0 { row["until"] = Formats.dateTime(unixMs: number.effectiveUntilUnixMs) }
                if number.effectiveUntilUnixMs == 0 {
                    row["routing"] = RoutingSummary(number.hasRouting ? number.routing : nil, source: number.source).values
                    row["routingHref"] = "/numbers/routing?number=" + Form.escape(number.number)
                }
                return row
            },
            "empty": numbers.isEmpty,
        ]
        if manage {
            data["assign"] = ["channels": Self.channels.map { ["value": $0.value, "label": Formats.channel($0.channel)] }]
        }
        if let notice { data["notice"] = notice }
        return app.renderer.page("numbers", title: "Tracking numbers", data: data, chrome: chrome)
    }

    private func assign(_ request: Request, _ context: WebContext) async throws -> Response {
        let session = try app.session(context)
        let form = try await Form.read(request, context: context)
        guard !form["number"].isEmpty, form["number"].count <= 30 else { throw PageError.invalid("Enter the tracking number, e.g. 0118 496 0001.") }
        guard !form["source"].isEmpty, form["source"].count <= 100 else { throw PageError.invalid("Name the marketing source (at most 100 characters).") }
        guard form["campaign"].count <= 100 else { throw PageError.invalid("A campaign is at most 100 characters.") }
        guard let channel = Self.channels.first(where: { $0.value == form["channel"] })?.channel else { throw PageError.invalid("Choose the channel.") }
        _ = try await app.backend.trackingNumbers.assignTrackingNumber(.with {
            $0.orgID = session.orgID
            $0.number = form["number"]
            $0.source = form["source"]
            $0.channel = channel
            $0.campaign = form["campaign"]
        }, options: context.caller.options)
        return WebApp.seeOther("/numbers?done=assigned")
    }

    private func release(_ request: Request, _ context: WebContext) async throws -> Response {
        let session = try app.session(context)
        let form = try await Form.read(request, context: context)
        guard !form["number"].isEmpty, form["number"].count <= 30 else { throw PageError.invalid("Which number?") }
        _ = try await app.backend.trackingNumbers.releaseTrackingNumber(.with {
            $0.orgID = session.orgID
            $0.number = form["number"]
        }, options: context.caller.options)
        return WebApp.seeOther("/numbers?done=released")
    }

    /// "+441184960001" → "0118 496 0001" (UK numbers as people write them), a masked
    /// "+44 7700 ••••23" → "07700 ••••23"; others as they are.
    static func national(_ e164: String) -> String {
        if e164.hasPrefix("+44 ") { return "0" + e164.dropFirst(4) }
        guard e164.hasPrefix("+44"), e164.count == 13 else { return e164 }
        let digits = Array("0" + e164.dropFirst(3))
        func group(_ sizes: [Int]) -> String {
            var out: [String] = [], index = 0
            for size in sizes {
                out.append(String(digits[index..<index + size]))
                index += size
            }
            return out.joined(separator: " ")
        }
        switch (digits[1], digits[2]) {
        case ("2", _): return group([3, 4, 4])                    // 020 7946 0000
        case ("1", "1"): return group([4, 3, 4])                  // 0118 496 0001
        case ("1", _) where digits[3] == "1": return group([4, 3, 4])  // 0161 496 0000
        case ("7", _): return group([5, 6])                       // 07700 900123
        case ("1", _): return group([5, 6])                       // 01632 960000
        default: return group([4, 3, 4])                          // 0300 / 0800 numbers
        }
    }
}
