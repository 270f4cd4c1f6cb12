import ArgumentParser
import CallTraceAPI
import CallTraceRPC
import CallTraceTLS
import Foundation
import SwiftProtobuf

/// A service the user-facing commands call: its name (in its SPIFFE id) and default port. Each
/// command group declares its own (`MediaTarget` in MediaCommands, …).
package protocol ServiceTarget {
    static var name: String { get }
    static var defaultPort: Int { get }
    /// `service`, or `gateway` for a gateway that serves calls of its own (its certificate names it `gateway/<name>`).
    static var identityKind: String { get }
}

extension ServiceTarget {
    package static var identityKind: String { "service" }
}

/// Identity, the one service every group may ask besides its own: the people behind the actors
/// it prints (`people(org:)`), and the identity commands' own target.
package enum IdentityTarget: ServiceTarget {
    package static let name = "identity"
    package static let defaultPort = DefaultPorts.identity
}

/// The certificate `<caller>.crt`/`.key` and `ca.crt` of a PKI folder (as `pki init` writes
/// them), and the trust domain the certificate names.
package func callerCredentials(pki: String, caller: String) throws -> (TLSCredentials, trustDomain: String) {
    let directory = URL(fileURLWithPath: pki)
    let credentials = TLSCredentials(certificateChainPath: directory.appendingPathComponent("\(caller).crt").path,
                                     privateKeyPath: directory.appendingPathComponent("\(caller).key").path,
                                     trustRootsPath: directory.appendingPathComponent("ca.crt").path)
    let own = try TLSContext.shared(role: .client, credentials: credentials).identity
    guard let trustDomain = PeerIdentity(uri: own)?.trustDomain else { throw ValidationError("\(caller).crt has no SPIFFE id") }
    return (credentials, trustDomain)
}

