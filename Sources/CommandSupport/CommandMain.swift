import ArgumentParser
import Distributed
import Foundation

extension ParsableCommand {
    /// Parses the command line and runs the command, like `main()`, but reports a usage error
    /// (bad option, value out of range) in one line on standard error, followed by where help
    /// is, with exit status 64; `--help` and `--version` behave as usual.
    ///
    /// Errors from `run()` are reported by `reportingErrors`, which throws an `ExitCode` that is
    /// passed through unchanged (130 after Ctrl-C, 65 for bad data, ...). Under a launcher
    /// (mpirun, srun) only rank 0 prints a usage error; every rank exits with its status.
    public static func mainReportingOneLine(_ arguments: [String]? = nil) -> Never {
        let error: Error
        do {
            var command = try parseAsRoot(arguments)
            try command.run()
            Foundation.exit(0)
        } catch let caught {
            error = caught
        }
        let status = exitCode(for: error)
        if status == .success { exit(withError: error) }
        let message = self.message(for: error)
        // under mpirun every rank parses the same arguments: only rank 0 prints the error
        if !message.isEmpty && Launcher.rank() == 0 {
            let name = configuration.commandName ?? "the command"
            printError("error: \(printable(oneLine(message))) (see '\(name) --help')")
        }
        Foundation.exit(status.rawValue)
    }

    /// An argument parser message in one line: bulleted choices become a comma-separated list.
    static func oneLine(_ message: String) -> String {
        var text = ""
        var choices: [String] = []
        func flushChoices() {
            if !choices.isEmpty { text += " " + choices.joined(separator: ", ") }
            choices = []
        }
        for raw in message.split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            if line.hasPrefix("- ") {
                choices.append(String(line.dropFirst(2)))
            } else {
                flushChoices()
                text += (text.isEmpty ? "" : " ") + line
            }
        }
        flushChoices()
        if text.hasPrefix("Error: ") { text.removeFirst("Error: ".count) }
        return text
    }
}

/// `text` safe to print as one line: control characters (newlines, escape sequences that a
/// crafted file could carry in a tensor name) are shown as Swift escapes, `\n`, `\u{1B}`, and
/// a message swollen by echoed file content keeps its first 1000 and last 500 characters.
public func printable(_ text: String) -> String {
    var result = ""
    for scalar in text.unicodeScalars {
        if scalar.value < 0x20 || scalar.value == 0x7F {
            result += scalar == "\n" ? "\\n" : scalar == "\t" ? "\\t" : "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
        } else {
            result.unicodeScalars.append(scalar)
        }
    }
    guard result.count > 1600 else { return result }
    return result.prefix(1000) + " [\(result.count - 1500) characters left out] " + result.suffix(500)
}
