import Tensors
import ToolkitCore

/// An image file (or in-memory image) that is missing, unreadable, malformed or does not fit
/// a model, described in one sentence that names the source and the problem.
///
/// Exit statuses follow sysexits(3): 66 when a file is missing or cannot be read, 65 when its
/// content is bad or its shape does not fit, 73/74 when an image cannot be written.
public struct ImageFileError: ToolkitError, Equatable {
    /// What kind of problem (`.missingInput`, `.invalidData`, `.cannotCreate`, `.ioFailure`).
    public let cause: ErrorCause
    /// The whole sentence shown to the user.
    public let description: String

    /// Creates an error from a complete sentence and its status.
    public init(_ description: String, cause: ErrorCause = .invalidData) {
        self.description = description
        self.cause = cause
    }

    /// The content of `source` is wrong; `problem` completes the sentence "<source> ...".
    static func badContent(_ source: String, _ problem: String) -> ImageFileError {
        ImageFileError("\(source) \(problem)", cause: .invalidData)
    }

    /// `source` cannot be read at all (missing, a folder, a device, permissions).
    static func noInput(_ source: String, _ problem: String) -> ImageFileError {
        ImageFileError("\(source) \(problem)", cause: .missingInput)
    }
}

/// How error messages name in-memory data or a file.
enum SourceName {
    /// `'path'` for a file, or `what` (`the PNG data`) for bytes that came from memory.
    static func of(_ path: String?, _ what: String) -> String {
        guard let path, !path.isEmpty else { return what }
        return "'\(path)'"
    }
}
