public import CallTraceTLS
public import Foundation
public import Twilio

/// A local Twilio for the tests and `make demo`: the REST API the telephony gateway uses, over
/// HTTPS with a certificate of our PKI, answering with Twilio's documented status codes and JSON
/// (and its error JSON), for one account. It keeps its state in memory: numbers for sale, the
/// account's numbers and their webhooks, the calls placed, and recordings with their WAV bytes.
///
/// What it serves, under `/2010-04-01/Accounts/{AccountSid}/` with basic auth (the API key and
/// secret, or the account SID and auth token):
///
///     GET    AvailablePhoneNumbers/{CC}/{Local|Mobile}.json   AreaCode, Contains, PageSize
///     POST   IncomingPhoneNumbers.json                        buy: PhoneNumber, BundleSid, AddressSid, VoiceUrl…
///     GET    IncomingPhoneNumbers.json                        PageSize, Page, PhoneNumber; next_page_uri
///     POST   IncomingPhoneNumbers/PN….json                    VoiceUrl, VoiceMethod, StatusCallback…
///     DELETE IncomingPhoneNumbers/PN….json                    204
///     POST   Calls.json                                       To, From, Url | Twiml, StatusCallback…
///     GET    Recordings/RE….wav                               audio/x-wav
///     DELETE Recordings/RE….json                              204, then 404
///
/// and, for the `calltrace-fake-twilio call` command only, `POST /_fake/InboundCalls` (see
/// `FakeTwilio+Control.swift`).
public final class FakeTwilio: @unchecked Sendable {
    /// The account the fake serves, and its credentials.
    public struct Account: Sendable {
        public var sid: String
        public var authToken: String
        public var apiKey: TwilioAPIKey

        public init(sid: String, authToken: String, apiKey: TwilioAPIKey) {
            self.sid = sid
            self.authToken = authToken
            self.apiKey = apiKey
        }

        /// A new account with random SIDs, token and secret.
        public static func random() -> Account {
            Account(sid: FakeTwilio.newSID("AC"), authToken: FakeTwilio.hex32(),
                    apiKey: TwilioAPIKey(sid: FakeTwilio.newSID("SK"), secret: FakeTwilio.hex32()))
        }
    }

    /// A recording the fake holds until it is deleted.
    public struct Recording: Sendable {
        public let sid: String
        public let callSid: String
        public let wav: Data
        public let channels: Int
        public let durationSeconds: Int
    }

    /// A call placed through `POST Calls.json`, with the form it was placed with.
    public struct PlacedCall: Sendable {
        public let call: CallResource
        public let form: FormParameters
    }

    public let account: Account
    /// The REST API's base URL, e.g. `https://localhost:40123` (what `TwilioClient` takes).
    public var baseURL: String { "https://localhost:\(listener.port)" }
    public var port: Int { listener.port }
    /// `/2010-04-01/Accounts/AC…`
    public var accountPath: String { "/2010-04-01/Accounts/\(account.sid)" }

    private var listener: HTTPSListener!
    let lock = NSLock()
    private var available: [(kind: NumberSearch.Kind, number: AvailablePhoneNumber)] = []
    private var incoming: [IncomingPhoneNumber] = []
    private var recordings: [String: Recording] = [:]
    private var placed: [PlacedCall] = []
    private var log: [String] = []

    /// Serves on `host`:`port` (0: any free port) with `credentials`' certificate, which must
    /// name `localhost` (our PKI's server certificates do).
    public init(credentials: TLSCredentials, account: Account = .random(), host: String = "127.0.0.1", port: Int = 0) throws {
        self.account = account
        listener = try HTTPSListener(host: host, port: port, credentials: credentials) { [unowned self] request in
            self.answer(request)
        }
    }

    public func stop() { listener.stop() }

    // MARK: State a test sets up and reads

    /// Offers `number` for sale.
    public func addAvailableNumber(_ number: AvailablePhoneNumber, kind: NumberSearch.Kind = .local) {
        lock.withLock { available.append((kind, number)) }
    }

    /// Gives the account a number it already holds (one a firm imports), and returns it.
    @discardableResult
    public func addIncomingNumber(_ phoneNumber: String, voiceURL: String? = nil, statusCallback: String? = nil) -> IncomingPhoneNumber {
        let sid = Self.newSID("PN")
        let number = IncomingPhoneNumber(sid: sid, accountSid: account.sid, phoneNumber: phoneNumber, friendlyName: phoneNumber,
                                         voiceUrl: voiceURL, voiceMethod: "POST", statusCallback: statusCallback,
                                         statusCallbackMethod: statusCallback == nil ? nil : "POST",
                                         capabilities: NumberCapabilities(), dateCreated: Self.date(), uri: "\(accountPath)/IncomingPhoneNumbers/\(sid).json")
        lock.withLock { incoming.append(number) }
        return number
    }

