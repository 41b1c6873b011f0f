// swift-tools-version:6.2
import PackageDescription

let package = Package(
    name: "netd",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "netd", targets: ["netd"]),
        .executable(name: "netctl", targets: ["netctl"]),
        .library(name: "NetdClient", targets: ["NetdClient"]),
        .library(name: "NetdProtocol", targets: ["NetdProtocol"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
    ],
    targets: [
        .target(name: "NetdProtocol", path: "Sources/Protocol"),
        .target(
            name: "NetdFraming",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            path: "Sources/Framing"
        ),
        .target(
            name: "NetdStore",
            dependencies: [
                "NetdProtocol",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Store"
        ),
        .target(
            name: "NetdCore",
            dependencies: [
                "NetdProtocol", "NetdFraming", "NetdStore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Sources/Core"
        ),
        .target(
            name: "NetdClient",
            dependencies: [
                "NetdProtocol", "NetdFraming",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Sources/Client"
        ),
        .executableTarget(
            name: "netd",
            dependencies: [
                "NetdCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/netd"
        ),
        .executableTarget(
            name: "netctl",
            dependencies: [
                "NetdClient", "NetdProtocol",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/netctl"
        ),
        .testTarget(
            name: "NetdProtocolTests",
            dependencies: ["NetdProtocol", "NetdFraming", .product(name: "NIOCore", package: "swift-nio")],
            path: "Tests/ProtocolTests"
        ),
        .testTarget(
            name: "NetdStoreTests",
            dependencies: ["NetdStore", .product(name: "GRDB", package: "GRDB.swift")],
            path: "Tests/StoreTests"
        ),
        .testTarget(
            name: "NetdEndToEndTests",
            dependencies: [
                "NetdCore", "NetdClient", "NetdProtocol", "NetdFraming",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/EndToEndTests"
        ),
    ]
)
