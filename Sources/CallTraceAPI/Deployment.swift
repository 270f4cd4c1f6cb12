import CallTraceRPC
import Foundation

/// Where each service of a deployment listens: one small JSON file that the services (their
/// `deployment` setting, for their peers), the operators' CLI (`--deployment`, for `health --all`
/// and every `--service`) and gateways read, so that moving a port is one edit.
///
///     { "services": { "identity": "10.0.0.5:7101", "media": "10.0.0.6:7102,10.0.0.9:7102",
///                     "transcript": "10.0.0.6:7103", "compliance": "10.0.0.7:7104" },
///       "gateways": { "web": "10.0.0.8:7105" } }
///
/// A service run as several replicas lists each replica's address, comma-separated (media above):
/// its clients spread calls across them and pass over one that is down (`ReplicaSet`).
///
/// A service named nowhere is taken to be absent, not to be on a default port. Gateways (their
/// ctrpc/1 port, for health) are listed apart: their certificates name them `gateway/<name>`, and
/// a service takes one as a peer only when it says it calls it (`CallTraceService.gatewayPeers`).
///
/// The file names whatever the deployment runs: a fifth service or gateway is one more entry,
/// known by the section it is in, and no list here changes with it. A misspelt name is caught
/// where it matters: a service refuses to start without the peers it requires.
public struct Deployment: Sendable, Equatable {
    /// The four services every deployment has, in the order they are started (and checked by
    /// `calltrace health --all`, before any other the file names).
    public static let serviceNames = ["identity", "media", "transcript", "compliance"]

    /// Service name → `host:port` (or `host:port,host:port` for replicas).
    public var services: [String: String]
    /// Gateway name → `host:port` of its ctrpc/1 port (health and info).
    public var gateways: [String: String]

    public init(services: [String: String], gateways: [String: String] = [:]) {
        self.services = services
        self.gateways = gateways
    }

    /// A deployment file that cannot be used, named with what is wrong.
    public struct FileError: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// Reads and checks `path`: a JSON object with `services`, each a known service's `host:port`.
    public static func load(_ path: String) throws -> Deployment {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw FileError(description: "deployment file \(path) cannot be read")
        }
        return try parse(data, path: path)
    }

    /// Checks a deployment file's bytes (`make fuzz` feeds it hostile ones); `path` names it in errors.
    public static func parse(_ data: Data, path: String) throws -> Deployment {
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw FileError(description: "deployment file \(path) is not a JSON object")
        }
        if let unknown = object.keys.filter({ $0 != "services" && $0 != "gateways" }).sorted().first {
            throw FileError(description: "deployment file \(path): unknown key \"\(unknown)\" (it holds only \"services\" and \"gateways\")")
        }
        guard let services = object["services"] as? [String: String] else {
            throw FileError(description: "deployment file \(path): services must map service names to \"host:port\"")
        }
        guard let gateways = object["gateways"].map({ $0 as? [String: String] }) ?? [:] else {
            throw FileError(description: "deployment file \(path): gateways must map gateway names to \"host:port\"")
        }
        for (kind, entries) in [("service", services), ("gateway", gateways)] {
            for (name, address) in entries.sorted(by: { $0.key < $1.key }) {
                guard isName(name) else {
                    throw FileError(description: "deployment file \(path): \(kind) \"\(name.prefix(64))\" is not a name (lowercase letters, digits, '-', '.' or '_')")
                }
                guard services[name] == nil || gateways[name] == nil else {
                    throw FileError(description: "deployment file \(path): \(name) is listed both as a service and as a gateway")
                }
                guard addresses(address) != nil else {
                    throw FileError(description: "deployment file \(path): \(name) must be host:port with a port from 1 to 65535, not \"\(address.prefix(200))\"")
                }
            }
        }
        return Deployment(services: services, gateways: gateways)
    }

    /// Whether `name` can be a service's or gateway's name: the last part of a SPIFFE id, as
    /// certificates name it (`calltrace pki issue --name`).
    public static func isName(_ name: String) -> Bool {
        name.utf8.count <= 64 && PeerIdentity(uri: "spiffe://calltrace.invalid/service/\(name)") != nil
    }

    /// The gateways and services it names, each with the kind its certificate names: the four
    /// services in `serviceNames` order, any other service, then the gateways, each by name.
    public var everyone: [(name: String, kind: String, address: String)] {
        Self.serviceNames.compactMap { name in services[name].map { (name, "service", $0) } }
            + services.filter { !Self.serviceNames.contains($0.key) }.sorted { $0.key < $1.key }.map { ($0.key, "service", $0.value) }
            + gateways.sorted { $0.key < $1.key }.map { ($0.key, "gateway", $0.value) }
    }

    /// A service's addresses: `host:port`, or several replicas' as `host:port,host:port` (calls
    /// spread across them, and pass over one that is down: `ReplicaSet`). Nil when any is not
    /// `host:port`, or when none is given.
    public static func addresses(_ text: String) -> [(host: String, port: Int)]? {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        let addresses = parts.compactMap(hostAndPort)
        guard !parts.isEmpty, parts.count <= 64, addresses.count == parts.count else { return nil }
        return addresses
    }

    /// `host:port` split, or nil when it is not that.
    public static func hostAndPort(_ address: String) -> (host: String, port: Int)? {
        guard let colon = address.lastIndex(of: ":"), colon > address.startIndex,
              let port = Int(address[address.index(after: colon)...]), (1...65535).contains(port) else { return nil }
        return (String(address[..<colon]), port)
    }
}
