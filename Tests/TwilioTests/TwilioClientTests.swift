import CallTraceOutbound
import CallTraceTestSupport
import FakeTwilio
import Foundation
import Testing
@testable import Twilio

/// A fake Twilio over TLS with a certificate of a throw-away PKI, and a client of it through libcurl.
struct TwilioWorld {
    static let secret = "s3cr3t-api-key-secret-0123456789"
    let pki: TemporaryPKI
    let fake: FakeTwilio
    let client: TwilioClient

    init() throws {
        pki = try TemporaryPKI()
        let account = FakeTwilio.Account(sid: FakeTwilio.newSID("AC"), authToken: "auth-token-\(UUID().uuidString)",
                                         apiKey: TwilioAPIKey(sid: FakeTwilio.newSID("SK"), secret: Self.secret))
        fake = try FakeTwilio(credentials: try pki.credentials(for: TemporaryPKI.identity("service", "twilio")), account: account)
        client = try TwilioClient(configuration: .init(accountSID: account.sid, baseURL: fake.baseURL), apiKey: account.apiKey,
                                  transport: CurlHTTPS(caFile: pki.caPath))
    }

    func client(using apiKey: TwilioAPIKey) throws -> TwilioClient {
        try TwilioClient(configuration: client.configuration, apiKey: apiKey, transport: CurlHTTPS(caFile: pki.caPath))
    }
}

/// Gathers a streamed download, counting the pieces it came in.
final class CollectingSink: HTTPSResponseSink, @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    private var pieces = 0

    func received(_ piece: Data, status: Int) throws {
        lock.withLock {
            data.append(piece)
            pieces += 1
        }
    }

    var collected: (data: Data, pieces: Int) { lock.withLock { (data, pieces) } }
}

@Suite("Twilio: the REST client against the fake Twilio, over TLS", .timeLimit(.minutes(2)))
struct TwilioClientTests {
    static let webhooks = NumberWebhooks(voiceURL: "https://tel.example.test/twilio/voice", statusCallback: "https://tel.example.test/twilio/status")

    @Test("Search: GB local numbers by area code or contained digits, and mobiles, decoded with Twilio's field names")
    func search() async throws {
        let world = try TwilioWorld()
        defer { world.fake.stop() }
        world.fake.addAvailableNumber(AvailablePhoneNumber(phoneNumber: "+441615550100", friendlyName: "0161 555 0100", locality: "Manchester"))
        world.fake.addAvailableNumber(AvailablePhoneNumber(phoneNumber: "+441615550199", friendlyName: "0161 555 0199", locality: "Manchester"))
        world.fake.addAvailableNumber(AvailablePhoneNumber(phoneNumber: "+442079460000", friendlyName: "020 7946 0000", locality: "London"))
        world.fake.addAvailableNumber(AvailablePhoneNumber(phoneNumber: "+447700900555", friendlyName: "07700 900555"), kind: .mobile)

        let manchester = try await world.client.searchAvailableNumbers(NumberSearch(areaCode: "0161"))
        #expect(manchester.map(\.phoneNumber) == ["+441615550100", "+441615550199"])
        #expect(manchester.first?.locality == "Manchester" && manchester.first?.isoCountry == "GB" && manchester.first?.capabilities?.voice == true)
        #expect(try await world.client.searchAvailableNumbers(NumberSearch(contains: "+44207*46")).map(\.phoneNumber) == ["+442079460000"])
        #expect(try await world.client.searchAvailableNumbers(NumberSearch(kind: .mobile)).map(\.phoneNumber) == ["+447700900555"])
        #expect(try await world.client.searchAvailableNumbers(NumberSearch(areaCode: "0113")).isEmpty)
        #expect(world.fake.requestLog.first?.hasPrefix("GET \(world.fake.accountPath)/AvailablePhoneNumbers/GB/Local.json 200") == true)
    }

