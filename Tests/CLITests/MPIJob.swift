import Foundation

/// Starts `mpirun -np N --oversubscribe` over a built tool, with a timeout, and finds its ranks.
final class MPIJob {
    let process = Process()
    private let pipe = Pipe()
    private final class Box: @unchecked Sendable { var data = Data() }
    private let box = Box()
    private let done = DispatchSemaphore(value: 0)

    /// Starts the job. Running as root is allowed for this job only (CI runs as root).
    init(ranks: Int, tool: String, _ arguments: [String], mpiArguments: [String] = []) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments =
            ["mpirun", "-np", String(ranks), "--oversubscribe"] + mpiArguments
            + [CommandRunner.productsDirectory.appendingPathComponent(tool).path] + arguments
        var environment = ProcessInfo.processInfo.environment
        environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        process.environment = environment
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        DispatchQueue.global().async { [box, pipe, done] in
            box.data = pipe.fileHandleForReading.readDataToEndOfFile()
            done.signal()
        }
    }

    /// Waits at most `timeout` seconds (then kills mpirun); returns the status, the output and whether it timed out.
    func wait(timeout: TimeInterval) -> (status: Int32, output: String, timedOut: Bool) {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        let timedOut = process.isRunning
        if timedOut { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        done.wait()
        return (process.terminationStatus, String(decoding: box.data, as: UTF8.self), timedOut)
    }

    /// Runs a job to its end.
    static func run(
        ranks: Int = 2, _ tool: String, _ arguments: [String], mpiArguments: [String] = [],
        timeout: TimeInterval = 180
    ) throws -> (status: Int32, output: String, timedOut: Bool) {
        try MPIJob(ranks: ranks, tool: tool, arguments, mpiArguments: mpiArguments).wait(timeout: timeout)
    }

    /// The processes whose command line contains `marker`, with their launcher rank (from their environment).
    static func processes(containing marker: String) -> [(pid: Int32, rank: Int?)] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { entry -> (Int32, Int?)? in
            guard let pid = Int32(entry), pid != getpid(),
                let cmdline = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline"),
                String(decoding: cmdline, as: UTF8.self).contains(marker),
                !String(decoding: cmdline, as: UTF8.self).contains("mpirun")
            else { return nil }
            let environ = FileManager.default.contents(atPath: "/proc/\(entry)/environ").map { String(decoding: $0, as: UTF8.self) } ?? ""
            let rank = environ.split(separator: "\0").first { $0.hasPrefix("OMPI_COMM_WORLD_RANK=") }
                .flatMap { Int($0.dropFirst("OMPI_COMM_WORLD_RANK=".count)) }
            return (pid, rank)
        }
    }
}
