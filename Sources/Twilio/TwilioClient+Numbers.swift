import CallTraceOutbound
import Foundation

/// A search of the numbers Twilio has for sale.
public struct NumberSearch: Sendable, Equatable {
    /// Twilio's subresource: geographic (`Local`: 01/02 numbers) or `Mobile` (07).
    public enum Kind: String, Sendable, Equatable { case local = "Local", mobile = "Mobile" }

    public var kind: Kind
    /// ISO country. Default GB.
    public var country: String
    /// `AreaCode`. Twilio documents it for US and Canadian numbers; for GB numbers search with
    /// `contains` (e.g. `+44161*******` for Manchester).
    public var areaCode: String?
    /// `Contains`: digits and letters, `*` for any one character.
    public var contains: String?
    /// `PageSize`; nil: Twilio's default. (`VoiceEnabled=true` is always sent: a tracking
    /// number must take calls.)
    public var pageSize: Int?

    public init(kind: Kind = .local, country: String = "GB", areaCode: String? = nil, contains: String? = nil, pageSize: Int? = nil) {
        self.kind = kind
        self.country = country
        self.areaCode = areaCode
        self.contains = contains
        self.pageSize = pageSize
    }
}

/// Where a number's calls and call events go.
public struct NumberWebhooks: Sendable, Equatable {
    /// `VoiceUrl`: the voice webhook (TwiML).
    public var voiceURL: String
    /// `StatusCallback`: each call's status events.
    public var statusCallback: String?
    /// `VoiceMethod` and `StatusCallbackMethod`. Default POST (signed parameters in the body).
    public var method: String

    public init(voiceURL: String, statusCallback: String? = nil, method: String = "POST") {
        self.voiceURL = voiceURL
        self.statusCallback = statusCallback
        self.method = method
    }

    func append(to form: inout FormParameters) {
        form.append("VoiceUrl", voiceURL)
        form.append("VoiceMethod", method)
        form.append("StatusCallback", statusCallback)
        if statusCallback != nil { form.append("StatusCallbackMethod", method) }
    }
}

/// Buying a number: UK numbers need the firm's regulatory bundle (`BU…`) and address (`AD…`).
public struct NumberPurchase: Sendable, Equatable {
    public var phoneNumber: String
    public var bundleSID: String?
    public var addressSID: String?
    public var friendlyName: String?
    public var webhooks: NumberWebhooks

    public init(phoneNumber: String, bundleSID: String?, addressSID: String?, friendlyName: String? = nil, webhooks: NumberWebhooks) {
        self.phoneNumber = phoneNumber
        self.bundleSID = bundleSID
        self.addressSID = addressSID
        self.friendlyName = friendlyName
        self.webhooks = webhooks
    }
}

extension TwilioClient {
    /// Numbers for sale (`GET AvailablePhoneNumbers/{country}/{Local|Mobile}.json`), voice-enabled only.
    public func searchAvailableNumbers(_ search: NumberSearch) async throws(TwilioError) -> [AvailablePhoneNumber] {
        let operation = "searching available numbers"
        guard search.country.count == 2, search.country.allSatisfy({ $0.isASCII && $0.isUppercase }) else {
            throw TwilioError(.configuration, operation: operation, message: "the country must be two capital letters (ISO 3166-1)")
        }
        var query = FormParameters()
        query.append("AreaCode", search.areaCode)
        query.append("Contains", search.contains)
        query.append("VoiceEnabled", "true")
        query.append("PageSize", search.pageSize.map(String.init))
        let response = try await send("GET", "\(accountPath)/AvailablePhoneNumbers/\(search.country)/\(search.kind.rawValue).json",
                                      query: query, operation: operation)
        return try decode(AvailablePhoneNumberList.self, from: response, operation: operation).availablePhoneNumbers
    }

    /// Buys a number (`POST IncomingPhoneNumbers.json`) with its webhooks already set.
    public func buyNumber(_ purchase: NumberPurchase) async throws(TwilioError) -> IncomingPhoneNumber {
        let operation = "buying a number"
        var form: FormParameters = ["PhoneNumber": purchase.phoneNumber]
        form.append("BundleSid", try purchase.bundleSID.map { sid throws(TwilioError) in try checked(sid, "BU", operation: operation) })
        form.append("AddressSid", try purchase.addressSID.map { sid throws(TwilioError) in try checked(sid, "AD", operation: operation) })
        form.append("FriendlyName", purchase.friendlyName)
        purchase.webhooks.append(to: &form)
        let response = try await send("POST", "\(accountPath)/IncomingPhoneNumbers.json", form: form, operation: operation)
        return try decode(IncomingPhoneNumber.self, from: response, operation: operation)
    }

    /// Points a number's voice and status webhooks at the gateway (`POST IncomingPhoneNumbers/PN….json`):
    /// on import, or when the gateway's public address changes.
    public func updateWebhooks(ofNumber sid: String, _ webhooks: NumberWebhooks) async throws(TwilioError) -> IncomingPhoneNumber {
        let operation = "updating a number's webhooks"
        var form = FormParameters()
        webhooks.append(to: &form)
        let response = try await send("POST", "\(accountPath)/IncomingPhoneNumbers/\(try checked(sid, "PN", operation: operation)).json",
                                      form: form, operation: operation)
        return try decode(IncomingPhoneNumber.self, from: response, operation: operation)
    }

    /// Every number the account holds, all pages read (`GET IncomingPhoneNumbers.json`, then
    /// each `next_page_uri`); `phoneNumber` narrows it to one (import).
    public func listIncomingNumbers(phoneNumber: String? = nil, pageSize: Int = 50) async throws(TwilioError) -> [IncomingPhoneNumber] {
        let operation = "listing the account's numbers"
        var query: FormParameters = ["PageSize": String(pageSize)]
        query.append("PhoneNumber", phoneNumber)
        let listPath = "\(accountPath)/IncomingPhoneNumbers.json"
        var numbers: [IncomingPhoneNumber] = []
        var page = try decode(IncomingPhoneNumberPage.self, from: try await send("GET", listPath, query: query, operation: operation),
                              operation: operation)
        var pagesRead = 1
        while true {
            numbers += page.incomingPhoneNumbers
            guard let next = page.nextPageUri, !next.isEmpty else { return numbers }
            // Only this account's list is followed, and not for ever.
            guard next.hasPrefix(listPath + "?"), pagesRead < 10_000 else {
                throw TwilioError(.unexpectedAnswer, operation: operation, message: "next_page_uri leads outside the account's number list")
            }
            page = try decode(IncomingPhoneNumberPage.self, from: try await send("GET", next, operation: operation), operation: operation)
            pagesRead += 1
        }
    }

    /// Releases a number (`DELETE IncomingPhoneNumbers/PN….json`, 204). Calls to it stop reaching the gateway.
    public func releaseNumber(sid: String) async throws(TwilioError) {
        let operation = "releasing a number"
        let response = try await send("DELETE", "\(accountPath)/IncomingPhoneNumbers/\(try checked(sid, "PN", operation: operation)).json",
                                      operation: operation)
        guard response.status == 204 else { throw TwilioError.answer(status: response.status, body: response.body, operation: operation) }
    }
}