    /// The account's numbers, in the order acquired.
    public var incomingNumbers: [IncomingPhoneNumber] { lock.withLock { incoming } }

    public func incomingNumber(_ phoneNumber: String) -> IncomingPhoneNumber? {
        lock.withLock { incoming.first { $0.phoneNumber == phoneNumber } }
    }

    /// Holds `wav` as a recording of `callSid` and returns its SID.
    public func addRecording(callSid: String, wav: Data, channels: Int, durationSeconds: Int) -> String {
        let recording = Recording(sid: Self.newSID("RE"), callSid: callSid, wav: wav, channels: channels, durationSeconds: durationSeconds)
        lock.withLock { recordings[recording.sid] = recording }
        return recording.sid
    }

    /// The recordings still held (not deleted), by SID.
    public var recordingSIDs: Set<String> { lock.withLock { Set(recordings.keys) } }

    public func recording(_ sid: String) -> Recording? { lock.withLock { recordings[sid] } }

    // MARK: Holding requests (for tests that kill a process at a chosen moment)

    private let gate = NSCondition()
    private var holdingDeletes = false
    private var heldDeletes = 0
    private var streamHold: (afterBytes: Int, fromFetch: Int)?
    private var heldStreams = 0
    /// How often each recording's WAV was asked for.
    private var fetches: [String: Int] = [:]

    /// From now on, a request to delete a recording waits (on the listener's thread) until
    /// `releaseDeletes()`: a test can kill the gateway while its delete is in flight.
    public func holdDeletes() { gate.withLock { holdingDeletes = true } }

    /// Lets held deletes (and later ones) go on.
    public func releaseDeletes() {
        gate.withLock {
            holdingDeletes = false
            gate.broadcast()
        }
    }

    /// Deletes waiting now.
    public var deletesHeld: Int { gate.withLock { heldDeletes } }

    /// From now on, a recording's WAV is served in part — its headers and first `bytes` bytes —
    /// and the rest waits (on the listener's thread) until `releaseRecordingStreams()`: a test
    /// can kill a process while a recording is half read. A recording's reads before its
    /// `fromFetch`-th are served whole: the gateway reads each recording twice (its SHA-256,
    /// then into media), so `fromFetch: 2` holds the read streamed into media.
    public func holdRecordingStreams(after bytes: Int, fromFetch: Int = 1) { gate.withLock { streamHold = (bytes, fromFetch) } }

    /// Lets held recording streams (and later ones) go on.
    public func releaseRecordingStreams() {
        gate.withLock {
            streamHold = nil
            gate.broadcast()
        }
    }

    /// Recording streams waiting now, part sent.
    public var recordingStreamsHeld: Int { gate.withLock { heldStreams } }

    private func waitWhileDeletesHeld() { waitWhile({ $0.holdingDeletes }, counting: \.heldDeletes) }

    /// How the WAV of `sid` is served now: whole (nil), or paused while streams are held.
    private func streamPause(of sid: String) -> HTTPResponse.Pause? {
        gate.withLock {
            fetches[sid, default: 0] += 1
            guard let hold = streamHold, fetches[sid]! >= hold.fromFetch else { return nil }
            return HTTPResponse.Pause(afterBytes: hold.afterBytes) { [self] in waitWhile({ $0.streamHold != nil }, counting: \.heldStreams) }
        }
    }

    /// Waits while `holding`, counted in `held`.
    private func waitWhile(_ holding: (FakeTwilio) -> Bool, counting held: ReferenceWritableKeyPath<FakeTwilio, Int>) {
        gate.withLock {
            guard holding(self) else { return }
            self[keyPath: held] += 1
            while holding(self) { gate.wait() }
            self[keyPath: held] -= 1
        }
    }

    /// Where a recording is served from, as Twilio's `RecordingUrl` gives it (no extension).
    public func recordingURL(_ sid: String) -> String { "\(baseURL)\(accountPath)/Recordings/\(sid)" }

    public var placedCalls: [PlacedCall] { lock.withLock { placed } }

    /// Each REST request answered, as `METHOD path status` (paths hold SIDs, never a secret).
    public var requestLog: [String] { lock.withLock { log } }

    // MARK: The REST API

    private func answer(_ request: HTTPRequest) -> HTTPResponse {
        let response = route(request)
        lock.withLock { log.append("\(request.method) \(request.path) \(response.status)") }
        return response
    }

