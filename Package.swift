// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "DAFAR-Swift",
    products: [
        .library(
            name: "DAFARKit",
            targets: [
                "ToolkitCore", "Tensors", "Autodiff", "NeuralNetworks", "Datasets", "DAFAR", "Attacks", "Baselines",
                "Reporting", "Evaluation", "ImageFiles"
            ])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.0.0"),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.5.0")
    ],
    targets: [
        .systemLibrary(
            name: "CBLAS", path: "Modules/CBLAS", pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev", "liblapacke-dev", "pkg-config"])]),
        .systemLibrary(name: "CZlib", path: "Modules/CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CPNG", path: "Modules/CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CMPI", path: "Modules/CMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev", "openmpi-bin"])]),
        // the toolkit's error vocabulary and atomic file writes: Foundation only, below everything
        .target(name: "ToolkitCore"),
        // the direct 3x3 convolution kernels (AVX-512 or AVX2 + FMA3, chosen at run time)
        .target(name: "_ConvKernels"),
        // the AVX-512 single-precision GEMM of the dense layers (OpenBLAS on CPUs without AVX-512)
        .target(name: "_GemmKernels"),
        // the persistent worker threads of Parallel.forEach (C11 atomics and pthreads: spin briefly, then sleep)
        .target(name: "_ThreadPool"),
        .target(name: "Tensors", dependencies: ["CBLAS", "ToolkitCore", "_ConvKernels", "_GemmKernels", "_ThreadPool"]),
        // element-wise kernels that need more than baseline x86-64 to vectorise (the exact gradient sum's
        // fixed point, Adam's update): AVX-512 or portable loops, chosen at run time, the same bits
        .target(name: "_VectorKernels"),
        .target(name: "Distributed", dependencies: ["CMPI", "Tensors", "ToolkitCore", "_VectorKernels"]),
        .target(name: "Autodiff", dependencies: ["Tensors"]),
        .target(name: "NeuralNetworks", dependencies: ["Autodiff", "_VectorKernels", .product(name: "Crypto", package: "swift-crypto")]),
        .target(name: "Datasets", dependencies: ["Tensors", "CZlib"]),
        .target(name: "DAFAR", dependencies: ["NeuralNetworks", "Datasets", "Distributed"]),
        .target(name: "ImageFiles", dependencies: ["Tensors", "Datasets", "NeuralNetworks", "DAFAR", "CPNG"]),
        .target(
            name: "Serving",
            dependencies: [
                "DAFAR", "ImageFiles", .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log")
            ]),
        .target(name: "Attacks", dependencies: ["NeuralNetworks"]),
        .target(name: "Baselines", dependencies: ["NeuralNetworks"]),
        .target(name: "Reporting", dependencies: ["ToolkitCore"]),
        .target(name: "Evaluation", dependencies: ["DAFAR", "Attacks", "Baselines", "Reporting", "Distributed"]),
        .target(name: "ParserFuzzing", dependencies: ["DAFAR", "Attacks", "ImageFiles", "CZlib", "CPNG"]),
        .executableTarget(name: "dafar-fuzz", dependencies: ["ParserFuzzing"]),
        .target(
            name: "CommandSupport",
            dependencies: ["Evaluation", "Distributed", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(name: "dafar-train", dependencies: ["CommandSupport"]),
        .executableTarget(name: "dafar-detector", dependencies: ["CommandSupport"]),
        .target(name: "_FMALoop"),
        .target(name: "_CoreRoundTrip"),
        .target(name: "Benchmarking", dependencies: ["DAFAR", "Attacks", "_FMALoop", "_CoreRoundTrip"]),
        .executableTarget(
            name: "dafar-bench", dependencies: ["Benchmarking", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(
            name: "KernelBenchmarks", dependencies: ["Benchmarking", .product(name: "Benchmark", package: "benchmark")],
            path: "Benchmarks/KernelBenchmarks", plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]),
        .executableTarget(name: "dafar-attack", dependencies: ["CommandSupport"]),
        .executableTarget(name: "dafar-eval", dependencies: ["CommandSupport"]),
        .executableTarget(name: "dafar-inspect", dependencies: ["CommandSupport", "ImageFiles"]),
        .executableTarget(name: "dafar-serve", dependencies: ["CommandSupport", "Serving"]),
        .testTarget(name: "TensorsTests", dependencies: ["Tensors", "_ThreadPool"]),
        .testTarget(name: "AutodiffTests", dependencies: ["Autodiff"]),
        .testTarget(name: "NeuralNetworksTests", dependencies: ["NeuralNetworks", "ToolkitCore", "_VectorKernels"]),
        .testTarget(name: "DatasetsTests", dependencies: ["Datasets"]),
        .testTarget(name: "ImageFilesTests", dependencies: ["ImageFiles", "CPNG", "CZlib"]),
        .testTarget(name: "DAFARTests", dependencies: ["DAFAR"]),
        .testTarget(name: "ParserFuzzingTests", dependencies: ["ParserFuzzing"]),
        .testTarget(
            name: "ServingTests",
            dependencies: [
                "Serving", "ImageFiles", "DAFAR", "NeuralNetworks", "Tensors", .product(name: "HummingbirdTesting", package: "hummingbird")
            ]),
        .testTarget(name: "AttacksTests", dependencies: ["Attacks"]),
        .testTarget(name: "BaselinesTests", dependencies: ["Baselines"]),
        .testTarget(name: "ReportingTests", dependencies: ["Reporting", "Evaluation", "Tensors"]),
        .testTarget(name: "EvaluationTests", dependencies: ["Evaluation", "Reporting"]),
        .testTarget(name: "BenchmarkingTests", dependencies: ["Benchmarking", "dafar-bench"]),
        .executableTarget(name: "dafar-mpi-check", dependencies: ["Distributed", "Tensors"], path: "Tests/MPICheck"),
        .testTarget(name: "DistributedTests", dependencies: ["Distributed", "dafar-mpi-check", "_VectorKernels"]),
        .testTarget(
            name: "CLITests",
            dependencies: [
                "dafar-train", "dafar-detector", "dafar-attack", "dafar-eval", "dafar-inspect", "dafar-serve", "DAFAR", "ImageFiles"
            ])
    ],
    // Swift 6 language mode, complete concurrency checking, for every target
    swiftLanguageModes: [.v6]
)
