import CallTraceAPI
import CallTraceDeploymentSupport
import CallTraceProto
@testable import CallTraceRPC
import CallTraceServiceHost
import CallTraceSync
import CallTraceTestSupport
import Foundation
import SwiftProtobuf
import Testing
@testable import WebGateway

/// P6 and P8 under attack (issue 33): no firm sees, changes or learns of another's data. Every
/// method of every service and gateway (from protoc's descriptor set: a new RPC is in the matrix
/// without anyone adding it), every method the web gateway relays (its relay table) and every
/// route of its pages (its router) is sent by each attacker (`Attacker`) with firm A's ids, with
/// made-up ids of the same shape and, for firm B's principals, with B's own. A cell fails when
/// an answer carries any of A's data the request did not (`MatrixSeeds.leaks`), when A's rows in
/// any database or key store change (`MatrixDigest`), or when A's ids are answered otherwise than
/// made-up ones (status and message, the ids sent said alike): that would confirm they exist.
/// A's own admin reading with A's ids is the control: the same scan must see A's data there.
@Suite("P6, P8: the cross-tenant matrix", .serialized)
struct CrossTenantMatrixTests {
    static let web = TemporaryPKI.identity("gateway", "web")
    static let support = TemporaryPKI.identity("operator", "support")

    /// The six of the deployment, the four services and both gateways; identity's administering
    /// operator is `ops` (the matrix's operators, `support`, administer no organisation).
    /// - Parameter adjust: the web gateway's settings beyond the test's.
    static func deployment(adjust: @escaping (inout ServiceConfiguration) -> Void = { _ in }) async throws
        -> (WebDeployment, MatrixSeeds, expired: (session: String, apiToken: String)) {
        let d = try await WebDeployment(telephony: true, adjust: adjust, adjustIdentity: { try? $0.set("admin_operators", "ops") })
        let (a, b, expired) = try await d.matrixFirms()
        return (d, MatrixSeeds(a: a, b: b, today: MatrixSeeds.ukDay(d.services.calls.compliance.clock.nowUnixMs)), expired)
    }

    static func hosts(_ d: WebDeployment) -> [String: InProcessService] {
        ["identity": d.services.identity, "media": d.services.media, "transcript": d.services.calls.transcript,
         "compliance": d.services.calls.compliance, "telephony": d.telephony!.gateway, "web": d.web]
    }

    /// What A's own admin must be shown of A's, so a matrix whose scan missed them would fail.
    static let contentTheScanMustSee: Set<String> = ["A's call id", "A's recording id", "A's caller's number", "A's transcript"]

    /// What firm A's rows are recognised by.
    static func rowKeys(_ a: MatrixFirm) -> Set<String> { Set(a.markers.map(\.text) + [a.caller]) }