    private func route(_ request: HTTPRequest) -> HTTPResponse {
        guard authorised(request.headers["authorization"]) else {
            return Self.error(401, code: 20003, "Authenticate")
        }
        if request.method == "POST", request.path == "/_fake/InboundCalls" { return driveInboundCall(request) }
        let prefix = accountPath + "/"
        guard request.path.hasPrefix(prefix) else {
            return Self.error(404, code: 20404, "The requested resource \(request.path) was not found")
        }
        let resource = request.path.dropFirst(prefix.count).split(separator: "/").map(String.init)
        let form = (try? FormParameters(parsing: request.body)) ?? FormParameters()
        switch (request.method, resource.count, resource.first) {
        case ("GET", 3, "AvailablePhoneNumbers"):
            return searchAvailable(country: resource[1], kind: resource[2], query: request.query, path: request.path)
        case ("POST", 1, "IncomingPhoneNumbers.json"):
            return buy(form)
        case ("GET", 1, "IncomingPhoneNumbers.json"):
            return listIncoming(request.query)
        case ("POST", 2, "IncomingPhoneNumbers"):
            return updateIncoming(sid: Self.sid(resource[1], ".json"), form, path: request.path)
        case ("DELETE", 2, "IncomingPhoneNumbers"):
            return releaseIncoming(sid: Self.sid(resource[1], ".json"), path: request.path)
        case ("POST", 1, "Calls.json"):
            return placeCall(form)
        case ("GET", 2, "Recordings") where resource[1].hasSuffix(".wav"):
            guard let recording = recording(Self.sid(resource[1], ".wav")) else { return Self.notFound(request.path) }
            return HTTPResponse(status: 200, contentType: "audio/x-wav", body: recording.wav, pause: streamPause(of: recording.sid))
        case ("DELETE", 2, "Recordings"):
            waitWhileDeletesHeld()
            let removed = lock.withLock { recordings.removeValue(forKey: Self.sid(resource[1], ".json")) }
            return removed == nil ? Self.notFound(request.path) : HTTPResponse(status: 204, body: Data())
        default:
            return Self.notFound(request.path)
        }
    }

    private func authorised(_ header: String?) -> Bool {
        guard let header, header.hasPrefix("Basic "), let decoded = Data(base64Encoded: String(header.dropFirst(6))) else { return false }
        let given = String(decoding: decoded, as: UTF8.self)
        return account.apiKey.matches(basicCredentials: given) || given == "\(account.sid):\(account.authToken)"
    }

    private func searchAvailable(country: String, kind: String, query: FormParameters, path: String) -> HTTPResponse {
        guard kind.hasSuffix(".json"), let kind = NumberSearch.Kind(rawValue: String(kind.dropLast(".json".count))) else {
            return Self.notFound(path)
        }
        let areaPrefix = query["AreaCode"].map { "+44" + $0.drop(while: { $0 == "0" }) }
        let found = lock.withLock { available }.filter { entry in
            entry.kind == kind && entry.number.isoCountry == country
                && (areaPrefix.map { entry.number.phoneNumber.hasPrefix($0) } ?? true)
                && (query["Contains"].map { Self.matches(entry.number.phoneNumber, pattern: $0) } ?? true)
        }.map(\.number)
        let limit = Int(query["PageSize"] ?? "") ?? 50
        return .json(AvailablePhoneNumberList(availablePhoneNumbers: Array(found.prefix(limit)), uri: path))
    }

    /// Twilio's `Contains`: `*` matches any one character; a pattern without `+` may match anywhere.
    static func matches(_ number: String, pattern: String) -> Bool {
        let digits = Array(number), wanted = Array(pattern)
        guard wanted.count <= digits.count else { return false }
        return (0...(digits.count - wanted.count)).contains { start in
            zip(digits[start...], wanted).allSatisfy { $1 == "*" || $0 == $1 }
        }
    }

    private func buy(_ form: FormParameters) -> HTTPResponse {
        guard let phoneNumber = form["PhoneNumber"] else { return Self.error(400, code: 21421, "PhoneNumber is required.") }
        return lock.withLock { () -> HTTPResponse in
            guard let index = available.firstIndex(where: { $0.number.phoneNumber == phoneNumber }) else {
                return Self.error(400, code: 21422, "PhoneNumber \(phoneNumber) is not available.")
            }
            let offered = available[index].number
            // UK numbers need a regulatory bundle, and an address when the number says so.
            if offered.isoCountry == "GB", form["BundleSid"] == nil {
                return Self.error(400, code: 21649, "Phone Number Requires a Bundle.")
            }
            if offered.addressRequirements != "none", form["AddressSid"] == nil {
                return Self.error(400, code: 21631, "Phone Number Requires an Address.")
            }
            available.remove(at: index)
            let sid = Self.newSID("PN")
            var number = IncomingPhoneNumber(sid: sid, accountSid: account.sid, phoneNumber: phoneNumber,
                                             friendlyName: form["FriendlyName"] ?? offered.friendlyName, voiceMethod: "POST",
                                             bundleSid: form["BundleSid"], addressSid: form["AddressSid"], capabilities: offered.capabilities,
                                             dateCreated: Self.date(), uri: "\(accountPath)/IncomingPhoneNumbers/\(sid).json")
            Self.applyWebhooks(form, to: &number)
            incoming.append(number)
            return .json(number, status: 201)
        }
    }

