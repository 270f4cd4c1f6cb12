import ArgumentParser
import Foundation

/// The settings options every subcommand of a service takes: `--config FILE`, then any setting
/// as `--<key> VALUE` or `--<key>=VALUE` — the host's and the service's own, one flag per file
/// key (`--blob-store` for `blob_store`), listed by `--help` from the same tables the file and
/// environment are read with. Sources apply in order: the file, `CALLTRACE_*` variables, flags.
/// An unknown flag, a flag without its value or a stray argument is a usage error (exit 64),
/// as ArgumentParser's own are.
struct SettingsOptions<Service: CallTraceService>: ParsableArguments {
    @Option(help: "JSON configuration file.") var config: String?
    @Argument(parsing: .allUnrecognized, help: .hidden) var flags: [String] = []

    func validate() throws {
        _ = try settingFlags()
    }

    /// The flags, as (file key, value), in the order given.
    func settingFlags() throws -> [(key: String, value: String)] {
        let configuration = ServiceConfiguration.defaults(service: Service.name, port: Service.defaultPort, settings: Service.Settings.self)
        let known = Dictionary(configuration.allSettings.map { ($0.flag, $0.key) }, uniquingKeysWith: { first, _ in first })
        var given: [(key: String, value: String)] = []
        var rest = flags[...]
        while let flag = rest.popFirst() {
            // `--key value` or `--key=value`.
            let (name, inline) = flag.firstIndex(of: "=").map { (String(flag[..<$0]), String(flag[flag.index(after: $0)...])) } ?? (flag, nil)
            guard name.hasPrefix("--") else { throw ValidationError("Unexpected argument '\(flag)'") }
            guard let key = known[name] else { throw ValidationError("Unknown option '\(name)' (calltrace-\(Service.name) --help lists the settings)") }
            // A next word that is itself a flag is not this one's value: `--blob-store --listen …` is a forgotten value.
            guard let value = inline ?? rest.first.flatMap({ $0.hasPrefix("--") ? nil : $0 }) else {
                throw ValidationError("Missing value for '\(name)'")
            }
            if inline == nil { rest.removeFirst() }
            given.append((key, value))
        }
        return given
    }

    /// The settings of `Service`, from every source, then its deployment file's peers.
    func resolve() throws -> ServiceConfiguration {
        var configuration = ServiceConfiguration.defaults(service: Service.name, port: Service.defaultPort, settings: Service.Settings.self)
        if let config { try configuration.apply(file: config) }
        try configuration.apply(environment: ProcessInfo.processInfo.environment)
        for (key, value) in try settingFlags() { try configuration.set(key, value) }
        try configuration.applyDeployment(service: Service.name, gateways: Service.gatewayPeers)
        return configuration
    }

    /// The settings `--help` lists for `Service`: every flag with what it is.
    static var help: String {
        let configuration = ServiceConfiguration.defaults(service: Service.name, port: Service.defaultPort, settings: Service.Settings.self)
        let rows = configuration.allSettings
        let width = rows.map { $0.flag.count }.max() ?? 0
        return "Settings (file key, CALLTRACE_<KEY>, or flag):\n" + rows.map {
            "  \($0.flag.padding(toLength: width, withPad: " ", startingAt: 0))  \($0.help)"
        }.joined(separator: "\n")
    }
}
