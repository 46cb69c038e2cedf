/// What kind of problem an error reports, in terms the caller can act on: a front end chooses
/// its answer from it (the command-line tools map it to a sysexits(3) status in CommandSupport,
/// a service to an HTTP status) without parsing messages.
public enum ErrorCause: Sendable, Equatable, CaseIterable {
    /// A setting the caller chose is out of range or inconsistent.
    case invalidArgument
    /// The content of a file or buffer is bad (truncated, corrupt, wrong shape, NaN).
    case invalidData
    /// An input does not exist or cannot be read.
    case missingInput
    /// An output cannot be created (missing or read-only folder, a folder in the way).
    case cannotCreate
    /// Reading or writing failed midway (disk full, I/O error).
    case ioFailure
    /// The toolkit itself failed (a non-finite loss, a broken invariant).
    case internalFailure
}

/// An error of the toolkit with a message meant for people and a cause meant for programs.
public protocol ToolkitError: Error, CustomStringConvertible {
    /// What kind of problem this is.
    var cause: ErrorCause { get }
}
