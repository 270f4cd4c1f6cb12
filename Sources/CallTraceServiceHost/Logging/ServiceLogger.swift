public import Logging

extension Logger {
    /// The service's logger: text for a terminal or JSON lines for a collector (`log_format`),
    /// at `log_level`, on standard error.
    public static func service(_ name: String, configuration: ServiceConfiguration) -> Logger {
        var logger = Logger(label: "calltrace.\(name)") { _ in
            configuration.logFormat == "json" ? JSONLogHandler(service: name) as any LogHandler : TextLogHandler(service: name)
        }
        logger.logLevel = Logger.Level(rawValue: configuration.logLevel) ?? .info
        return logger
    }
}
