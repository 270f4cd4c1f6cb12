import ArgumentParser
import CallTraceOutbound
import CallTraceTLS
import FakeTwilio
import Foundation
import Twilio

/// The fake Twilio for `make demo`: `serve` runs its REST API; `call` plays one inbound call
/// through a running fake against the telephony gateway. No network beyond this machine.
@main
struct FakeTwilioCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calltrace-fake-twilio",
        abstract: "A local stand-in for Twilio: its REST API, and calls played as signed webhooks.",
        subcommands: [Serve.self, Call.self])
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the fake REST API over HTTPS on loopback and print its URL on the first line.")

    @Option(help: "PEM certificate chain naming localhost.") var cert: String
    @Option(help: "PEM private key of the certificate.") var key: String
    @Option(help: "Port to listen on (0: any free port).") var port = 0
    @Option(help: "The account SID (AC and 32 hex digits).") var accountSid: String
    @Option(help: "File (mode 0600) holding the account's auth token, which signs webhooks.") var authTokenFile: String
    @Option(help: "File (mode 0600) holding <API key SID>:<secret>, the REST API's credentials.") var apiKeyFile: String
    @Option(help: "A number the account holds, as E.164, with its voice and status webhooks: number,voiceURL[,statusURL]. Repeatable.")
    var number: [String] = []

    func run() async throws {
        guard TwilioSID.isValid(accountSid, prefix: "AC") else { throw ValidationError("--account-sid must be AC and 32 hex digits") }
        let authToken = try SecretFile.read(authTokenFile).trimmingCharacters(in: .whitespacesAndNewlines)
        let account = FakeTwilio.Account(sid: accountSid, authToken: authToken, apiKey: try TwilioAPIKey.read(from: apiKeyFile))
        // The CA is not used by the server (it asks for no client certificate).
        let fake = try FakeTwilio(credentials: TLSCredentials(certificateChainPath: cert, privateKeyPath: key, trustRootsPath: cert),
                                  account: account, port: port)
        for entry in number {
            let parts = entry.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard parts.count >= 2 else { throw ValidationError("--number takes number,voiceURL[,statusURL]") }
            fake.addIncomingNumber(parts[0], voiceURL: parts[1], statusCallback: parts.count > 2 ? parts[2] : nil)
        }
        // Written unbuffered, so a script reading the first line sees it at once.
        FileHandle.standardOutput.write(Data((fake.baseURL + "\n").utf8))
        // Serves until the process is stopped — or, started with CALLTRACE_LIFELINE=stdin (as the
        // services are by scripts/local-deployment.sh), until its standard input closes: however
        // the script that started it ends, it does not outlive it.
        if ProcessInfo.processInfo.environment["CALLTRACE_LIFELINE"] == "stdin" {
            // Its own thread, not one of the few that serve the calls it plays.
            Thread {
                while !FileHandle.standardInput.availableData.isEmpty {}
                Foundation.exit(0)
            }.start()
        }
        while true { try await Task.sleep(for: .seconds(3600)) }
    }
}

struct Call: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Play one inbound call (or answer a placed call back) through a running fake: webhooks, TwiML followed, recording and status callbacks.",
        discussion: "Prints the fake's JSON summary: call_sid, final_status, recording_sids, and each webhook's url and status.")

    @Option(help: "The running fake's URL (what serve printed).") var fake: String
    @Option(help: "CA certificate that signed the fake's certificate.") var ca: String
    @Option(help: "The account SID the fake serves.") var accountSid: String
    @Option(help: "File (mode 0600) holding the account's auth token (the fake takes it as basic auth, as Twilio does).")
    var authTokenFile: String
    @Option(help: "Where the telephony gateway listens, e.g. http://127.0.0.1:8089.") var gateway: String
    @Option(help: "The gateway's public base URL, which webhooks are signed over.") var publicUrl: String
    @Option(help: "The caller's number (E.164).") var from: String?
    @Option(help: "The account's number called (E.164).") var to: String?
    @Option(help: "Instead of --from and --to: answer a call placed through the REST API (a call back), by its SID or `latest`.")
    var answerPlaced: String?
    @Option(help: "WAV file served as the call's recording.") var wav: String
    @Option(help: "What the dialled leg does: answers, no-answer, busy or failed.") var dialledLeg = "answers"
    @Option(help: "CA certificate for an https:// gateway.") var gatewayCa: String?

    func run() async throws {
        let authToken = try SecretFile.read(authTokenFile).trimmingCharacters(in: .whitespacesAndNewlines)
        guard answerPlaced != nil || (from != nil && to != nil) else { throw ValidationError("give --from and --to, or --answer-placed") }
        var form: FormParameters = ["Gateway": gateway, "PublicUrl": publicUrl, "WavFile": URL(fileURLWithPath: wav).path, "DialledLeg": dialledLeg]
        form.append("From", from)
        form.append("To", to)
        form.append("AnswerPlaced", answerPlaced)
        form.append("CAFile", gatewayCa.map { URL(fileURLWithPath: $0).path })
        let credentials = Data("\(accountSid):\(authToken)".utf8).base64EncodedString()
        var request = HTTPSRequest(url: fake.trimmingCharacters(in: ["/"]) + "/_fake/InboundCalls",
                                   headers: [("Authorization", "Basic \(credentials)"), ("Content-Type", "application/x-www-form-urlencoded")],
                                   body: form.encoded, timeout: .seconds(300))
        request.method = "POST"
        let response = try await CurlHTTPS(caFile: ca).send(request)
        print(String(decoding: response.body, as: UTF8.self))
        guard response.status == 200 else { throw ExitCode.failure }
    }
}
