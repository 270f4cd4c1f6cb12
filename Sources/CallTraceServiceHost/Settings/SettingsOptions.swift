import ArgumentParser
import Foundation

/// The settings options every subcommand of a service takes: `--config FILE`, then any setting
/// as `--<key> VALUE` — the host's and the service's own, one flag per file key (`--blob-store`
/// for `blob_store`), listed by `--help` from the same tables the file and environment are read
/// with. Sources apply in order: the file, `CALLTRACE_*` variables, flags.
struct SettingsOptions: ParsableArguments {
    @Option(help: "JSON configuration file.") var config: String?
    @Argument(parsing: .allUnrecognized, help: .hidden) var flags: [String] = []

    /// The settings of `Service`, from every source, then its deployment file's peers.
    func resolve<Service: CallTraceService>(_ service: Service.Type) throws -> ServiceConfiguration {
        var configuration = ServiceConfiguration.defaults(service: Service.name, port: Service.defaultPort, settings: Service.Settings.self)
        if let config { try configuration.apply(file: config) }
        try configuration.apply(environment: ProcessInfo.processInfo.environment)
        let known = Dictionary(configuration.allSettings.map { ($0.flag, $0.key) }, uniquingKeysWith: { first, _ in first })
        var rest = flags[...]
        while let flag = rest.popFirst() {
            // `--key value` or `--key=value`.
            let (name, inline) = flag.firstIndex(of: "=").map { (String(flag[..<$0]), String(flag[flag.index(after: $0)...])) } ?? (flag, nil)
            guard let key = known[name] else {
                throw ConfigurationError("unknown option \(name) (calltrace-\(Service.name) --help lists the settings)")
            }
            guard let value = inline ?? rest.popFirst() else { throw ConfigurationError("\(name) needs a value") }
            try configuration.set(key, value)
        }
        try configuration.applyDeployment(service: Service.name)
        return configuration
    }

    /// The settings `--help` lists for `Service`: every flag with its variable and what it is.
    static func help<Service: CallTraceService>(_ service: Service.Type) -> String {
        let configuration = ServiceConfiguration.defaults(service: Service.name, port: Service.defaultPort, settings: Service.Settings.self)
        let rows = configuration.allSettings
        let width = rows.map { $0.flag.count }.max() ?? 0
        return "Settings (file key, CALLTRACE_<KEY>, or flag):\n" + rows.map {
            "  \($0.flag.padding(toLength: width, withPad: " ", startingAt: 0))  \($0.help)"
        }.joined(separator: "\n")
    }
}