    @Test("Buy: with the bundle and address a UK number needs, its webhooks set; without a bundle, or gone, a typed refusal with no number in it")
    func buy() async throws {
        let world = try TwilioWorld()
        defer { world.fake.stop() }
        world.fake.addAvailableNumber(AvailablePhoneNumber(phoneNumber: "+441615550100", friendlyName: "0161 555 0100"))
        let bundle = FakeTwilio.newSID("BU"), address = FakeTwilio.newSID("AD")

        let noBundle = await #expect(throws: TwilioError.self) {
            _ = try await world.client.buyNumber(NumberPurchase(phoneNumber: "+441615550100", bundleSID: nil, addressSID: address, webhooks: Self.webhooks))
        }
        #expect(noBundle?.kind == .refused && noBundle?.code == 21649 && noBundle?.isRetryable == false)

        let bought = try await world.client.buyNumber(NumberPurchase(phoneNumber: "+441615550100", bundleSID: bundle, addressSID: address,
                                                                     friendlyName: "Google Ads", webhooks: Self.webhooks))
        #expect(bought.sid.hasPrefix("PN") && bought.phoneNumber == "+441615550100" && bought.friendlyName == "Google Ads")
        #expect(bought.voiceUrl == Self.webhooks.voiceURL && bought.voiceMethod == "POST" && bought.statusCallback == Self.webhooks.statusCallback)
        #expect(bought.bundleSid == bundle && bought.addressSid == address && bought.accountSid == world.fake.account.sid)
        #expect(world.fake.incomingNumber("+441615550100")?.voiceUrl == Self.webhooks.voiceURL)

