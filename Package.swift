// swift-tools-version: 6.1
import PackageDescription

/// Every target builds in the Swift 6 language mode with strict concurrency and `any` spelled out.
let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "calltrace",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "calltrace-bench", targets: ["calltrace-bench"]),
        .executable(name: "calltrace-protogen", targets: ["calltrace-protogen"]),
        .library(name: "CallTraceRPC", targets: ["CallTraceRPC"]),
        // What a Swift gateway or backend imports: the typed clients of all four services, and
        // `CallTraceConnections` (settings from a small file or the environment).
        .library(name: "CallTraceAPI", targets: ["CallTraceAPI", "CallTraceRPC"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-protobuf.git", exact: "1.39.0"),
        .package(url: "https://github.com/apple/swift-log.git", exact: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", exact: "1.8.2"),
        // Running a service until its stop, and its drain (ServiceGroup, graceful shutdown, Unix signals).
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", exact: "2.13.0"),
        // The web gateway's HTTP (the `Hummingbird` product only: its TLS and testing products link
        // a second TLS library; nginx terminates HTTPS in front) and its HTML templates.
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", exact: "2.28.1", traits: []),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", exact: "2.1.1"),
        // Handing a recording's pieces from the service's stream to the browser's, one at a time.
        .package(url: "https://github.com/apple/swift-async-algorithms.git", exact: "1.1.4"),
        // The web gateway's JSON API: the runtime of the code swift-openapi-generator wrote from
        // services/web/openapi.yaml (`make openapi`, committed; the generator is not a dependency)
        // and its Hummingbird transport (the `Hummingbird` product only, no TLS).
        .package(url: "https://github.com/apple/swift-openapi-runtime.git", exact: "1.13.4", traits: []),
        .package(url: "https://github.com/hummingbird-project/swift-openapi-hummingbird.git", exact: "2.1.0"),
        // The tests read that document to check the API's answers against it (tests only).
        .package(url: "https://github.com/jpsim/Yams.git", exact: "6.2.2"),
    ],
    targets: [
        // System libraries from Debian (libssl-dev, libsqlite3-dev), found through pkg-config.
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        // Decoding MP3 and Opus, and writing FLAC, to mute compressed recordings (libsndfile1-dev): media only.
        .systemLibrary(name: "CSndfile", pkgConfig: "sndfile", providers: [.apt(["libsndfile1-dev"])]),
        // Outgoing SMTP (and HTTPS) through Debian's libcurl (libcurl4-openssl-dev), itself built on
        // the system OpenSSL: loaded by the first transfer, not linked (see its header).
        .target(name: "CCurl"),
        // PostgreSQL through Debian's libpq (libpq-dev), loaded by the first connection, not linked.
        .target(name: "CLibPQ"),
        // QR codes for two-factor enrolment in the web app (libqrencode-dev).
        .systemLibrary(name: "CQRencode", pkgConfig: "libqrencode", providers: [.apt(["libqrencode-dev"])]),
        // The OpenSSL macros Swift cannot import, and the TLS callbacks, as plain C functions.
        .target(name: "CCallTraceShims", dependencies: ["COpenSSL"]),

        // The lock every module's shared state is behind (`Locked`): a pthread mutex, which
        // ThreadSanitizer sees, where Synchronization's Mutex is a futex it does not.
        .target(name: "CallTraceSync", swiftSettings: swiftSettings),
        // Messages and method tables generated from proto/ (`make proto`); never edited by hand.
        .target(
            name: "CallTraceProto",
            dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")],
            swiftSettings: swiftSettings
        ),
        // Mutually authenticated TLS over TCP sockets with the system OpenSSL.
        .target(
            name: "CallTraceTLS",
            dependencies: ["CallTraceSync", "COpenSSL", "CCallTraceShims"],
            swiftSettings: swiftSettings
        ),
        // Certificate authority and SPIFFE certificates for a deployment (and for tests).
        .target(
            name: "CallTracePKI",
            dependencies: ["COpenSSL", "CCallTraceShims"],
            swiftSettings: swiftSettings
        ),
        // Each service's own SQLite database: migrations, typed access, backup.
        .target(name: "CallTraceStorage", dependencies: ["CallTraceSync", "CSQLite", "CLibPQ", "CCallTraceShims"], swiftSettings: swiftSettings),
        // Encryption at rest (P4): master key, per-organisation keys, sealed fields, blind index.
        .target(name: "CallTraceKeys", dependencies: ["CallTraceSync", "COpenSSL", "CallTraceStorage"], swiftSettings: swiftSettings),
        // Talking to the world outside the deployment: e-mail over SMTP with TLS, through libcurl.
        .target(name: "CallTraceOutbound", dependencies: ["CallTraceSync", "CCurl"], swiftSettings: swiftSettings),
        // Blobs in an S3-compatible bucket: SigV4 through libcurl, multipart uploads, ranged reads.
        .target(name: "CallTraceS3", dependencies: ["CallTraceStorage", "CallTraceOutbound", "CallTraceKeys"], swiftSettings: swiftSettings),
        // ctrpc/1: frames, status, metadata, deadlines, server and client.
        .target(
            name: "CallTraceRPC",
            dependencies: [
                "CallTraceSync", "CallTraceTLS", "CallTraceProto",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),

        // Typed clients and handler protocols for every proto service (`make proto`): services
        // implement the handlers, and call each other (and the CLI calls them) through the clients.
        .target(
            name: "CallTraceAPI",
            dependencies: ["CallTraceRPC", "CallTraceProto", "CallTraceTLS"],
            swiftSettings: swiftSettings
        ),

        // What every service executable shares: configuration, start-up checks, drain, logs, commands.
        .target(
            name: "CallTraceServiceHost",
            dependencies: ["CallTraceSync", "CallTraceRPC", "CallTraceAPI", "CallTraceStorage", "CallTraceKeys", "CallTraceTLS",
                           .product(name: "ArgumentParser", package: "swift-argument-parser"),
                           .product(name: "Logging", package: "swift-log"),
                           .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                           .product(name: "UnixSignals", package: "swift-service-lifecycle")],
            swiftSettings: swiftSettings
        ),
        // Each service's domain: its rules, its SQL, its RPC handlers and its `CallTraceService`,
        // importable by tests (which run it in process) and by its thin executable.
        .target(name: "IdentityDomain", dependencies: ["CallTraceServiceHost", "CallTraceAPI", "CallTraceKeys", "CallTraceOutbound", "CallTraceProto",
                                                 "CallTraceRPC", "CallTraceStorage"],
                swiftSettings: swiftSettings),
        .target(name: "MediaDomain", dependencies: ["CallTraceServiceHost", "CallTraceAPI", "CallTraceKeys", "CallTraceProto", "CallTraceRPC", "CallTraceStorage",
                                              "CallTraceS3", "CCallTraceShims", "CSndfile"],
                swiftSettings: swiftSettings),
        // Pure functions the domains and the CLI share, with nothing of a service in them: the
        // redactor and the local analyser (over a call's text), the deadline engine (UK bank
        // holidays and the ICO's calendar months).
        .target(name: "TranscriptText", swiftSettings: swiftSettings),
        .target(name: "ComplianceDeadlines", swiftSettings: swiftSettings),
        // Deletion certificates and audit checkpoints, checked against the deployment's pinned key.
        .target(name: "ComplianceDocuments", dependencies: ["CallTraceKeys"], swiftSettings: swiftSettings),
        .target(name: "TranscriptDomain", dependencies: ["CallTraceSync", "TranscriptText", "CallTraceServiceHost", "CallTraceAPI", "CallTraceKeys", "CallTraceOutbound", "CallTraceProto",
                                                   "CallTraceRPC", "CallTraceStorage", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
                swiftSettings: swiftSettings),
        .target(name: "ComplianceDomain", dependencies: ["ComplianceDeadlines", "ComplianceDocuments", "CallTraceServiceHost", "CallTraceAPI", "CallTraceKeys", "CallTraceProto", "CallTraceRPC", "CallTraceStorage",
                                                   .product(name: "SwiftProtobuf", package: "swift-protobuf")],
                swiftSettings: swiftSettings),
        // The four services, each an executable an operator runs alone (services/<name>/): wiring only.
        .executableTarget(name: "calltrace-identity", dependencies: ["CallTraceServiceHost", "IdentityDomain"], path: "services/identity",
                          exclude: ["README.md", "config.example.json", "calltrace-identity.service"], swiftSettings: swiftSettings),
        .executableTarget(name: "calltrace-media", dependencies: ["CallTraceServiceHost", "MediaDomain"], path: "services/media",
                          exclude: ["README.md", "config.example.json", "calltrace-media.service"], swiftSettings: swiftSettings),
        .executableTarget(name: "calltrace-transcript", dependencies: ["CallTraceServiceHost", "TranscriptDomain"], path: "services/transcript",
                          exclude: ["README.md", "config.example.json", "calltrace-transcript.service"], swiftSettings: swiftSettings),
        .executableTarget(name: "calltrace-compliance", dependencies: ["CallTraceServiceHost", "ComplianceDomain"], path: "services/compliance",
                          exclude: ["README.md", "config.example.json", "calltrace-compliance.service"], swiftSettings: swiftSettings),
        // What the gateways share at their HTTP edge (behind nginx): where they listen, their
        // public address, and the listener the host runs beside their ctrpc/1 server.
        .target(name: "CallTraceHTTP", dependencies: ["CallTraceSync", "CallTraceServiceHost",
                                                     .product(name: "Hummingbird", package: "hummingbird"),
                                                     .product(name: "Logging", package: "swift-log"),
                                                     .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")],
                swiftSettings: swiftSettings),
        // The web gateway: what a firm's staff open in a browser. HTTP to browsers (behind nginx),
        // ctrpc/1 to the four services under each signed-in user's token; it owns no call data.
        .target(name: "WebGateway", dependencies: ["CallTraceSync", "CallTraceServiceHost", "CallTraceHTTP", "CallTraceAPI", "CallTraceKeys", "CallTraceOutbound", "CallTraceProto", "CallTraceRPC",
                                                 "CallTraceStorage", "CQRencode",
                                                 .product(name: "Hummingbird", package: "hummingbird"),
                                                 .product(name: "Mustache", package: "swift-mustache"),
                                                 .product(name: "AsyncAlgorithms", package: "swift-async-algorithms"),
                                                 .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                                                 .product(name: "OpenAPIHummingbird", package: "swift-openapi-hummingbird"),
                                                 .product(name: "Logging", package: "swift-log")],
                resources: [.copy("Templates"), .copy("Static")],
                swiftSettings: swiftSettings),
        // The telephony gateway: Twilio's webhooks in, the four services' ingest RPCs out, as the
        // gateway `telephony`; it owns no call data.
        .target(name: "TelephonyGateway", dependencies: ["CallTraceSync", "CallTraceServiceHost", "CallTraceHTTP", "CallTraceAPI", "CallTraceKeys", "CallTraceOutbound",
                                                       "CallTraceProto", "CallTraceRPC", "CallTraceStorage", "Twilio",
                                                       .product(name: "Hummingbird", package: "hummingbird"),
                                                       .product(name: "Logging", package: "swift-log")],
                swiftSettings: swiftSettings),
        .executableTarget(name: "calltrace-telephony", dependencies: ["CallTraceServiceHost", "TelephonyGateway"], path: "services/telephony",
                          exclude: ["README.md", "config.example.json", "calltrace-telephony.service"], swiftSettings: swiftSettings),
        .executableTarget(name: "calltrace-web", dependencies: ["CallTraceServiceHost", "WebGateway"], path: "services/web",
                          exclude: ["README.md", "config.example.json", "calltrace-web.service", "nginx-site.example.conf", "openapi.yaml",
                                   "openapi-generator-config.yaml"], swiftSettings: swiftSettings),
        // What every `calltrace` command group shares: calling a service (ServiceTarget,
        // ServiceCallOptions, identity for the people behind actors), --json, the CLI's config file,
        // progress bars, times and enum spellings; `package`, never API.
        .target(name: "CallTraceCLI", dependencies: ["CallTraceSync", "CallTraceAPI", "CallTraceKeys", "CallTraceOutbound", "CallTraceRPC", "CallTraceTLS",
                                                   .product(name: "ArgumentParser", package: "swift-argument-parser"),
                                                   .product(name: "SwiftProtobuf", package: "swift-protobuf")],
                swiftSettings: swiftSettings),
        // Each service's `calltrace` commands over its typed client, and its ServiceTarget, exposing
        // only `<Svc>Commands.groups` for the root to compose; no domain, host or storage.
        .target(name: "IdentityCommands", dependencies: ["CallTraceCLI", "CallTraceAPI", "CallTraceProto", "CallTraceRPC",
                                                       .product(name: "ArgumentParser", package: "swift-argument-parser")],
                swiftSettings: swiftSettings),
        .target(name: "MediaCommands", dependencies: ["CallTraceCLI", "CallTraceAPI", "CallTraceKeys", "CallTraceProto", "CallTraceRPC",
                                                    .product(name: "ArgumentParser", package: "swift-argument-parser")],
                swiftSettings: swiftSettings),
        .target(name: "TelephonyCommands", dependencies: ["CallTraceCLI", "CallTraceAPI", "CallTraceProto",
                                                         .product(name: "ArgumentParser", package: "swift-argument-parser")],
                swiftSettings: swiftSettings),
        .target(name: "TranscriptCommands", dependencies: ["CallTraceCLI", "TranscriptText", "CallTraceAPI", "CallTraceKeys", "CallTraceProto", "CallTraceRPC",
                                                         .product(name: "ArgumentParser", package: "swift-argument-parser")],
                swiftSettings: swiftSettings),
        // Compliance's commands, and the offline checks of its documents and deadlines (the leaf modules).
        .target(name: "ComplianceCommands", dependencies: ["CallTraceCLI", "ComplianceDeadlines", "ComplianceDocuments", "CallTraceAPI", "CallTraceKeys",
                                                         "CallTraceProto", "CallTraceRPC",
                                                         .product(name: "ArgumentParser", package: "swift-argument-parser")],
                swiftSettings: swiftSettings),
        // The command line's composition root: PKI, keys, health and metrics, then each service's
        // command group (`+ <Svc>Commands.groups`).
        .executableTarget(
            name: "calltrace",
            dependencies: ["CallTraceCLI", "IdentityCommands", "MediaCommands", "TranscriptCommands", "ComplianceCommands", "TelephonyCommands",
                           "CallTraceAPI", "CallTraceKeys", "CallTracePKI", "CallTraceRPC",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: swiftSettings
        ),
        // Twilio's side of a call, as the telephony gateway uses it: webhook signatures
        // (X-Twilio-Signature), TwiML answers, and the REST API (numbers, calls, recordings)
        // through libcurl. Nothing of our services.
        .target(name: "Twilio", dependencies: ["COpenSSL", "CallTraceKeys", "CallTraceOutbound"], swiftSettings: swiftSettings),
        // A local Twilio for the tests and `make demo`: its REST API over TLS with a certificate of
        // our PKI, and a driver that plays a call's life as signed webhooks to a gateway.
        .target(name: "FakeTwilio", dependencies: ["Twilio", "COpenSSL", "CallTraceTLS", "CallTraceKeys", "CallTraceOutbound"],
                swiftSettings: swiftSettings),
        .executableTarget(name: "calltrace-fake-twilio",
                          dependencies: ["FakeTwilio", "Twilio", "CallTraceTLS", "CallTraceOutbound",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          swiftSettings: swiftSettings),
        // Generates the method tables (Sources/CallTraceProto/Methods.swift) from protoc's descriptor set.
        .executableTarget(
            name: "calltrace-protogen",
            dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")],
            swiftSettings: swiftSettings
        ),
        // Benchmarks, side by side with a C floor measured in the same run.
        .executableTarget(
            name: "calltrace-bench",
            dependencies: [
                "CallTraceRPC", "CallTraceAPI", "CallTraceKeys", "CallTraceStorage", "CallTraceS3", "CallTraceTestSupport", "IdentityDomain", "TranscriptDomain",
                // `web`: the four services and the web gateway in process.
                "CallTraceDeploymentSupport", "CallTraceServiceHost", "WebGateway",
                // `telephony`: the same, and calltrace-telephony taking signed voice webhooks.
                "TelephonyGateway", "Twilio",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        // The C floor for `calltrace-bench rpc`: plain OpenSSL mutual-TLS echo, no framing library.
        .executableTarget(name: "ctrpc-floor", dependencies: ["COpenSSL"], path: "Sources/ctrpc-floor"),

        // Shared test support: temporary PKI, the echo service, ports, process helpers.
        .target(
            name: "CallTraceTestSupport",
            dependencies: ["CallTraceSync", "CallTraceRPC", "CallTracePKI", "CallTraceProto", "CallTraceTLS", "CallTraceKeys", "CallTraceServiceHost", "COpenSSL",
                           "CCallTraceShims", "CallTraceStorage", "CallTraceOutbound", "CallTraceS3",
                           .product(name: "Logging", package: "swift-log"), .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            path: "Tests/CallTraceTestSupport",
            swiftSettings: swiftSettings
        ),
        // Several services in process as one deployment (identity, transcript, compliance and media,
        // over one PKI), for the suites of media and of the gateways.
        .target(
            name: "CallTraceDeploymentSupport",
            dependencies: ["CallTraceSync", "CallTraceTestSupport", "CallTraceAPI", "CallTraceProto", "CallTraceRPC", "CallTraceServiceHost", "CallTraceKeys",
                           "CallTraceStorage", "IdentityDomain", "MediaDomain", "TranscriptDomain", "ComplianceDomain",
                           "TelephonyGateway", "FakeTwilio", "Twilio", .product(name: "Logging", package: "swift-log")],
            path: "Tests/CallTraceDeploymentSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CallTraceRPCTests",
            dependencies: ["CallTraceSync", "CallTraceRPC", "CallTraceTLS", "CallTraceAPI", "CallTraceProto", "CallTraceTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CallTraceTLSTests",
            dependencies: ["CallTraceTLS", "CallTraceRPC", "CallTraceTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CallTraceKeysTests",
            dependencies: ["CallTraceKeys", "CallTraceStorage", "CallTraceSync", "CallTraceTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CallTraceServiceHostTests",
            dependencies: ["CallTraceSync", "CallTraceServiceHost", "CallTraceRPC", "CallTraceKeys", "CallTraceStorage", "CallTraceTLS", "CallTraceProto",
                           "CallTraceTestSupport", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "IdentityServiceTests",
            dependencies: ["CallTraceSync", "CallTraceRPC", "CallTraceProto", "CallTraceServiceHost", "CallTraceKeys", "CallTraceStorage",
                           "CallTraceTestSupport", "IdentityDomain"],
            path: "Tests/IdentityServiceTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MediaServiceTests",
            dependencies: ["CallTraceRPC", "CallTraceProto", "CallTraceAPI", "CallTraceServiceHost", "CallTraceKeys", "CallTraceStorage", "CallTraceS3",
                           "CallTraceTestSupport", "CallTraceDeploymentSupport", "IdentityDomain", "MediaDomain", "TranscriptDomain", "ComplianceDomain",
                           "CSndfile"],
            path: "Tests/MediaServiceTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TranscriptServiceTests",
            dependencies: ["CallTraceSync", "CallTraceRPC", "CallTraceProto", "CallTraceAPI", "CallTraceServiceHost", "CallTraceKeys", "CallTraceStorage",
                           "CallTraceTestSupport", "IdentityDomain", "MediaDomain", "TranscriptDomain", "TranscriptText", "ComplianceDomain"],
            path: "Tests/TranscriptServiceTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ComplianceServiceTests",
            dependencies: ["CallTraceSync", "ComplianceDocuments", "ComplianceDeadlines", "CallTraceRPC", "CallTraceProto", "CallTraceAPI", "CallTraceServiceHost", "CallTraceStorage",
                           "CallTraceTestSupport", "CallTraceKeys", "IdentityDomain", "MediaDomain", "TranscriptDomain", "ComplianceDomain",
                           .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            path: "Tests/ComplianceServiceTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CallTraceProtoTests",
            dependencies: ["CallTraceProto", "CallTraceRPC", "CallTraceTestSupport",
                           .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            swiftSettings: swiftSettings
        ),
        // Each module's public behaviour on its own, beside the services' suites that use it.
        .testTarget(name: "CallTraceSyncTests", dependencies: ["CallTraceSync"], swiftSettings: swiftSettings),
        .testTarget(
            name: "CallTraceStorageTests",
            dependencies: ["CallTraceStorage", "CallTraceTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CallTracePKITests",
            dependencies: ["CallTracePKI", "CallTraceTLS", "COpenSSL"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CallTraceOutboundTests",
            dependencies: ["CallTraceOutbound", "CallTraceTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CallTraceS3Tests",
            dependencies: ["CallTraceS3", "CallTraceOutbound", "CallTraceKeys", "CallTraceStorage", "CallTraceSync", "CallTraceTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "WebGatewayTests",
            dependencies: ["CallTraceSync", "WebGateway", "CallTraceHTTP", "CallTraceServiceHost", "CallTraceAPI", "CallTraceRPC", "CallTraceProto", "CallTraceKeys",
                           "CallTraceTestSupport", "CallTraceDeploymentSupport", "FakeTwilio", .product(name: "Yams", package: "Yams")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TelephonyGatewayTests",
            dependencies: ["TelephonyGateway", "Twilio", "FakeTwilio", "CallTraceAPI", "CallTraceOutbound", "CallTraceProto", "CallTraceRPC",
                           "CallTraceServiceHost", "CallTraceTestSupport", "CallTraceDeploymentSupport"],
            swiftSettings: swiftSettings
        ),
        // `make crash`: the deployment's four services as processes, killed with SIGKILL at random
        // moments of ingest, deletion and erasure; the invariants checked after each restart.
        .testTarget(
            name: "CrashHarnessTests",
            dependencies: ["CallTraceAPI", "CallTraceProto", "CallTraceRPC", "CallTraceStorage", "CallTraceTestSupport", "CallTraceDeploymentSupport", "FakeTwilio"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SoakTests",
            dependencies: ["CallTraceAPI", "CallTraceProto", "CallTraceRPC", "CallTraceSync", "CallTraceTestSupport", "CallTraceDeploymentSupport",
                           "FakeTwilio"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TwilioTests",
            dependencies: ["Twilio", "FakeTwilio", "CallTraceOutbound", "CallTraceKeys", "CallTraceTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CallTraceAPITests",
            dependencies: ["CallTraceSync", "CallTraceAPI", "CallTraceRPC", "CallTraceProto", "CallTraceServiceHost", "CallTraceTLS", "CallTraceTestSupport",
                           .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            swiftSettings: swiftSettings
        ),
    ]
)
