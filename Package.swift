// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "DAFAR-Swift",
    products: [
        .library(name: "DAFARKit", targets: ["Tensors", "Autodiff", "NeuralNetworks", "Datasets", "DAFAR", "Attacks", "Baselines",
                                             "Reporting", "Evaluation"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.0.0"),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .systemLibrary(
            name: "CBLAS", path: "Modules/CBLAS", pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev", "liblapacke-dev", "pkg-config"])]),
        .systemLibrary(name: "CZlib", path: "Modules/CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .target(name: "Tensors", dependencies: ["CBLAS"]),
        .target(name: "Autodiff", dependencies: ["Tensors"]),
        .target(name: "NeuralNetworks", dependencies: ["Autodiff", .product(name: "Crypto", package: "swift-crypto")]),
        .target(name: "Datasets", dependencies: ["Tensors", "CZlib"]),
        .target(name: "DAFAR", dependencies: ["NeuralNetworks", "Datasets"]),
        .target(name: "Attacks", dependencies: ["NeuralNetworks"]),
        .target(name: "Baselines", dependencies: ["NeuralNetworks"]),
        .target(name: "Reporting"),
        .target(name: "Evaluation", dependencies: ["DAFAR", "Attacks", "Baselines", "Reporting"]),
        .target(name: "ParserFuzzing", dependencies: ["DAFAR", "Attacks", "CZlib"]),
        .executableTarget(name: "dafar-fuzz", dependencies: ["ParserFuzzing"]),
        .target(name: "CommandSupport", dependencies: ["Evaluation", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(name: "dafar-train", dependencies: ["CommandSupport"]),
        .executableTarget(name: "dafar-detector", dependencies: ["CommandSupport"]),
        .target(name: "Benchmarking", dependencies: ["DAFAR", "Attacks"]),
        .executableTarget(name: "dafar-bench", dependencies: ["Benchmarking", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(name: "KernelBenchmarks", dependencies: ["Benchmarking", .product(name: "Benchmark", package: "benchmark")],
                          path: "Benchmarks/KernelBenchmarks", plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]),
        .executableTarget(name: "dafar-attack", dependencies: ["CommandSupport"]),
        .executableTarget(name: "dafar-eval", dependencies: ["CommandSupport"]),
        .testTarget(name: "TensorsTests", dependencies: ["Tensors"]),
        .testTarget(name: "AutodiffTests", dependencies: ["Autodiff"]),
        .testTarget(name: "NeuralNetworksTests", dependencies: ["NeuralNetworks"]),
        .testTarget(name: "DatasetsTests", dependencies: ["Datasets"]),
        .testTarget(name: "DAFARTests", dependencies: ["DAFAR"]),
        .testTarget(name: "ParserFuzzingTests", dependencies: ["ParserFuzzing"]),
        .testTarget(name: "AttacksTests", dependencies: ["Attacks"]),
        .testTarget(name: "BaselinesTests", dependencies: ["Baselines"]),
        .testTarget(name: "ReportingTests", dependencies: ["Reporting", "Evaluation", "Tensors"]),
        .testTarget(name: "EvaluationTests", dependencies: ["Evaluation", "Reporting"]),
        .testTarget(name: "BenchmarkingTests", dependencies: ["Benchmarking", "dafar-bench"]),
        .testTarget(name: "CLITests", dependencies: ["dafar-train", "dafar-detector", "dafar-attack", "dafar-eval"]),
    ],
    swiftLanguageModes: [.v5]
)
