import Evaluation
import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// A progress bar on standard error: redrawn in place on a terminal, plain lines
/// (at most about one per 10 %) when standard error is a file or a pipe.
public final class ProgressBar {
    private let total: Int
    private let label: String
    private let start = Date()
    private let isTerminal = isatty(STDERR_FILENO) != 0
    private var lastPrintedDecile = -1
    private var lastDraw = Date.distantPast
    /// When false nothing is printed (library use, `--quiet`).
    public var enabled: Bool

    /// A bar for `total` units of work.
    public init(total: Int, label: String, enabled: Bool = true) {
        self.total = max(1, total)
        self.label = label
        self.enabled = enabled
    }

    /// Seconds since the bar was created.
    public var elapsed: Double { Date().timeIntervalSince(start) }

    /// Reports `done` units finished, with extra fields (`loss 0.12`).
    public func update(_ done: Int, _ fields: String = "") {
        guard enabled else { return }
        let fraction = min(1, Double(done) / Double(total))
        let seconds = elapsed
        let eta = fraction > 0 ? seconds * (1 - fraction) / fraction : 0
        if isTerminal {
            guard done >= total || Date().timeIntervalSince(lastDraw) > 0.1 else { return }
            lastDraw = Date()
            let width = 24, filled = Int(fraction * Double(width))
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            let line = "\r\(label) [\(bar)] \(done)/\(total) \(fields) \(Self.format(seconds)) eta \(Self.format(eta))\u{1B}[K"
            FileHandle.standardError.write(line.data(using: .utf8)!)
        } else {
            let decile = Int(fraction * 10)
            guard decile > lastPrintedDecile else { return }
            lastPrintedDecile = decile
            let line = "\(label) \(done)/\(total) \(fields) \(Self.format(seconds)) eta \(Self.format(eta))\n"
            FileHandle.standardError.write(line.data(using: .utf8)!)
        }
    }

    /// Ends the bar (a newline on a terminal).
    public func finish() {
        if enabled && isTerminal { FileHandle.standardError.write("\n".data(using: .utf8)!) }
    }

    static func format(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 60 ? "\(s / 60)m\(String(format: "%02d", s % 60))s" : "\(s)s"
    }
}

extension ProgressBar: ProgressReporter {}
