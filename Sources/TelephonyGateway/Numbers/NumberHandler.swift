import CallTraceAPI
import CallTraceKeys
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import Foundation
import Twilio

/// `calltrace.telephony.v1.NumberService` (issue 31): a firm's numbers at Twilio — searched,
/// bought under its regulatory bundle and assigned to a source in transcript (under the person's
/// token), imported by an operator from what the account already has, pointed at this gateway's
/// webhooks, and released (in transcript first). Only a person identity allows settings.manage
/// in the firm (through the web app, with the address it saw), or an operator under a grant;
/// Twilio is asked only after that. The gateway keeps which firm holds which number, so no firm
/// can release or take over another's, nor take its calls (`InboundCalls` names the holder to
/// transcript's `StartCall`).
struct NumberHandler: Calltrace_Telephony_V1_NumberServiceHandler {
    let twilio: TwilioClient
    let trackingNumbers: Calltrace_Transcript_V1_TrackingNumberServiceClient
    let repository: any TelephonyRepository
    let authorizer: any Authorizing
    let outbox: AuditOutbox
    let urls: WebhookURLs
    let defaultBundle: String?
    let defaultAddress: String?
    let clock: any WallClock
    /// A person buys (and assigns in transcript, under their token); only an operator, who has
    /// checked the firm owns it, imports a number already on the account.
    let policies = Calltrace_Telephony_V1_NumberServicePolicies(
        searchNumbers: .gateways, buyNumber: .gateways, importNumber: .operators, releaseNumber: .gateways | .operators)

    /// Twilio offers this many at most per search.
    static let searchLimit = 20

    func searchNumbers(_ request: Calltrace_Telephony_V1_SearchNumbersRequest, principal _: Principal, context: ServerContext) async throws
        -> Calltrace_Telephony_V1_SearchNumbersResponse {
        let pattern = try Self.pattern(areaCode: request.areaCode, contains: request.contains)
        let found = try await Self.twilio {
            try await twilio.searchAvailableNumbers(NumberSearch(kind: request.mobile ? .mobile : .local, contains: pattern, pageSize: Self.searchLimit))
        }
        return .with {
            $0.numbers = found.prefix(Self.searchLimit).map { number in
                .with { $0.number = number.phoneNumber; $0.locality = number.locality ?? ""; $0.voice = number.capabilities?.voice ?? false }
            }
        }
    }

    func buyNumber(_ request: Calltrace_Telephony_V1_BuyNumberRequest, principal who: Principal, context: ServerContext) async throws
        -> Calltrace_Telephony_V1_BuyNumberResponse {
        let number = try Self.ukNumber(request.number)
        let bundle = request.bundleSid.isEmpty ? defaultBundle : request.bundleSid
        let address = request.addressSid.isEmpty ? defaultAddress : request.addressSid
        guard let bundle, TwilioSID.isValid(bundle, prefix: "BU") else {
            throw RPCError(.invalidArgument, "bundle_sid must be the firm's regulatory bundle at Twilio (BU…): UK numbers are sold only under one")
        }
        if let address, !TwilioSID.isValid(address, prefix: "AD") { throw RPCError(.invalidArgument, "address_sid must be AD and 32 hex digits") }
        // Checked before anything is bought, so a bad source costs nothing.
        guard !request.source.trimmingCharacters(in: .whitespaces).isEmpty, request.source.count <= 100, request.channel != .unspecified else {
            throw RPCError(.invalidArgument, "source (1–100 characters) and channel are required: where the number's calls count")
        }
        if let held = try await repository.read({ tx in try tx.number(number) }) {
            throw held.org == request.orgID
                ? RPCError(.alreadyExists, "the firm has this number already (\(held.twilioSID))")
                : RPCError(.failedPrecondition, "the number is not available")
        }
        let bought = try await Self.twilio {
            try await twilio.buyNumber(NumberPurchase(phoneNumber: number, bundleSID: bundle, addressSID: address, friendlyName: "CallTrace \(request.orgID)",
                                                      webhooks: urls.numberWebhooks))
        }
        try await keep(AccountNumber(number: number, org: request.orgID, twilioSID: bought.sid, acquired: .bought, at: clock.nowUnixMs),
                       action: .numberBought, by: who.actor)
        let assigned: Calltrace_Transcript_V1_AssignTrackingNumberResponse
        do {
            assigned = try await trackingNumbers.assignTrackingNumber(.with {
                $0.orgID = request.orgID; $0.number = number; $0.source = request.source; $0.channel = request.channel; $0.campaign = request.campaign
            }, options: context.passedOn(timeout: .seconds(10)))
        } catch let error as RPCError {
            // Transcript's words may name the number: its code only (never a phone number in an error).
            throw RPCError(.failedPrecondition, "bought the number for the firm (\(bought.sid)), but transcript did not assign it (\(error.code)): "
                + "assign it with calltrace tracking-numbers assign, and ask CallTrace's support if it says another firm holds it")
        }
        return .with {
            $0.number = .with { $0.number = number; $0.twilioSid = bought.sid }
            $0.trackingNumber = assigned.trackingNumber
        }
    }