    @Test("Every method of every service and gateway: no attacker reads, changes or learns of firm A's data")
    func everyMethod() async throws {
        let started = ContinuousClock.now
        let (d, seeds, expired) = try await Self.deployment()
        let (a, b) = (seeds.a, seeds.b)
        let hosts = Self.hosts(d)
        let catalogue = try await ProtoCatalogue.load()
        // Reads first; what ends a session or a firm last, so B's principals last the run.
        func order(_ m: ProtoCatalogue.Method) -> Int { m.name.contains("Logout") || m.name.contains("Offboard") ? 3 : m.risk }
        let methods = catalogue.methods.filter { !$0.hosts(among: hosts.keys.sorted()).isEmpty }
            .sorted { (order($0), $0.fullName) < (order($1), $1.fullName) }
        let tally = MatrixTally("the services' and gateways' methods")
        let matrixGrants = Locked<Set<String>>([])
        let digest = { try await MatrixDigest.take(Array(hosts.values), org: a.org, keys: Self.rowKeys(a), ignoring: matrixGrants.withLock { $0 }) }
        let adminOfA = Calltrace_Identity_V1_IdentityServiceClient(try d.services.identity.client())

        for method in methods {
            for hostName in method.hosts(among: hosts.keys.sorted()) {
                let host = hosts[hostName]!
                guard let policy = host.instance.server.core.router.route(named: method.fullName)?.policy else {
                    tally.fail("\(method.fullName) is in proto/ but \(hostName) does not serve it")
                    continue
                }
                let admits = { (uri: String) in policy.allows(PeerIdentity(uri: uri)!) }
                let wrongService = ["identity", "media", "transcript", "compliance"].map { TemporaryPKI.identity("service", $0) }.first { !admits($0) }
                let wrongGateway = ["web", "telephony", "crm"].map { TemporaryPKI.identity("gateway", $0) }.first { !admits($0) }
                // A peer's own call (a service or gateway acting as itself) is not a person's:
                // the web gateway calling it is the gateway, trusted, not a person it relays.
                let peersOwn = method.isPeersOwnCall && admits(Self.web)
                func caller(_ attacker: Attacker) -> (identity: String, token: String?)? {
                    switch attacker {
                    case .noToken: peersOwn ? nil : (Self.web, nil)
                    case .expiredToken: peersOwn ? nil : (Self.web, expired.session)
                    case .otherFirmsToken: peersOwn ? nil : (Self.web, b.admin.session)
                    case .weakRole: peersOwn ? nil : (Self.web, a.analyst.session)
                    case .suspendedUser: peersOwn ? nil : (Self.web, a.suspended.session)
                    case .operatorWithoutGrant, .operatorWithOtherFirmsGrant, .operatorWithGrantOfAnotherScope: (Self.support, nil)
                    case .wrongServiceCertificate: wrongService.map { ($0, a.admin.session) }
                    case .wrongGatewayCertificate: wrongGateway.map { ($0, a.admin.session) }
                    }
                }
                let cellName = "\(method.fullName) on \(hostName)"
                func send(_ set: IdSet, as who: (identity: String, token: String?), grant: String? = nil) async -> (Data, [String: String], MatrixAnswer) {
                    let sent = seeds.values(set, grant: grant)
                    let request = catalogue.plausibleRequest(for: method.input, seeds: sent, numbers: MatrixSeeds.numbers)
                    return (request, sent, await Self.send(method, request, to: host, as: who.identity, token: who.token))
                }

                // The control: A's admin reads A's data through the web gateway.
                if method.risk == 0, case .some(let rule) = method.access.rule, rule.isPersons, admits(Self.web) {
                    let (request, _, answer) = await send(.victims, as: (Self.web, a.admin.session))
                    tally.control(cellName, answer, sees: seeds.leaks(in: answer, request: request, operator: false))
                }
                // A's own user where its role allows the method: sent, not judged, and before the digest.
                let entitled = method.entitles(a.analystMay)
                if entitled, let who = caller(.weakRole) {
                    for set in Attacker.weakRole.idSets {
                        tally.cell(method.fullName, .weakRole, set, await send(set, as: who).2)
                    }
                }

                let before = try await digest()
                var answers: [(Attacker, IdSet, Data, [String: String], MatrixAnswer)] = []
                for attacker in Attacker.allCases where attacker != .operatorWithGrantOfAnotherScope && !(attacker == .weakRole && entitled) {
                    guard let who = caller(attacker) else { tally.notApplicable(attacker); continue }
                    for set in attacker.idSets {
                        let (request, sent, answer) = await send(set, as: who)
                        answers.append((attacker, set, request, sent, answer))
                        tally.cell(method.fullName, attacker, set, answer)
                    }
                }
                // A grant from A, of a scope the method does not need, for this method's cells only.
                let scope: Calltrace_Identity_V1_Permission = method.permission == .reportsRead ? .auditRead : .reportsRead
                var grant: String?
                if admits(Self.support) {
                    grant = try await adminOfA.createSupportGrant(.with {
                        $0.orgID = a.org; $0.permissions = [scope]; $0.durationSeconds = 600; $0.reason = "Matrix \(method.name)"
                    }, options: try bearer(a.admin.session)).grantID
                    matrixGrants.withLock { _ = $0.insert(grant!) }
                }
                for set in Attacker.operatorWithGrantOfAnotherScope.idSets {
                    let (request, sent, answer) = await send(set, as: caller(.operatorWithGrantOfAnotherScope)!, grant: grant)
                    answers.append((.operatorWithGrantOfAnotherScope, set, request, sent, answer))
                    tally.cell(method.fullName, .operatorWithGrantOfAnotherScope, set, answer)
                }
                if let grant {
                    let revoked = await code { _ = try await adminOfA.revokeSupportGrant(.with { $0.orgID = a.org; $0.grantID = grant }, options: try bearer(a.admin.session)) }
                    if revoked != .ok { tally.fail("\(cellName): A's own support grant was gone when A revoked it (\(String(describing: revoked)))") }
                }
                let changed = try await digest().changes(since: before)
                if !changed.isEmpty { tally.fail("\(cellName): firm A's data changed: \(changed.joined(separator: ", "))") }
                Self.judge(answers, seeds: seeds, cell: cellName, tally: tally)
            }
        }
        print(tally.report(seconds: Self.seconds(since: started)))
        #expect(tally.failures.isEmpty, "\(tally.failures.prefix(30))")
        #expect(methods.count == catalogue.methods.filter { $0.package != "testing" }.count, "every method of proto/ but the test-only echo service's")
        #expect(tally.controlsSeeingA.count >= 10, "the control saw A's data in \(tally.controlsSeeingA)")
        #expect(tally.controlsSaw.isSuperset(of: Self.contentTheScanMustSee), "\(tally.controlsSaw)")
        #expect(tally.controlsRefused.isEmpty, "\(tally.controlsRefused)")
        await d.stop()
    }