    private static func applyWebhooks(_ form: FormParameters, to number: inout IncomingPhoneNumber) {
        if let url = form["VoiceUrl"] { number.voiceUrl = url }
        if let method = form["VoiceMethod"] { number.voiceMethod = method }
        if let url = form["StatusCallback"] { number.statusCallback = url }
        if let method = form["StatusCallbackMethod"] { number.statusCallbackMethod = method }
        if let name = form["FriendlyName"] { number.friendlyName = name }
    }

    private func listIncoming(_ query: FormParameters) -> HTTPResponse {
        let pageSize = max(1, min(1000, Int(query["PageSize"] ?? "") ?? 50))
        let page = max(0, Int(query["Page"] ?? "") ?? 0)
        let numbers = lock.withLock { incoming }.filter { number in query["PhoneNumber"].map { $0 == number.phoneNumber } ?? true }
        let start = min(numbers.count, page * pageSize)
        let slice = Array(numbers[start..<min(numbers.count, start + pageSize)])
        let listPath = "\(accountPath)/IncomingPhoneNumbers.json"
        var next: String?
        if start + pageSize < numbers.count {
            // Twilio's next page carries an opaque PageToken beside Page and PageSize.
            next = "\(listPath)?PageSize=\(pageSize)&Page=\(page + 1)&PageToken=PA\(Self.hex32())"
        }
        return .json(IncomingPhoneNumberPage(incomingPhoneNumbers: slice, page: page, pageSize: pageSize, nextPageUri: next,
                                             uri: "\(listPath)?PageSize=\(pageSize)&Page=\(page)"))
    }

    private func updateIncoming(sid: String, _ form: FormParameters, path: String) -> HTTPResponse {
        lock.withLock { () -> HTTPResponse in
            guard let index = incoming.firstIndex(where: { $0.sid == sid }) else { return Self.notFound(path) }
            Self.applyWebhooks(form, to: &incoming[index])
            return .json(incoming[index])
        }
    }

    private func releaseIncoming(sid: String, path: String) -> HTTPResponse {
        lock.withLock {
            guard let index = incoming.firstIndex(where: { $0.sid == sid }) else { return Self.notFound(path) }
            incoming.remove(at: index)
            return HTTPResponse(status: 204, body: Data())
        }
    }

    private func placeCall(_ form: FormParameters) -> HTTPResponse {
        guard let to = form["To"] else { return Self.error(400, code: 21201, "No 'To' number is specified") }
        guard let from = form["From"] else { return Self.error(400, code: 21213, "No 'From' number is specified") }
        guard form["Url"] != nil || form["Twiml"] != nil else {
            return Self.error(400, code: 21205, "Either Url, Twiml or ApplicationSid is required")
        }
        guard incomingNumber(from) != nil else {
            return Self.error(400, code: 21210, "The source phone number provided, \(from), is not yet verified for your account.")
        }
        let sid = Self.newSID("CA")
        let call = CallResource(sid: sid, accountSid: account.sid, to: to, from: from, status: "queued", direction: "outbound-api",
                                dateCreated: Self.date(), uri: "\(accountPath)/Calls/\(sid).json")
        lock.withLock { placed.append(PlacedCall(call: call, form: form)) }
        return .json(call, status: 201)
    }

    // MARK: Twilio's shapes

    static func error(_ status: Int, code: Int, _ message: String) -> HTTPResponse {
        .json(TwilioErrorBody(code: code, message: message, moreInfo: "https://www.twilio.com/docs/errors/\(code)", status: status), status: status)
    }

    static func notFound(_ path: String) -> HTTPResponse {
        error(404, code: 20404, "The requested resource \(path) was not found")
    }

    /// `RE…` from `RE….wav`.
    private static func sid(_ file: String, _ suffix: String) -> String {
        file.hasSuffix(suffix) ? String(file.dropLast(suffix.count)) : file
    }

    /// `prefix` and 32 lower-case hex digits, as Twilio's SIDs are.
    public static func newSID(_ prefix: String) -> String { prefix + hex32() }

    static func hex32() -> String { UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased() }

    /// Now in RFC 2822, as Twilio writes dates.
    static func date(_ date: Date = Date()) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss Z"
        return formatter.string(from: date)
    }
}