/// Where a service is, who we are, for whom: the options every command that calls a service's
/// RPCs shares. Two ways in:
/// - a firm's staff: `--url` (the firm's CallTrace web address) with their API token, through
///   the web gateway's `/api/v1/rpc` (`WebGatewayChannel`): no certificate, and their address is
///   the one the gateway sees;
/// - operators (and a gateway's own tooling): `--as <certificate>` with `--pki`, straight to the
///   service over mutual TLS.
/// Exit status: 0 done, 1 failed, 3 not found, 4 not allowed, 5 unreachable.
package struct ServiceCallOptions<Target: ServiceTarget>: ParsableArguments {
    @Option(help: "Your firm's CallTrace web address, e.g. https://calltrace.firm.example, with your API token in $CALLTRACE_TOKEN (default: $CALLTRACE_URL, or \"url\" in the CLI config file).")
    var url: String?
    @Option(name: .customLong("ca-file"), help: "The CA certificate of the web address, when the system does not trust it (default: $CALLTRACE_CA_FILE, or \"ca_file\" in the CLI config file).")
    var caFile: String?
    @Option(help: "Operators: folder with ca.crt and the caller's certificate (default: $CALLTRACE_PKI, or \"pki\" in the CLI config file).") var pki: String?
    @Option(name: .customLong("as"), help: "Operators: the certificate base name to present, e.g. operator-alice (default: $CALLTRACE_AS, or \"as\" in the CLI config file).")
    var certificate: String?
    @Option(help: "host:port of the \(Target.name) service (default: the deployment file's, else 127.0.0.1:\(Target.defaultPort)).")
    var target: String?
    @Option(help: "Deployment file (services: name → host:port) (default: $CALLTRACE_DEPLOYMENT, or \"deployment\" in the CLI config file).")
    var deployment: String?
    // Tokens are base64url and may begin with '-': taken whole, never as an option.
    @Option(parsing: .unconditional, help: "A user's session token or API token (default: $CALLTRACE_TOKEN).") var token: String?
    @Option(name: .customLong("client-address"), help: "A credential gateway's own tooling (--as gateway-…): the end user's address. Not with --url: the web app passes yours.")
    var clientAddress: String?
    @Option(name: .customLong("timeout-ms"), help: "Per-call timeout (uploads and playback: per call, whole).") var timeoutMS = 600_000
    @Flag(help: "Print JSON.") package var json = false

    package init() {}

    /// How the calls go: through the web app as a person, or straight to a service with a certificate.
    package enum Route: Equatable {
        case webApp(url: String)
        case certificate(String)
    }

    /// The route the flags, else the environment or config file, choose: `--url` or `--as` given
    /// on the command line wins; else `as`, then `url`, from the environment or file.
    package var route: Route {
        get throws {
            switch (url, certificate) {
            case (.some, .some): throw ValidationError("give --url (a firm's staff, with an API token) or --as (operators, with a certificate), not both")
            case (let url?, nil): return .webApp(url: url)
            case (nil, let certificate?): return .certificate(certificate)
            case (nil, nil):
                if case .failure(let error) = CLIDefaults.file { throw error }
                if let certificate = CLIDefaults.value("as") { return .certificate(certificate) }
                if let url = CLIDefaults.value("url") { return .webApp(url: url) }
                throw ValidationError("""
                    say how to reach CallTrace: a firm's staff give --url (the firm's CallTrace web address; or CALLTRACE_URL) \
                    with an API token made in the web app under Account → API tokens in CALLTRACE_TOKEN; operators give \
                    --as operator-<name> with --pki (or CALLTRACE_AS and CALLTRACE_PKI, or "url"/"as" in \(CLIDefaults.path))
                    """)
            }
        }
    }

    /// Refused while parsing, so the usage shown is the command's: an address claimed through the web app.
    package func validate() throws {
        if clientAddress != nil, case .webApp? = try? route {
            throw ValidationError("--client-address is not for the web app: it passes the address it sees yours calling from")
        }
    }

    /// The certificate the calls present (`--as`), nil through the web app.
    var caller: String? { if case .certificate(let name)? = try? route { name } else { nil } }

    func client() throws -> any RPCChannel { try client(of: Target.self, at: target) }

    /// A client of `service`: through the web app, or at `address` or where the deployment file
    /// puts it, else on its default port.
    func client<Other: ServiceTarget>(of service: Other.Type, at address: String? = nil) throws -> any RPCChannel {
        let caller: String
        switch try route {
        case .webApp(let url):
            if clientAddress != nil {
                throw ValidationError("--client-address is not for the web app: it passes the address it sees yours calling from")
            }
            do {
                return try WebGatewayChannel(url: url, caFile: caFile ?? CLIDefaults.value("ca_file"))
            } catch let error as RPCError {
                throw ValidationError(error.message)
            }
        case .certificate(let name):
            caller = name
        }
        let (credentials, trustDomain) = try callerCredentials(pki: try CLIDefaults.required(pki, "pki", option: "--pki"), caller: caller)
        var target = address
        if target == nil, let path = deployment ?? CLIDefaults.value("deployment") {
            do {
                let named = try Deployment.load(path)
                target = Other.identityKind == "gateway" ? named.gateways[Other.name] : named.services[Other.name]
            } catch {
                throw ValidationError("\(error)")
            }
            guard target != nil else { throw ValidationError("the deployment file \(path) names no address for \(Other.name); give --target host:port") }
        }
        let resolved = target ?? "127.0.0.1:\(Other.defaultPort)"
        guard let addresses = Deployment.addresses(resolved) else {
            throw ValidationError("--target must be host:port, not \(resolved)")
        }
        let clients = try addresses.map { host, port in
            try RPCClient(target: .init(host: host, port: port, identity: "spiffe://\(trustDomain)/\(Other.identityKind)/\(Other.name)"),
                          configuration: .init(credentials: credentials))
        }
        // A service's replicas: the call goes to one that answers.
        return clients.count == 1 ? clients[0] : ReplicaSet(clients)
    }

    /// The organisation's people by actor (`user:<id>` → `Name <e-mail>`), for readable output —
    /// only when the viewer may see them (identity answers users.manage); else none, and ids are
    /// shown as they are.
    package func people(org: String) async -> [String: String] {
        guard let client = try? client(of: IdentityTarget.self, at: Target.name == IdentityTarget.name ? target : nil) else { return [:] }
        defer { client.close() }
        guard let options = try? callOptions,
              let users = try? await Calltrace_Identity_V1_IdentityServiceClient(client).listUsers(.with { $0.orgID = org }, options: options).users
        else { return [:] }
        return Dictionary(users.map { ("user:\($0.userID)", "\($0.displayName.isEmpty ? $0.email : "\($0.displayName) <\($0.email)>")") },
                          uniquingKeysWith: { first, _ in first })
    }

    package var callOptions: CallOptions {
        get throws {
            var metadata = Metadata()
            if let token = token ?? ProcessInfo.processInfo.environment["CALLTRACE_TOKEN"] {
                try metadata.add("authorization", "Bearer \(token)")
            }
            if let clientAddress { try metadata.add(ServerContext.clientAddressKey, clientAddress) }
            return CallOptions(timeout: .milliseconds(timeoutMS), metadata: metadata)
        }
    }

    /// For credential calls (sign-in, invitations, resets), which name the end user's address:
    /// `--client-address`, or this machine (127.0.0.1) for the person at this terminal. Only a
    /// credential gateway's certificate makes them: a firm's staff sign in in the web app.
    package var credentialCallOptions: CallOptions {
        get throws {
            try signedInBrowserOnly()
            var options = try callOptions
            if clientAddress == nil { try options.metadata.add(ServerContext.clientAddressKey, "127.0.0.1") }
            return options
        }
    }

    /// Refuses, through the web app, what only a signed-in browser does there (signing in,
    /// invitations, resets, two-factor, making API tokens), saying where to do it.
    package func signedInBrowserOnly() throws {
        if case .webApp(let url) = try route {
            throw ValidationError("sign in, accept invitations, reset passwords, set up two-factor and make API tokens in the web app, \(url); "
                                  + "for the CLI, make an API token there under Account → API tokens and set CALLTRACE_TOKEN")
        }
    }

    /// Runs `body` with a client; an RPC failure becomes one line on stderr and its exit status.
    package func run<T>(_ body: (any RPCChannel) async throws -> T) async throws -> T {
        let client = try client()
        defer { client.close() }
        do {
            return try await body(client)
        } catch let error as RPCError {
            FileHandle.standardError.write(Data("calltrace: \(error.code): \(error.message)\n".utf8))
            if let hint = Self.hint(for: error, caller: caller) { FileHandle.standardError.write(Data("calltrace: \(hint)\n".utf8)) }
            switch error.code {
            case .notFound: throw ExitCode(3)
            case .unauthenticated, .permissionDenied: throw ExitCode(4)
            case .unavailable, .deadlineExceeded: throw ExitCode(5)
            default: throw ExitCode(1)
            }
        }
    }

    /// What to do about a refusal the presented certificate earned (not the user's role): a
    /// call only operators, or only the telephony gateway, may make.
    static func hint(for error: RPCError, caller: String?) -> String? {
        if error.code == .invalidArgument && error.message.contains("org_id is not a valid organisation id") && CLIDefaults.value("org") == nil {
            return "name the organisation: --org ORG_ID, or set CALLTRACE_ORG, or \"org\" in \(CLIDefaults.path)"
        }
        guard let caller else {
            // Through the web app.
            if error.code == .unimplemented { return "this command is not for a firm's API token: operators use --as operator-<name> with their certificate" }
            if error.code == .unauthenticated { return "make an API token in the web app under Account → API tokens, and set CALLTRACE_TOKEN" }
            return nil
        }
        guard error.code == .permissionDenied, error.message.contains(" may not call ") else { return nil }
        if caller.hasPrefix("gateway-") && error.message.contains("/gateway/") {
            return "this call is not for the \(caller) certificate: an operator adds --as operator-<name> (their certificate in --pki); "
                + "calls and recordings come from the telephony gateway (--as gateway-telephony)"
        }
        return nil
    }

    package func print(_ message: some SwiftProtobuf.Message, readable: () -> String) throws {
        Swift.print(json ? try JSONOutput.line(message) : readable())
    }
}