    /// The failures among one method's answers: A's data in an answer (`MatrixSeeds.leaks`), or
    /// A's ids answered otherwise than made-up ones.
    static func judge(_ answers: [(Attacker, IdSet, Data, [String: String], MatrixAnswer)], seeds: MatrixSeeds, cell: String, tally: MatrixTally) {
        for (attacker, set, request, sent, answer) in answers {
            let leaked = seeds.leaks(in: answer, request: request, operator: attacker.isOperator)
            if !leaked.isEmpty { tally.fail("\(cell) · \(attacker.rawValue) · \(set.rawValue): \(answer.code) carrying \(Set(leaked).sorted())") }
            guard let twinSet = attacker.twin(of: set), let twin = answers.first(where: { $0.0 == attacker && $0.1 == twinSet }) else { continue }
            let mine = (answer.code, seeds.normalised(answer.message, sent: sent))
            let theirs = (twin.4.code, seeds.normalised(twin.4.message, sent: twin.3))
            if mine != theirs {
                tally.fail("\(cell) · \(attacker.rawValue): \(set.rawValue) answered \(mine.0) \"\(mine.1)\", \(twinSet.rawValue) \(theirs.0) \"\(theirs.1)\"")
            }
        }
    }

    /// Sends one request's bytes to `method` as `identity` with `token`.
    static func send(_ method: ProtoCatalogue.Method, _ request: Data, to host: InProcessService, as identity: String,
                     token: String?) async -> MatrixAnswer {
        guard let client = try? host.client(identity: identity), var options = try? token.map(bearer) ?? CallOptions() else {
            return MatrixAnswer(code: "no client", message: "", body: Data())
        }
        options.timeout = patience  // the suite's one patience: on a loaded machine a call may wait its turn
        let (code, message, body) = await method.call(request, on: client, options: options)
        return MatrixAnswer(code: code.map { "\($0)" } ?? "no status", message: message, body: body)
    }

    static func seconds(since start: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }
}

extension Calltrace_Rpc_V1_Access.OneOf_Rule {
    /// A person's call: a user's or an operator's under a grant, the handler checking or not.
    var isPersons: Bool {
        switch self {
        case .user, .userOrService, .inHandler: true
        case .none: false
        }
    }
}

extension ProtoCatalogue.Method {
    /// A `none` method a service or gateway calls as itself (its proto's `why` says so), not a person.
    var isPeersOwnCall: Bool {
        guard case .some(.none) = access.rule else { return false }
        return ["itself", "themselves", "their own", "services and gateways", "the services ask"].contains { access.why.contains($0) }
    }

    /// Whether a user whose role permits `may` is entitled to call it in their own firm: its
    /// permission is one of them, or it is the signed-in user's self-service.
    func entitles(_ may: Set<Calltrace_Identity_V1_Permission>) -> Bool {
        if let permission { return may.contains(permission) }
        if case .some(.none) = access.rule { return access.why.hasPrefix("self-service") }
        return false
    }
}

