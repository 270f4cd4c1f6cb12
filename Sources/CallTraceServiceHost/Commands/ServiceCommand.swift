import ArgumentParser
import Foundation
import Logging

/// The host process of one service: `serve` (default), `backup`, `jobs`, `rotate-master-key`.
public enum ServiceHost {
    /// Runs the command line of `Service`. Never returns normally.
    public static func main<Service: CallTraceService>(_ service: Service.Type) async {
        await ServiceCommand<Service>.main()
    }
}

/// Exit codes: 0 after a clean stop, 1 when start-up is refused (one line on stderr says why).
struct ServiceCommand<Service: CallTraceService>: AsyncParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: "calltrace-\(Service.name)",
            abstract: "The CallTrace \(Service.name) service.",
            discussion: "Settings come from --config FILE (JSON), then CALLTRACE_* environment variables, then flags. See services/\(Service.name)/README.md.\n\n"
                + SettingsOptions<Service>.help,
            version: callTraceVersion,
            subcommands: [Serve<Service>.self, Backup<Service>.self, RotateMasterKey<Service>.self, ListJobs<Service>.self],
            defaultSubcommand: Serve<Service>.self)
    }
}

/// Prints one line naming the problem and exits 1.
func refuse(_ service: String, _ problem: Any) -> Never {
    FileHandle.standardError.write(Data("calltrace-\(service): cannot start: \(problem)\n".utf8))
    exit(1)
}

struct Serve<Service: CallTraceService>: AsyncParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: "serve", abstract: "Run the service (default).", discussion: SettingsOptions<Service>.help)
    }
    @OptionGroup var settings: SettingsOptions<Service>

    func run() async throws {
        let name = Service.name
        let configuration: ServiceConfiguration
        do {
            configuration = try settings.resolve()
        } catch {
            refuse(name, error)
        }
        let logger = Logger.service(name, configuration: configuration)
        // Listening before start-up: a SIGTERM that comes as soon as "serving" is logged (a
        // supervisor's stop right after its start) stops the service, never goes unheard.
        let stops = await StopTriggers.listen()
        let instance: ServiceInstance
        do {
            instance = try await ServiceInstance.start(Service.self, configuration: configuration, logger: logger)
        } catch {
            refuse(name, error)
        }
        do {
            try await ServingLifecycle.run(instance, stops: stops, drain: .seconds(configuration.drainSeconds),
                                           revocationList: configuration.crl, logger: logger)
        } catch {
            logger.error("stopped by an error", metadata: ["error": "\(error)"])
            throw ExitCode(1)
        }
    }
}
