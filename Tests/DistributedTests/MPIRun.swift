import Foundation

/// Runs built products, alone or under `mpirun`, with a timeout, for the tests of the MPI paths.
enum MPIRun {
    struct Result {
        let status: Int32
        let output: String
        let timedOut: Bool
    }

    /// The folder holding the built products (the test bundle's folder).
    static var productsDirectory: URL {
        for bundle in Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
            return bundle.bundleURL.deletingLastPathComponent()
        }
        return Bundle.main.bundleURL
    }

    /// `mpirun -np ranks --oversubscribe [extra] tool arguments` (or the tool alone with ranks == 0),
    /// stdout and stderr joined; killed after `timeout` seconds. Running as root is allowed for
    /// this run only (OMPI_ALLOW_RUN_AS_ROOT and its confirmation, as CI runs as root).
    static func run(
        _ tool: String, _ arguments: [String], ranks: Int, mpiArguments: [String] = [],
        timeout: TimeInterval = 120
    ) throws -> Result {
        let process = Process()
        let toolPath = productsDirectory.appendingPathComponent(tool).path
        if ranks == 0 {
            process.executableURL = URL(fileURLWithPath: toolPath)
            process.arguments = arguments
        } else {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["mpirun", "-np", String(ranks), "--oversubscribe"] + mpiArguments + [toolPath] + arguments
        }
        var environment = ProcessInfo.processInfo.environment
        environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        process.environment = environment
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        final class Box: @unchecked Sendable { var data = Data() }
        let box = Box()
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            box.data = pipe.fileHandleForReading.readDataToEndOfFile()
            done.signal()
        }
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        let timedOut = process.isRunning
        if timedOut { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        done.wait()
        return Result(status: process.terminationStatus, output: String(decoding: box.data, as: UTF8.self), timedOut: timedOut)
    }
}