extension CrossTenantMatrixTests {
    @Test("Every method the web gateway relays (/api/v1/rpc, its relay table): no attacker's API token reads, changes or learns of firm A's data")
    func everyRelayedMethod() async throws {
        let started = ContinuousClock.now
        let (d, seeds, expired) = try await Self.deployment()
        let (a, b) = (seeds.a, seeds.b)
        let hosts = Self.hosts(d)
        let catalogue = try await ProtoCatalogue.load()
        let http = d.browser()
        defer { http.close() }
        let tally = MatrixTally("the web gateway's relayed methods")
        // The relay takes API tokens only: each person's, made when its session was.
        let tokens: [(Attacker, String?)] = [(.noToken, nil), (.expiredToken, expired.apiToken), (.otherFirmsToken, b.admin.apiToken),
                                             (.weakRole, a.analyst.apiToken), (.suspendedUser, a.suspended.apiToken)]
        let methods = RelayedMethod.table.compactMap { path, relayed in
            catalogue.methods.first { $0.fullName == "/" + path }.map { ($0, path, relayed.isStreaming) }
        }.sorted { ($0.0.risk, $0.1) < ($1.0.risk, $1.1) }
        #expect(methods.count == RelayedMethod.table.count, "every relayed method is in proto/")

        for (method, path, streaming) in methods {
            func send(_ set: IdSet, token: String?) async throws -> (Data, [String: String], MatrixAnswer) {
                let sent = seeds.values(set)
                let request = catalogue.plausibleRequest(for: method.input, seeds: sent, numbers: MatrixSeeds.numbers)
                return (request, sent, try await Self.relay(http, path, request, streaming: streaming, token: token))
            }
            if method.risk == 0 {
                let (request, _, answer) = try await send(.victims, token: a.admin.apiToken)
                tally.control(path, answer, sees: seeds.leaks(in: answer, request: request, operator: false))
            }
            let entitled = method.entitles(a.analystMay)
            if entitled {
                for set in Attacker.weakRole.idSets {
                    tally.cell(path, .weakRole, set, try await send(set, token: a.analyst.apiToken).2)
                }
            }
            let before = try await MatrixDigest.take(Array(hosts.values), org: a.org, keys: Self.rowKeys(a), ignoring: [])
            var answers: [(Attacker, IdSet, Data, [String: String], MatrixAnswer)] = []
            for (attacker, token) in tokens where !(attacker == .weakRole && entitled) {
                for set in attacker.idSets {
                    let (request, sent, answer) = try await send(set, token: token)
                    answers.append((attacker, set, request, sent, answer))
                    tally.cell(path, attacker, set, answer)
                }
            }
            let changed = try await MatrixDigest.take(Array(hosts.values), org: a.org, keys: Self.rowKeys(a), ignoring: []).changes(since: before)
            if !changed.isEmpty { tally.fail("\(path): firm A's data changed: \(changed.joined(separator: ", "))") }
            Self.judge(answers, seeds: seeds, cell: path, tally: tally)
        }
        print(tally.report(seconds: Self.seconds(since: started)))
        #expect(tally.failures.isEmpty, "\(tally.failures.prefix(30))")
        #expect(tally.controlsSeeingA.count >= 5, "the control saw A's data in \(tally.controlsSeeingA)")
        #expect(tally.controlsSaw.isSuperset(of: Self.contentTheScanMustSee), "\(tally.controlsSaw)")
        #expect(tally.controlsRefused.isEmpty, "\(tally.controlsRefused)")
        await d.stop()
    }

    /// One relayed call in binary protobuf (a unary body, or a stream's one envelope): its status,
    /// message and response messages.
    static func relay(_ http: WebClient, _ path: String, _ request: Data, streaming: Bool, token: String?) async throws -> MatrixAnswer {
        var headers = ["Content-Type": streaming ? ConnectWire.streamingProtoType : ConnectWire.protoType]
        if let token { headers["Authorization"] = "Bearer \(token)" }
        let page = try await http.send("POST", RPCRelay.prefix + path, headers: headers, body: streaming ? ConnectWire.envelope(request) : request)
        guard page.status == 200 else {
            let error = ConnectWire.error(fromJSON: page.body, httpStatus: page.status)
            return MatrixAnswer(code: "\(error.code)", message: error.message, body: page.body)
        }
        guard streaming else { return MatrixAnswer(code: "\(StatusCode.ok)", message: "", body: page.body) }
        var reader = ConnectWire.EnvelopeReader(limit: 1 << 26)
        reader.append(page.body)
        var messages = Data()
        while let (flags, message) = try reader.next() {
            if flags & ConnectWire.endStreamFlag != 0 {
                let error = ConnectWire.error(fromEndOfStream: message)
                return MatrixAnswer(code: "\(error?.code ?? .ok)", message: error?.message ?? "", body: messages)
            }
            messages += message
        }
        return MatrixAnswer(code: "no end of stream", message: "", body: messages)
    }
}

