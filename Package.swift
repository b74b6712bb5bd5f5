// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "KafkaSync",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "kafkasync", targets: ["kafkasync"]),
        .library(name: "AsyncSupport", targets: ["AsyncSupport"]),
        .library(name: "KafkaClient", targets: ["KafkaClient"]),
        .library(name: "KafkaSyncCore", targets: ["KafkaSyncCore"]),
        .library(name: "TransferStore", targets: ["TransferStore"]),
        .library(name: "SFTPClient", targets: ["SFTPClient"]),
        .library(name: "Dashboard", targets: ["Dashboard"]),
        .library(name: "ObjectStorage", targets: ["ObjectStorage"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", exact: "0.6.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssh", from: "0.15.1"),
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2"),
        .package(url: "https://github.com/apple/swift-async-algorithms", from: "1.1.4"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CRdKafka",
            pkgConfig: "rdkafka",
            providers: [.apt(["librdkafka-dev"])]
        ),
        // Blocking calls off the cooperative pool, group commits, Duration conversions: shared by the libraries.
        .target(
            name: "AsyncSupport",
            dependencies: [.product(name: "NIOPosix", package: "swift-nio")]
        ),
        .target(
            name: "KafkaClient",
            dependencies: [
                "AsyncSupport",
                "CRdKafka",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "SFTPClient",
            dependencies: [
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSH", package: "swift-nio-ssh"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // S3-compatible object storage: SigV4 signing and the S3 operations the upload stage needs.
        .target(
            name: "ObjectStorage",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .target(
            name: "TransferStore",
            dependencies: [
                "AsyncSupport",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // `git rev-parse HEAD` into BuildInfo.commit before every build.
        .plugin(name: "BuildInfoPlugin", capability: .buildTool()),
        .target(
            name: "KafkaSyncCore",
            dependencies: [
                "AsyncSupport",
                "KafkaClient",
                "ObjectStorage",
                "SFTPClient",
                "TransferStore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "AsyncAlgorithms", package: "swift-async-algorithms"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            plugins: ["BuildInfoPlugin"]
        ),
        .target(
            name: "Dashboard",
            dependencies: [
                "AsyncSupport",
                "KafkaClient",
                "KafkaSyncCore",
                "TransferStore",
                .product(name: "AsyncAlgorithms", package: "swift-async-algorithms"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            // The page, served from the binary (no files to install beside it).
            resources: [
                .embedInCode("Assets/index.html"), .embedInCode("Assets/app.js"), .embedInCode("Assets/app.css"),
            ]
        ),
        .target(
            name: "TestSupport",
            dependencies: [
                "AsyncSupport", "KafkaClient", "KafkaSyncCore", "TransferStore", "SFTPClient",
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]
        ),
        .executableTarget(
            name: "kafkasync",
            dependencies: [
                "AsyncSupport",
                "KafkaClient",
                "KafkaSyncCore",
                "TransferStore",
                "SFTPClient",
                "Dashboard",
                "ObjectStorage",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(name: "AsyncSupportTests", dependencies: ["AsyncSupport", "TestSupport"]),
        .testTarget(name: "KafkaClientTests", dependencies: ["KafkaClient", "TestSupport"]),
        .testTarget(name: "SFTPClientTests", dependencies: ["SFTPClient", "TestSupport"]),
        .testTarget(name: "ObjectStorageTests", dependencies: ["ObjectStorage", "TestSupport"]),
        .testTarget(name: "TransferStoreTests", dependencies: ["TransferStore", "TestSupport"]),
        // A second process writing to the store, for the concurrent-writers test.
        .executableTarget(name: "StoreWriter", dependencies: ["TransferStore"], path: "Tests/StoreWriter"),
        .testTarget(name: "KafkaSyncCoreTests", dependencies: ["KafkaSyncCore", "TestSupport"]),
        .testTarget(name: "DashboardTests", dependencies: ["Dashboard", "KafkaSyncCore", "TransferStore", "TestSupport"]),
        .testTarget(name: "kafkasyncTests", dependencies: ["KafkaClient", "KafkaSyncCore", "TransferStore", "SFTPClient", "Dashboard", "TestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)

// Fuzzing (scripts/fuzz): libFuzzer targets under Tests/Fuzz, declared only when KAFKASYNC_FUZZ=1 so the normal
// build never compiles them. Each target defines `LLVMFuzzerTestOneInput` and `<target>_main` (see FuzzSupport).
if Context.environment["KAFKASYNC_FUZZ"] == "1" {
    let fuzzTargets: [(name: String, dependencies: [Target.Dependency])] = [
        ("FuzzJobDecoder", ["KafkaSyncCore"]),
        ("FuzzConfigLoader", ["KafkaSyncCore"]),
        ("FuzzSFTPPackets", ["SFTPClient", .product(name: "NIOCore", package: "swift-nio")]),
        ("FuzzKnownHosts", ["SFTPClient"]),
        ("FuzzPrivateKey", ["SFTPClient"]),
    ]
    package.targets.append(.target(name: "FuzzSupport", path: "Tests/Fuzz/FuzzSupport"))
    for target in fuzzTargets {
        package.targets.append(.executableTarget(
            name: target.name, dependencies: ["FuzzSupport"] + target.dependencies, path: "Tests/Fuzz/\(target.name)",
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]))
    }
}
