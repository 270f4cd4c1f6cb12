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
/// RPCs shares. Calls go as the certificate named by --as (a gateway by default), on behalf of
/// a user when a token is given. Exit status: 0 done, 1 failed, 3 not found, 4 not allowed, 5
/// unreachable.
package struct ServiceCallOptions<Target: ServiceTarget>: ParsableArguments {
    @Option(help: "Folder with ca.crt and the caller's certificate (default: $CALLTRACE_PKI, or \"pki\" in the CLI config file).") var pki: String?
    @Option(name: .customLong("as"), help: "Certificate base name to present (default: $CALLTRACE_AS, or \"as\" in the CLI config file, else gateway-web).")
    var caller = CLIDefaults.value("as") ?? "gateway-web"
    @Option(help: "host:port of the \(Target.name) service (default: the deployment file's, else 127.0.0.1:\(Target.defaultPort)).")
    var target: String?
    @Option(help: "Deployment file (services: name → host:port) (default: $CALLTRACE_DEPLOYMENT, or \"deployment\" in the CLI config file).")
    var deployment: String?
    // Tokens are base64url and may begin with '-': taken whole, never as an option.
    @Option(parsing: .unconditional, help: "A user's session token or API token (default: $CALLTRACE_TOKEN).") var token: String?
    @Option(name: .customLong("client-address"), help: "The end user's address, when the organisation restricts addresses.")
    var clientAddress: String?
    @Option(name: .customLong("timeout-ms"), help: "Per-call timeout (uploads and playback: per call, whole).") var timeoutMS = 600_000
    @Flag(help: "Print JSON.") package var json = false

    package init() {}

    func client() throws -> RPCClient { try client(of: Target.self, at: target) }

    /// A client of `service`, at `address` or where the deployment file puts it, else on its default port.
    func client<Other: ServiceTarget>(of service: Other.Type, at address: String? = nil) throws -> RPCClient {
        let (credentials, trustDomain) = try callerCredentials(pki: try CLIDefaults.required(pki, "pki", option: "--pki"), caller: caller)
        var target = address
        if target == nil, let path = deployment ?? CLIDefaults.value("deployment") {
            do {
                target = try Deployment.load(path).services[Other.name]
            } catch {
                throw ValidationError("\(error)")
            }
            guard target != nil else { throw ValidationError("the deployment file \(path) names no address for \(Other.name); give --target host:port") }
        }
        let resolved = target ?? "127.0.0.1:\(Other.defaultPort)"
        guard let (host, port) = Deployment.hostAndPort(resolved) else { throw ValidationError("--target must be host:port, not \(resolved)") }
        return try RPCClient(target: .init(host: host, port: port, identity: "spiffe://\(trustDomain)/service/\(Other.name)"),
                             configuration: .init(credentials: credentials))
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
    /// `--client-address`, or this machine (127.0.0.1) for the person at this terminal.
    package var credentialCallOptions: CallOptions {
        get throws {
            var options = try callOptions
            if clientAddress == nil { try options.metadata.add(ServerContext.clientAddressKey, "127.0.0.1") }
            return options
        }
    }

    /// Runs `body` with a client; an RPC failure becomes one line on stderr and its exit status.
    package func run<T>(_ body: (RPCClient) async throws -> T) async throws -> T {
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
    static func hint(for error: RPCError, caller: String) -> String? {
        if error.code == .invalidArgument && error.message.contains("org_id is not a valid organisation id") && CLIDefaults.value("org") == nil {
            return "name the organisation: --org ORG_ID, or set CALLTRACE_ORG, or \"org\" in \(CLIDefaults.path)"
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
