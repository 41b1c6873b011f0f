// swift-tools-version:6.2
import PackageDescription

/// Our own code builds without warnings; SwiftPM ignores this where netd is someone's dependency.
let strict: [SwiftSetting] = [.treatAllWarnings(as: .error)]

/// The executables link the Swift runtime and Foundation statically in release builds, so that a
/// plain `swift build -c release` makes a netctl that starts as fast as a C program does (no
/// dynamic loading of libswiftCore, libFoundation and the rest) and a netd that runs without a
/// Swift toolchain on the machine. Debug builds (tests, sanitizers) link dynamically, for speed.
let staticRuntime: [LinkerSetting] = [.unsafeFlags(["-static-stdlib"], .when(configuration: .release))]
let staticRuntimeCompile: [SwiftSetting] = strict + [.unsafeFlags(["-static-stdlib"], .when(configuration: .release))]

let package = Package(
    name: "netd",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "netd", targets: ["netd"]),
        .executable(name: "netctl", targets: ["netctl"]),
        .executable(name: "netd-bench", targets: ["netd-bench"]),
        .library(name: "NetdClient", targets: ["NetdClient"]),
        .library(name: "NetdBlockingClient", targets: ["NetdBlockingClient"]),
        .library(name: "NetdProtocol", targets: ["NetdProtocol"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        .target(name: "NetdProtocol", path: "Sources/Protocol", swiftSettings: strict),
        .target(
            name: "NetdFraming",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            path: "Sources/Framing",
            swiftSettings: strict
        ),
        .target(
            name: "NetdLocks",
            dependencies: [.product(name: "NIOConcurrencyHelpers", package: "swift-nio")],
            path: "Sources/Locks",
            swiftSettings: strict
        ),
        .target(name: "CNetdRelay", path: "Sources/CRelay"),
        .target(name: "NetdRelay", dependencies: ["CNetdRelay", "NetdLocks"], path: "Sources/Relay", swiftSettings: strict),
        .target(
            name: "NetdStore",
            dependencies: [
                "NetdProtocol", "NetdLocks",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Store",
            swiftSettings: strict
        ),
        .target(
            name: "NetdCore",
            dependencies: [
                "NetdProtocol", "NetdFraming", "NetdStore", "NetdRelay", "NetdLocks",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            path: "Sources/Core",
            swiftSettings: strict
        ),
        .target(
            name: "NetdClient",
            dependencies: [
                "NetdProtocol", "NetdFraming", "NetdLocks",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Sources/Client",
            swiftSettings: strict
        ),
        .target(name: "NetdBlockingClient", dependencies: ["NetdProtocol", "NetdRelay"], path: "Sources/BlockingClient", swiftSettings: strict),
        .executableTarget(
            name: "netd",
            dependencies: [
                "NetdCore",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/netd",
            swiftSettings: staticRuntimeCompile,
            linkerSettings: staticRuntime
        ),
        .executableTarget(
            name: "netctl",
            dependencies: [
                "NetdBlockingClient", "NetdProtocol",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/netctl",
            swiftSettings: staticRuntimeCompile,
            linkerSettings: staticRuntime
        ),
        .executableTarget(
            name: "netd-bench",
            dependencies: [
                "NetdClient", "NetdProtocol", "NetdStore", "NetdCore", "NetdFraming", "NetdTestSupport", "CNetdTestSupport", "NetdLocks",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/NetdBench",
            swiftSettings: staticRuntimeCompile,
            linkerSettings: staticRuntime
        ),
        .testTarget(
            name: "NetdProtocolTests",
            dependencies: ["NetdProtocol", "NetdFraming", .product(name: "NIOCore", package: "swift-nio")],
            path: "Tests/ProtocolTests",
            swiftSettings: strict
        ),
        .target(name: "CNetdTestSupport", path: "Tests/CSupport"),
        .target(name: "NetdTestSupport", dependencies: ["CNetdTestSupport", "NetdLocks"], path: "Tests/Support", swiftSettings: strict),
        .testTarget(
            name: "NetdRelayTests",
            dependencies: ["NetdRelay", "NetdTestSupport", "NetdLocks"],
            path: "Tests/RelayTests",
            swiftSettings: strict
        ),
        .testTarget(
            name: "NetdStoreTests",
            dependencies: ["NetdStore", .product(name: "GRDB", package: "GRDB.swift")],
            path: "Tests/StoreTests",
            swiftSettings: strict
        ),
        .testTarget(
            name: "NetdEndToEndTests",
            dependencies: [
                "NetdCore", "NetdClient", "NetdProtocol", "NetdFraming", "NetdTestSupport", "NetdRelay", "NetdLocks",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/EndToEndTests",
            swiftSettings: strict
        ),
    ]
)
