/// The resources of Twilio's REST API (2010-04-01) that the gateway reads, with Twilio's own
/// snake_case field names. Only the fields used are decoded; Twilio sends more, and may add
/// fields at any time, which decoding ignores.

/// What a number can do.
public struct NumberCapabilities: Codable, Sendable, Equatable {
    public var voice: Bool?
    public var sms: Bool?
    public var mms: Bool?
    public var fax: Bool?

    public init(voice: Bool? = true, sms: Bool? = nil, mms: Bool? = nil, fax: Bool? = nil) {
        self.voice = voice
        self.sms = sms
        self.mms = mms
        self.fax = fax
    }
}

/// A number Twilio offers for sale (`AvailablePhoneNumbers/{Country}/{Local|Mobile}`).
public struct AvailablePhoneNumber: Codable, Sendable, Equatable {
    public var phoneNumber: String
    public var friendlyName: String
    public var locality: String?
    public var region: String?
    public var isoCountry: String
    /// `none`, `any`, `local` or `foreign`: what Address the purchase needs.
    public var addressRequirements: String?
    public var capabilities: NumberCapabilities?

    public init(phoneNumber: String, friendlyName: String, locality: String? = nil, region: String? = nil, isoCountry: String = "GB",
                addressRequirements: String? = "any", capabilities: NumberCapabilities? = NumberCapabilities()) {
        self.phoneNumber = phoneNumber
        self.friendlyName = friendlyName
        self.locality = locality
        self.region = region
        self.isoCountry = isoCountry
        self.addressRequirements = addressRequirements
        self.capabilities = capabilities
    }

    enum CodingKeys: String, CodingKey {
        case phoneNumber = "phone_number", friendlyName = "friendly_name", locality, region, isoCountry = "iso_country"
        case addressRequirements = "address_requirements", capabilities
    }
}

public struct AvailablePhoneNumberList: Codable, Sendable {
    public var availablePhoneNumbers: [AvailablePhoneNumber]
    public var uri: String?

    public init(availablePhoneNumbers: [AvailablePhoneNumber], uri: String?) {
        self.availablePhoneNumbers = availablePhoneNumbers
        self.uri = uri
    }

    enum CodingKeys: String, CodingKey { case availablePhoneNumbers = "available_phone_numbers", uri }
}

/// A number the account holds (`IncomingPhoneNumbers/PN…`), with where its calls go.
public struct IncomingPhoneNumber: Codable, Sendable, Equatable {
    public var sid: String
    public var accountSid: String
    public var phoneNumber: String
    public var friendlyName: String?
    public var voiceUrl: String?
    public var voiceMethod: String?
    public var statusCallback: String?
    public var statusCallbackMethod: String?
    public var bundleSid: String?
    public var addressSid: String?
    public var capabilities: NumberCapabilities?
    /// RFC 2822, as Twilio writes dates: `Thu, 30 Jul 2015 23:19:04 +0000`.
    public var dateCreated: String?
    public var uri: String?

    public init(sid: String, accountSid: String, phoneNumber: String, friendlyName: String? = nil, voiceUrl: String? = nil,
                voiceMethod: String? = nil, statusCallback: String? = nil, statusCallbackMethod: String? = nil,
                bundleSid: String? = nil, addressSid: String? = nil, capabilities: NumberCapabilities? = nil,
                dateCreated: String? = nil, uri: String? = nil) {
        self.sid = sid
        self.accountSid = accountSid
        self.phoneNumber = phoneNumber
        self.friendlyName = friendlyName
        self.voiceUrl = voiceUrl
        self.voiceMethod = voiceMethod
        self.statusCallback = statusCallback
        self.statusCallbackMethod = statusCallbackMethod
        self.bundleSid = bundleSid
        self.addressSid = addressSid
        self.capabilities = capabilities
        self.dateCreated = dateCreated
        self.uri = uri
    }

    enum CodingKeys: String, CodingKey {
        case sid, accountSid = "account_sid", phoneNumber = "phone_number", friendlyName = "friendly_name"
        case voiceUrl = "voice_url", voiceMethod = "voice_method", statusCallback = "status_callback"
        case statusCallbackMethod = "status_callback_method", bundleSid = "bundle_sid", addressSid = "address_sid"
        case capabilities, dateCreated = "date_created", uri
    }
}

/// One page of the account's numbers; `nextPageUri` (relative to the API's host) reads the next.
public struct IncomingPhoneNumberPage: Codable, Sendable {
    public var incomingPhoneNumbers: [IncomingPhoneNumber]
    public var page: Int
    public var pageSize: Int
    public var nextPageUri: String?
    public var uri: String?

    public init(incomingPhoneNumbers: [IncomingPhoneNumber], page: Int, pageSize: Int, nextPageUri: String?, uri: String?) {
        self.incomingPhoneNumbers = incomingPhoneNumbers
        self.page = page
        self.pageSize = pageSize
        self.nextPageUri = nextPageUri
        self.uri = uri
    }

    enum CodingKeys: String, CodingKey {
        case incomingPhoneNumbers = "incoming_phone_numbers", page, pageSize = "page_size", nextPageUri = "next_page_uri", uri
    }
}

/// A call (`Calls/CA…`), as Twilio answers a call placed through the API.
public struct CallResource: Codable, Sendable, Equatable {
    public var sid: String
    public var accountSid: String
    public var to: String
    public var from: String
    /// `queued`, `ringing`, `in-progress`, `completed`, `busy`, `failed`, `no-answer`, `canceled`.
    public var status: String
    /// `inbound`, `outbound-api` or `outbound-dial`.
    public var direction: String
    public var parentCallSid: String?
    public var dateCreated: String?
    public var uri: String?

    public init(sid: String, accountSid: String, to: String, from: String, status: String, direction: String,
                parentCallSid: String? = nil, dateCreated: String? = nil, uri: String? = nil) {
        self.sid = sid
        self.accountSid = accountSid
        self.to = to
        self.from = from
        self.status = status
        self.direction = direction
        self.parentCallSid = parentCallSid
        self.dateCreated = dateCreated
        self.uri = uri
    }

    enum CodingKeys: String, CodingKey {
        case sid, accountSid = "account_sid", to, from, status, direction, parentCallSid = "parent_call_sid"
        case dateCreated = "date_created", uri
    }
}

/// Twilio's error answer: `{"code": 20404, "message": "…", "more_info": "https://www.twilio.com/docs/errors/20404", "status": 404}`.
public struct TwilioErrorBody: Codable, Sendable, Equatable {
    public var code: Int?
    public var message: String?
    public var moreInfo: String?
    public var status: Int?

    public init(code: Int?, message: String?, moreInfo: String?, status: Int?) {
        self.code = code
        self.message = message
        self.moreInfo = moreInfo
        self.status = status
    }

    enum CodingKeys: String, CodingKey { case code, message, moreInfo = "more_info", status }
}