extension CrossTenantMatrixTests {
    /// Routes of the web gateway the pages matrix leaves to others: the relay (`everyRelayedMethod`),
    /// static files, the health answer, the public share-link page (its token is the credential:
    /// whoever holds it may listen, P7), the website tag's endpoints (a website's public key and
    /// origin decide; VisitorService's methods are in `everyMethod`), and signing out (it ends
    /// only the caller's own session).
    static let routesLeftOut = ["/api/v1/rpc/", "/static/", "/healthz", "/s/", "/dni/", "/sign-out"]

    @Test("Every route of the web app (its router: pages and the JSON API): firm B's session and no session see nothing of A's, change nothing, and cannot tell A's ids from made-up ones")
    func everyRoute() async throws {
        let started = ContinuousClock.now
        // A's webhook (the gateway's own table) goes to an address on this machine.
        let (d, seeds, _) = try await Self.deployment { try? $0.set("webhook_allow_private_addresses", "true") }
        let (a, b) = (seeds.a, seeds.b)
        let hosts = Self.hosts(d)
        let tally = MatrixTally("the web app's routes", of: "routes")
        let routes = (d.web.instance.service as! WebService).app.router().routes.map { ("\($0.method)", $0.path.description) }
            .filter { _, path in !Self.routesLeftOut.contains { path.hasPrefix($0) } }
            .sorted { ($0.0 == "POST" ? 1 : 0, $0.1) < ($1.0 == "POST" ? 1 : 0, $1.1) }
        let owner = d.browser(of: a.admin.email), attacker = d.browser(of: b.admin.email), nobody = d.browser()
        defer { for browser in [owner, attacker, nobody] { browser.close() } }
        try await d.signIn(owner, org: a.org, email: a.admin.email)
        try await d.signIn(attacker, org: b.org, email: b.admin.email)
        let attackersForm = try #require(try await attacker.get("/account").csrf)
        let webhooks = try await owner.get("/settings/webhooks")
        let added = try await owner.post("/settings/webhooks", form: [("csrf", try #require(webhooks.csrf)), ("url", "https://127.0.0.1:9/hooks"),
                                                                       ("event-call.completed", "yes")])
        let webhook = try #require(added.text.firstMatch(of: /href="\/settings\/webhooks\/(whk_[0-9a-f]+)"/).map { String($0.1) })
        // Each set's ids, A's webhook among A's.
        var values: [IdSet: [String: String]] = [:]
        for set in [IdSet.victims, .madeUp, .victimsInOwnFirm, .madeUpInOwnFirm, .own] {
            values[set] = seeds.values(set).merging(["webhook_id": [.victims, .victimsInOwnFirm].contains(set) ? webhook : seeds.madeUp(webhook)]) { $1 }
        }
        let victims = values[.victims]!

        /// A browser's request of `path` (and `form`), as a page's (the session names the firm) or
        /// as the JSON API's (the token, and the firm its caller names in `CallTrace-Firm`).
        func request(_ browser: WebClient, token: String?, firm: String, _ method: String, _ path: String, form: [(String, String)]?) async throws
            -> MatrixAnswer {
            var headers: [String: String] = [:]
            if path.hasPrefix(APIv1.base) {
                headers["CallTrace-Firm"] = firm
                if let token { headers["Authorization"] = "Bearer \(token)" }
            }
            let page: WebClient.Page
            if method == "GET" {
                page = try await browser.get(path, headers: headers)
            } else if path.hasPrefix(APIv1.base) {
                headers["Content-Type"] = "application/json"
                page = try await browser.send(method, path, headers: headers, body: Data("{}".utf8))
            } else {
                page = try await browser.post(path, form: form ?? [], headers: headers)
            }
            return MatrixAnswer(code: "\(page.status)", message: page.header("Location") ?? "", body: page.body)
        }

        // The control: A's admin opens every page with A's ids; the forms on them are what B then posts.
        var forms: [(action: String, fields: [(String, String)])] = []
        for (method, route) in routes where method == "GET" {
            guard let path = Self.fill(route, victims) else { continue }
            let answer = try await request(owner, token: a.admin.apiToken, firm: a.org, method, path, form: nil)
            tally.control(route, answer, sees: seeds.leaks(in: answer, request: Data(path.utf8), operator: false))
            forms += Self.forms(in: String(decoding: answer.body, as: UTF8.self))
        }
        var seen = Set<String>()
        forms = forms.filter { seen.insert($0.action + "?" + $0.fields.map { "\($0.0)=\($0.1)" }.joined(separator: "&")).inserted }

        for (method, route) in routes {
            // A's forms for this route (their ids A's), else the route with A's ids and only B's form token.
            var cells = method == "POST" ? forms.filter { Self.matches(route, $0.action) }.map { ($0.action, Optional($0.fields)) } : []
            if cells.isEmpty, let path = Self.fill(route, victims) { cells = [(path, method == "POST" ? [] : nil)] }
            if cells.isEmpty { tally.notGenerated("\(method) \(route) (A's pages link to none, and no id of A fills its captures)"); continue }
            // A page's firm is the session's (A's ids are sent in B's); the JSON API's caller names one.
            let sets: [IdSet] = !route.contains("{") ? [.own] : route.hasPrefix(APIv1.base) ? [.victims, .madeUp, .victimsInOwnFirm, .madeUpInOwnFirm] : [.victims, .madeUp]
            let before = try await MatrixDigest.take(Array(hosts.values), org: a.org, keys: Self.rowKeys(a), ignoring: [])
            for (path, fields) in cells {
                let cell = "\(method) \(route)" + (cells.count > 1 ? " (\(path.split(separator: "/").last ?? ""))" : "")
                var answers: [(Attacker, IdSet, Data, [String: String], MatrixAnswer)] = []
                let visitors: [(Attacker, WebClient, String?)] = [(.otherFirmsToken, attacker, b.admin.apiToken), (.noToken, nobody, nil)]
                for (who, browser, token) in visitors {
                    for set in sets {
                        let these = values[set]!
                        let sentPath = Self.replacing(path, victims, these)
                        let form = fields.map { fields in [("csrf", attackersForm)] + fields.filter { $0.0 != "csrf" }.map { ($0.0, Self.replacing($0.1, victims, these)) } }
                        let answer = try await request(browser, token: token, firm: these["org_id"]!, method, sentPath, form: form)
                        let sent = Data((sentPath + (form ?? []).map { "\($0.0)=\($0.1)" }.joined(separator: "&") + these["org_id"]!).utf8)
                        answers.append((who, set, sent, set == .own ? [:] : these, answer))
                        tally.cell(route, who, set, answer)
                    }
                }
                Self.judgePages(answers, seeds: seeds, cell: cell, tally: tally)
            }
            let changed = try await MatrixDigest.take(Array(hosts.values), org: a.org, keys: Self.rowKeys(a), ignoring: []).changes(since: before)
            if !changed.isEmpty { tally.fail("\(method) \(route): firm A's data changed: \(changed.joined(separator: ", "))") }
        }
        print(tally.report(seconds: Self.seconds(since: started)))
        #expect(tally.failures.isEmpty, "\(tally.failures.prefix(30))")
        #expect(tally.controlsSeeingA.count >= 5, "the control saw A's data in \(tally.controlsSeeingA)")
        await d.stop()
    }

    /// As `judge`, for pages: the body and the redirect said alike for A's ids and made-up ones.
    static func judgePages(_ answers: [(Attacker, IdSet, Data, [String: String], MatrixAnswer)], seeds: MatrixSeeds, cell: String, tally: MatrixTally) {
        for (attacker, set, sent, values, answer) in answers {
            let leaked = seeds.leaks(in: answer, request: sent, operator: false)
            if !leaked.isEmpty { tally.fail("\(cell) · \(attacker.rawValue) · \(set.rawValue): HTTP \(answer.code) carrying \(Set(leaked).sorted())") }
            guard let twinSet = attacker.twin(of: set), let twin = answers.first(where: { $0.0 == attacker && $0.1 == twinSet }) else { continue }
            let mine = (answer.code, seeds.normalised(answer.message, sent: values), seeds.normalised(String(decoding: answer.body, as: UTF8.self), sent: values))
            let theirs = (twin.4.code, seeds.normalised(twin.4.message, sent: twin.3), seeds.normalised(String(decoding: twin.4.body, as: UTF8.self), sent: twin.3))
            if mine != theirs {
                tally.fail("\(cell) · \(attacker.rawValue): \(set.rawValue) answered HTTP \(mine.0) \(mine.1), \(twinSet.rawValue) HTTP \(theirs.0) \(theirs.1)"
                           + (mine.2 == theirs.2 ? "" : ", the pages differ"))
            }
        }
    }

    /// `route` with each capture `{name}` given the id of that name (`{callId}`, `{call}`: `call_id`;
    /// `{id}`: an API token's); nil when one has none (an action, a webhook: only A's forms name them).
    static func fill(_ route: String, _ values: [String: String]) -> String? {
        var parts: [String] = []
        for part in route.split(separator: "/", omittingEmptySubsequences: false) {
            guard part.hasPrefix("{"), part.hasSuffix("}") else { parts.append(String(part)); continue }
            var name = part.dropFirst().dropLast().lowercased()
            if name.hasSuffix("id") { name = String(name.dropLast(2)) }
            guard let value = values[name.isEmpty ? "token_id" : "\(name)_id"] else { return nil }
            parts.append(value)
        }
        return parts.joined(separator: "/")
    }

    /// Whether `path` (a form's action) is one of `route`'s.
    static func matches(_ route: String, _ path: String) -> Bool {
        let pattern = route.split(separator: "/"), parts = path.split(separator: "?")[0].split(separator: "/")
        return pattern.count == parts.count && zip(pattern, parts).allSatisfy { $0.hasPrefix("{") || $0 == $1 }
    }

    static func replacing(_ text: String, _ from: [String: String], _ to: [String: String]) -> String {
        from.filter { !$0.value.isEmpty && to[$0.key] != $0.value }.sorted { $0.value.count > $1.value.count }
            .reduce(text) { $0.replacingOccurrences(of: $1.value, with: to[$1.key]!) }
    }

    /// The forms of a page that post: each one's action and the fields a person submitting it
    /// as shown would send (hidden and filled inputs, checked boxes, textareas, each select's first option).
    static func forms(in html: String) -> [(action: String, fields: [(String, String)])] {
        func attribute(_ name: String, _ tag: Substring) -> String? {
            (tag.firstMatch(of: try! Regex("\\s\(name)=\"([^\"]*)\"")).map { String($0.output[1].substring ?? "") }).map(unescaped)
        }
        func unescaped(_ text: String) -> String {
            [("&quot;", "\""), ("&#39;", "'"), ("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&")].reduce(text) { $0.replacingOccurrences(of: $1.0, with: $1.1) }
        }
        return html.matches(of: /(?s)<form([^>]*)>(.*?)<\/form>/).compactMap { form in
            guard attribute("method", form.output.1)?.lowercased() == "post", let action = attribute("action", form.output.1), action.hasPrefix("/") else { return nil }
            var fields: [(String, String)] = []
            for input in form.output.2.matches(of: /<input[^>]*>/) {
                let tag = input.output[...]
                guard let name = attribute("name", tag) else { continue }
                let type = attribute("type", tag) ?? "text"
                if ["checkbox", "radio"].contains(type) && !tag.contains(" checked") { continue }
                if type == "submit" || type == "file" { continue }
                fields.append((name, attribute("value", tag) ?? ""))
            }
            for area in form.output.2.matches(of: /(?s)<textarea([^>]*)>(.*?)<\/textarea>/) {
                if let name = attribute("name", area.output.1) { fields.append((name, unescaped(String(area.output.2)))) }
            }
            for select in form.output.2.matches(of: /(?s)<select([^>]*)>(.*?)<\/select>/) {
                if let name = attribute("name", select.output.1), let option = select.output.2.firstMatch(of: /<option[^>]*>/) {
                    fields.append((name, attribute("value", option.output[...]) ?? ""))
                }
            }
            return (unescaped(action), fields)
        }
    }
}