    func importNumber(_ request: Calltrace_Telephony_V1_ImportNumberRequest, principal who: Principal, context: ServerContext) async throws
        -> Calltrace_Telephony_V1_ImportNumberResponse {
        let number = try Self.ukNumber(request.number)
        let held = try await repository.read({ tx in try tx.number(number) })
        if let held, held.org != request.orgID { throw RPCError(.failedPrecondition, "another firm holds this number") }
        let found = try await Self.twilio { try await twilio.listIncomingNumbers(phoneNumber: number, pageSize: 5) }
        guard let existing = found.first(where: { $0.phoneNumber == number }) else {
            throw RPCError(.notFound, "the number is not on the gateway's Twilio account: port it, or transfer it from the firm's own account, first")
        }
        // One that already answers here for nobody in the books (set by hand) belongs to someone:
        // taking it over would take another firm's calls. The firm's own (detached) is pointed here again.
        if held == nil, let voice = existing.voiceUrl, voice.hasPrefix(urls.base + "/") {
            throw RPCError(.failedPrecondition, "the number already answers at this gateway; release it there first")
        }
        _ = try await Self.twilio { try await twilio.updateWebhooks(ofNumber: existing.sid, urls.numberWebhooks) }
        try await keep(AccountNumber(number: number, org: request.orgID, twilioSID: existing.sid, acquired: .imported, at: clock.nowUnixMs),
                       action: .numberImported, by: who.actor)
        return .with { $0.number = .with { $0.number = number; $0.twilioSid = existing.sid } }
    }

    func releaseNumber(_ request: Calltrace_Telephony_V1_ReleaseNumberRequest, principal who: Principal, context: ServerContext) async throws
        -> Calltrace_Telephony_V1_ReleaseNumberResponse {
        let number = try Self.ukNumber(request.number)
        guard let held = try await repository.read({ tx in try tx.number(number) }), held.org == request.orgID else {
            throw RPCError(.notFound, "the firm has no such number at Twilio through this gateway")
        }
        // Transcript first (a person's token passed on): no call is routed to the firm for a number
        // it no longer holds at Twilio. An operator has no token: they release it in transcript apart.
        if context.peer.kind == .gateway {
            do {
                _ = try await trackingNumbers.releaseTrackingNumber(.with { $0.orgID = request.orgID; $0.number = number },
                                                                    options: context.passedOn(timeout: .seconds(10)))
            } catch let error as RPCError where error.code == .notFound {
                // Not assigned there (never, or released already).
            }
        }
        do {
            if request.keepAtTwilio {
                _ = try await twilio.updateWebhooks(ofNumber: held.twilioSID, NumberWebhooks(voiceURL: ""))
            } else {
                try await twilio.releaseNumber(sid: held.twilioSID)
            }
        } catch let error where error.kind == .notFound {
            // Gone at Twilio already (released by hand): the books catch up.
        } catch {
            throw Self.rpcError(error)
        }
        try await repository.write { [outbox] tx in
            // Detached, it stays the firm's in the books: nobody else can import it.
            if !request.keepAtTwilio { try tx.deleteNumber(number) }
            try outbox.record(AuditRecord(org: request.orgID, actor: who.actor, action: request.keepAtTwilio ? .numberDetached : .numberReleased,
                                          resource: .trackingNumber(number)), in: tx.connection)
        }
        return .init()
    }

    private func keep(_ number: AccountNumber, action: TelephonyAuditAction, by actor: String) async throws {
        try await repository.write { [outbox] tx in
            guard try tx.upsert(number) else { throw RPCError(.failedPrecondition, "another firm holds this number") }
            try outbox.record(AuditRecord(org: number.org, actor: actor, action: action, resource: .trackingNumber(number.number),
                                          detail: "twilio: \(number.twilioSID)"), in: tx.connection)
        }
    }

    /// Twilio's `Contains` for a UK search: an area code ("0118", "118") fixes the number's start
    /// (`+44118*******`); digits alone are matched anywhere.
    static func pattern(areaCode: String, contains: String) throws -> String {
        let area = areaCode.hasPrefix("0") ? String(areaCode.dropFirst()) : areaCode
        guard area.allSatisfy(\.isASCIIDigit), area.count <= 5, contains.allSatisfy(\.isASCIIDigit), contains.count <= 10 else {
            throw RPCError(.invalidArgument, "area_code is up to 5 digits (0118) and contains up to 10 digits")
        }
        guard !area.isEmpty || !contains.isEmpty else { throw RPCError(.invalidArgument, "give an area_code or digits the number contains") }
        guard !area.isEmpty else { return contains }
        let start = area + contains
        guard start.count <= 10 else { throw RPCError(.invalidArgument, "the area code and digits are longer than a UK number") }
        return "+44" + start + String(repeating: "*", count: 10 - start.count)
    }

    /// A UK number in E.164; the error never repeats it.
    static func ukNumber(_ raw: String) throws -> String {
        guard let number = PhoneNumber.e164(raw), number.hasPrefix("+44") else { throw RPCError(.invalidArgument, "number is not a UK phone number") }
        return number
    }

    /// Twilio's answer, or the error a person can act on (Twilio's text never names a number).
    static func twilio<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as TwilioError {
            throw rpcError(error)
        }
    }

    static func rpcError(_ error: TwilioError) -> RPCError {
        switch error.kind {
        case .notFound: RPCError(.notFound, "\(error)")
        case .refused: RPCError(.failedPrecondition, "\(error)")
        case .rateLimited, .unavailable, .transport: RPCError(.unavailable, "\(error)")
        case .authentication, .configuration, .unexpectedAnswer: RPCError(.internal, "the gateway's Twilio account refused or failed: \(error)")
        }
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
