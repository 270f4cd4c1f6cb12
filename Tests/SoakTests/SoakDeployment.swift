import CallTraceAPI
import CallTraceDeploymentSupport
import CallTraceProto
import CallTraceRPC
import CallTraceTestSupport
import FakeTwilio
import Foundation

/// Everything a firm's day touches, each a process of its own over one PKI: the four services,
/// calltrace-web (its pages on an HTTP port) and calltrace-telephony (Twilio's webhooks on
/// another), with a fake Twilio in this process whose driver plays calls through the webhooks
/// and serves their recordings.
final class SoakDeployment: @unchecked Sendable {
    let services: ProcessDeployment
    let pages: WebGatewayProcess
    let gateway: TelephonyGatewayProcess
    var web: ServiceProcess { pages.process }
    var telephony: ServiceProcess { gateway.process }
    var driver: CallDriver { gateway.driver }

    /// Every process, by name, in a fixed order.
    var processes: [(name: String, process: ServiceProcess)] {
        ProcessDeployment.names.map { ($0, services.services[$0]!) } + [("web", web), ("telephony", telephony)]
    }

    init() async throws {
        let services = try await ProcessDeployment()
        self.services = services
        pages = try WebGatewayProcess(beside: services)
        // Every webhook is sent once: a gateway's 5xx is an unexpected answer here, not a retry.
        gateway = try TelephonyGatewayProcess(beside: services)
        try await pages.start()
        try await gateway.start()
    }

    var webBase: String { pages.base }

    /// Every listener a client can reach: each process's ctrpc/1 port, the pages and the webhooks.
    var listeners: [(name: String, port: Int, kind: Flood.Kind)] {
        processes.map { ("\($0.name) ctrpc", $0.process.setup.port, Flood.Kind.tls) }
            + [("web pages", pages.port, .http), ("telephony webhooks", gateway.webhookPort, .http)]
    }

    /// What is still busy: jobs or unsent audit events in any of the six databases.
    func busy() throws -> String? {
        try services.busy(also: ["web": web.setup.database, "telephony": telephony.setup.database])
    }

    func stop() async {
        await pages.stop()
        await gateway.stop()
        await services.stop()
    }

    // MARK: Firms

    /// A firm the soak's gateways work for: its admin (who signs in to the pages), a user whose
    /// password is guessed wrong (locked out soon, as it should be), and a tracking number whose
    /// calls ring through the telephony gateway.
    struct Firm: Sendable {
        let org: String
        let email: String
        let admin: String
        let decoy: String
        let number: String
    }

    static let password = "correct horse battery staple"

    func firm(_ index: Int) async throws -> Firm {
        let identity = services.identity, made = try await identity.newOrganisation("Soak \(index) LLP")
        try await services.compliance.acceptAgreement(org: made.org, admin: made.admin)
        let admin = try bearer(made.admin)
        // The decoy: invited, activated, then only ever tried with wrong passwords.
        let decoy = "decoy-\(index)@firm.example"
        let asWeb = try identity.client(identity: TemporaryPKI.identity("gateway", "web"))
        _ = try await asWeb.unary(Calltrace_Identity_V1_IdentityService.inviteUser, .with {
            $0.orgID = made.org; $0.email = decoy; $0.role = .analyst
        }, options: admin)
        guard let invitation = try identity.setup.deliveredToken(to: decoy) else { throw SoakError("no invitation reached \(decoy)") }
        _ = try await asWeb.unary(Calltrace_Identity_V1_IdentityService.redeemInvitation, .with {
            $0.invitationToken = invitation; $0.password = Self.password
        }, options: .endUser)

        let transcript = try services.transcript.client(identity: TemporaryPKI.identity("gateway", "web"))
        let number = "+44118497\(String(format: "%04d", index))"
        _ = try await Calltrace_Transcript_V1_TrackingNumberServiceClient(transcript).assignTrackingNumber(.with {
            $0.orgID = made.org; $0.number = number; $0.source = "Google Ads"; $0.channel = .googleAds
        }, options: admin)
        _ = try await Calltrace_Transcript_V1_TrackingNumberServiceClient(transcript).setRouting(.with {
            $0.orgID = made.org; $0.number = number
            $0.routing = .with { $0.destinations = ["+441184960999"]; $0.ringSeconds = 20; $0.voicemail = true }
        }, options: admin)
        _ = try await Calltrace_Transcript_V1_TranscriptServiceClient(transcript).setTranscriptionSettings(.with {
            $0.orgID = made.org; $0.settings = .with { $0.enabled = true; $0.engine = "manual"; $0.analysisEngine = "local" }
        }, options: admin)
        gateway.answer(number)
        return Firm(org: made.org, email: made.email, admin: made.admin, decoy: decoy, number: number)
    }
}

/// What the process's kernel says of its memory and threads: its resident set, and of it the
/// anonymous part (heap, stacks: what a leak grows). The rest is mostly the databases' pages
/// (SQLite maps each file), which grow with the data and which the kernel can take back.
struct ProcessSample: Sendable {
    let rssKiB: Int
    let anonKiB: Int
    let threads: Int
    /// Over a window of samples, the fewest threads (one sample: its own count). Worker threads
    /// started for a burst of blocking work (libdispatch's, a database's readers) end once idle;
    /// a leaked thread never does, so it raises the floor.
    let threadsFloor: Int

    init(rssKiB: Int, anonKiB: Int, threads: Int, threadsFloor: Int? = nil) {
        self.rssKiB = rssKiB
        self.anonKiB = anonKiB
        self.threads = threads
        self.threadsFloor = threadsFloor ?? threads
    }

    init?(pid: pid_t) {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        func field(_ name: String) -> Int? {
            status.split(separator: "\n").first { $0.hasPrefix(name + ":") }
                .flatMap { Int($0.dropFirst(name.count + 1).trimmingCharacters(in: .whitespaces).split(separator: " ")[0]) }
        }
        guard let rss = field("VmRSS"), let anon = field("RssAnon"), let threads = field("Threads") else { return nil }
        rssKiB = rss
        anonKiB = anon
        self.threads = threads
        threadsFloor = threads
    }
}

struct SoakError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