        let gone = await #expect(throws: TwilioError.self) {
            _ = try await world.client.buyNumber(NumberPurchase(phoneNumber: "+441615550100", bundleSID: bundle, addressSID: address, webhooks: Self.webhooks))
        }
        let text = gone.map(String.init(describing:)) ?? ""
        #expect(gone?.code == 21422 && gone?.status == 400 && text.contains("[number]"), "\(text)")
        #expect(!text.contains("1615550100") && !text.contains(TwilioWorld.secret), "\(text)")
    }

    @Test("Update a number's webhooks; an unknown number is notFound")
    func updateWebhooks() async throws {
        let world = try TwilioWorld()
        defer { world.fake.stop() }
        let held = world.fake.addIncomingNumber("+441615550100", voiceURL: "https://old.example.test/voice")
        let updated = try await world.client.updateWebhooks(ofNumber: held.sid, Self.webhooks)
        #expect(updated.voiceUrl == Self.webhooks.voiceURL && updated.statusCallback == Self.webhooks.statusCallback)
        #expect(world.fake.incomingNumber("+441615550100")?.statusCallbackMethod == "POST")
        let missing = await #expect(throws: TwilioError.self) {
            _ = try await world.client.updateWebhooks(ofNumber: FakeTwilio.newSID("PN"), Self.webhooks)
        }
        #expect(missing?.kind == .notFound && missing?.code == 20404)
    }

    @Test("List: every page read through next_page_uri, in order; narrowed to one number for an import")
    func listWithPaging() async throws {
        let world = try TwilioWorld()
        defer { world.fake.stop() }
        let numbers = (0..<7).map { "+44161555010\($0)" }
        for number in numbers { world.fake.addIncomingNumber(number) }
        let listed = try await world.client.listIncomingNumbers(pageSize: 3)
        #expect(listed.map(\.phoneNumber) == numbers)
        let listPath = "\(world.fake.accountPath)/IncomingPhoneNumbers.json"
        #expect(world.fake.requestLog.filter { $0 == "GET \(listPath) 200" }.count == 3, "three pages of three")
        #expect(try await world.client.listIncomingNumbers(phoneNumber: numbers[4]).map(\.phoneNumber) == [numbers[4]])
    }

    @Test("Release: 204, the number leaves the account; released again, notFound")
    func release() async throws {
        let world = try TwilioWorld()
        defer { world.fake.stop() }
        let held = world.fake.addIncomingNumber("+441615550100")
        try await world.client.releaseNumber(sid: held.sid)
        #expect(world.fake.incomingNumbers.isEmpty)
        let again = await #expect(throws: TwilioError.self) { try await world.client.releaseNumber(sid: held.sid) }
        #expect(again?.kind == .notFound)
    }

    @Test("Place a call: queued, outbound-api, with Twilio's parameter names (repeated StatusCallbackEvent); from a number not ours, refused")
    func placeCall() async throws {
        let world = try TwilioWorld()
        defer { world.fake.stop() }
        world.fake.addIncomingNumber("+441615550100")
        let call = try await world.client.placeCall(OutboundCall(
            to: "+447700900123", from: "+441615550100", instructions: .url("https://tel.example.test/twilio/callback/answered"),
            statusCallback: "https://tel.example.test/twilio/status", statusCallbackEvents: [.answered, .completed], timeoutSeconds: 30))
        #expect(call.sid.hasPrefix("CA") && call.status == "queued" && call.direction == "outbound-api" && call.to == "+447700900123")
        let form = try #require(world.fake.placedCalls.first?.form)
        #expect(form["Url"] == "https://tel.example.test/twilio/callback/answered" && form["Method"] == "POST" && form["Timeout"] == "30")
        #expect(form.values(of: "StatusCallbackEvent") == ["answered", "completed"] && form["StatusCallbackMethod"] == "POST")

        let inline = try await world.client.placeCall(OutboundCall(to: "+447700900123", from: "+441615550100",
                                                                   instructions: .twiml(TwiML([.say(TwiML.Say("Hello"))]))))
        #expect(world.fake.placedCalls.last?.form["Twiml"] == TwiML([.say(TwiML.Say("Hello"))]).rendered && inline.sid != call.sid)

        let refused = await #expect(throws: TwilioError.self) {
            _ = try await world.client.placeCall(OutboundCall(to: "+447700900123", from: "+441615559999", instructions: .url("https://x.test/a")))
        }
        #expect(refused?.code == 21210 && !(refused?.description.contains("5559999") ?? true))
    }

    @Test("A recording's WAV is streamed to the sink in pieces, byte for byte (same SHA-256); deleted it is gone: 404 says alreadyGone")
    func recordings() async throws {
        let world = try TwilioWorld()
        defer { world.fake.stop() }
        var generator = SystemRandomNumberGenerator()
        let wav = Data("RIFF".utf8) + Data((0..<600_000).map { _ in UInt8.random(in: 0...255, using: &generator) })
        let sid = world.fake.addRecording(callSid: FakeTwilio.newSID("CA"), wav: wav, channels: 2, durationSeconds: 42)

        let sink = CollectingSink()
        let count = try await world.client.fetchRecordingWAV(sid: sid, into: sink)
        let (received, pieces) = sink.collected
        #expect(count == wav.count && received.count == wav.count)
        #expect(TwilioSignature.bodySHA256(received) == TwilioSignature.bodySHA256(wav))
        #expect(pieces > 1, "streamed as it arrived, not handed over whole")

        #expect(try await world.client.deleteRecording(sid: sid) == .deleted)
        #expect(!world.fake.recordingSIDs.contains(sid))
        #expect(try await world.client.deleteRecording(sid: sid) == .alreadyGone)
        let after = CollectingSink()
        let gone = await #expect(throws: TwilioError.self) { _ = try await world.client.fetchRecordingWAV(sid: sid, into: after) }
        #expect(gone?.kind == .notFound && after.collected.data.isEmpty, "an error answer never reaches the sink")
    }

    @Test("A sink that refuses stops the download with its own error")
    func sinkFailure() async throws {
        struct MediaRefused: Error {}
        final class RefusingSink: HTTPSResponseSink, @unchecked Sendable {
            func received(_ data: Data, status: Int) throws { throw MediaRefused() }
        }
        let world = try TwilioWorld()
        defer { world.fake.stop() }
        let sid = world.fake.addRecording(callSid: FakeTwilio.newSID("CA"), wav: Data(count: 200_000), channels: 1, durationSeconds: 3)
        await #expect(throws: MediaRefused.self) { _ = try await world.client.fetchRecordingWAV(sid: sid, into: RefusingSink()) }
    }

    @Test("A wrong secret: authentication, HTTP 401, Twilio's code 20003, not retryable, and the secret nowhere in the text")
    func wrongSecret() async throws {
        let world = try TwilioWorld()
        defer { world.fake.stop() }
        let wrong = try world.client(using: TwilioAPIKey(sid: world.fake.account.apiKey.sid, secret: "wrong-secret-value"))
        let error = await #expect(throws: TwilioError.self) { _ = try await wrong.listIncomingNumbers() }
        let text = error.map(String.init(describing:)) ?? ""
        #expect(error?.kind == .authentication && error?.status == 401 && error?.code == 20003 && error?.isRetryable == false)
        #expect(text.hasPrefix("listing the account's numbers at Twilio failed: HTTP 401"), "\(text)")
        #expect(!text.contains("wrong-secret-value") && !text.contains(TwilioWorld.secret), "\(text)")
    }

    @Test("The API key file: mode 0644 refused with what to do and nothing of its contents; 0600 read; the key never prints its secret")
    func credentialsFile() throws {
        // Digits in the path as a UUID's can fall (they once made this test fail now and then): the
        // message names the path whole, not as a phone number hidden.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("twilio-key-12345678-9012-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("api-key").path
        let sid = FakeTwilio.newSID("SK")
        try Data("\(sid):\(TwilioWorld.secret)\n".utf8).write(to: URL(fileURLWithPath: path))

        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
        let error = #expect(throws: TwilioError.self) { _ = try TwilioAPIKey.read(from: path) }
        let text = error.map(String.init(describing:)) ?? ""
        #expect(error?.kind == .configuration && text.hasPrefix("reading the API key failed: ") && text.contains("chmod 600")
            && text.contains(path), "\(text)")
        #expect(!text.contains(TwilioWorld.secret) && !text.contains(sid))

        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        let key = try TwilioAPIKey.read(from: path)
        #expect(key.sid == sid && key.matches(basicCredentials: "\(sid):\(TwilioWorld.secret)"))
        var dumped = ""
        dump(key, to: &dumped)
        for shown in [String(describing: key), String(reflecting: key), "\(key)", dumped] {
            #expect(!shown.contains(TwilioWorld.secret), "\(shown)")
        }

        try Data("no colon here".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: TwilioError.self) { _ = try TwilioAPIKey.read(from: path) }
    }

    @Test("Twilio's messages lose their phone numbers, not their SIDs or error codes")
    func scrubbing() {
        let error = TwilioError(.refused, operation: "buying a number", status: 400, code: 21422,
                                message: "PhoneNumber +44 161 555 0100 is not available for AC0123456789abcdef0123456789abcdef (call 07700 900123).")
        #expect(error.message == "PhoneNumber [number] is not available for AC0123456789abcdef0123456789abcdef (call [number]).")
        #expect(error.description == "buying a number at Twilio failed: HTTP 400, code 21422: \(error.message)")
        // A long run of brackets and pluses is read once (each of its characters once began a new reading to its end).
        let brackets = String(repeating: "( +", count: 200_000)
        #expect(TwilioError.withoutPhoneNumbers(brackets + "x 0161 555 0100.") == brackets + "x [number].")
    }

    @Test("A malformed SID never reaches a URL path")
    func malformedSID() async throws {
        let world = try TwilioWorld()
        defer { world.fake.stop() }
        let error = await #expect(throws: TwilioError.self) { _ = try await world.client.deleteRecording(sid: "RE../../Calls") }
        #expect(error?.kind == .configuration && world.fake.requestLog.isEmpty)
    }
}
