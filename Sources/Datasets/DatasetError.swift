import Tensors
import ToolkitCore

/// A data file that is missing, unreadable or malformed, described in one sentence
/// that names the file and the problem.
///
/// Its cause is `.missingInput` when a file is missing or cannot be read, `.invalidData`
/// when its content is bad, `.invalidArgument` for an invalid loading option.
public struct DatasetError: ToolkitError, Equatable {
    /// What went wrong, which decides the cause.
    public enum Kind: Sendable, Equatable {
        /// The file (or directory) does not exist.
        case missing
        /// The file exists but cannot be read (permissions, a directory, an I/O error).
        case unreadable
        /// The file was read but its content is not what the format requires.
        case badContent
        /// A loading option is out of range (for example the validation fraction).
        case invalidOption
    }

    /// What went wrong.
    public var kind: Kind
    /// The path of the file concerned (empty for an invalid option).
    public var path: String
    /// The whole sentence shown to the user.
    public var message: String

    /// Creates an error from its parts; `message` should be one sentence naming `path`.
    public init(kind: Kind, path: String, message: String) {
        self.kind = kind
        self.path = path
        self.message = message
    }

    /// The cause of `kind`: missing input, invalid data or invalid argument.
    public var cause: ErrorCause {
        switch kind {
        case .missing, .unreadable: return .missingInput
        case .badContent: return .invalidData
        case .invalidOption: return .invalidArgument
        }
    }

    /// The message.
    public var description: String { message }

    /// `path` does not exist; `hint` says how to get it.
    static func missing(_ path: String, hint: String) -> DatasetError {
        DatasetError(kind: .missing, path: path, message: "\(path) was not found; \(hint).")
    }

    /// `path` exists but cannot be read, because `reason`.
    static func unreadable(_ path: String, _ reason: String) -> DatasetError {
        DatasetError(kind: .unreadable, path: path, message: "\(path) cannot be read: \(reason).")
    }

    /// The content of `path` is wrong; `problem` completes the sentence "<path> ...".
    static func badContent(_ path: String, _ problem: String) -> DatasetError {
        DatasetError(kind: .badContent, path: path, message: "\(path) \(problem).")
    }

    /// A loading option is out of range; `message` is the whole sentence.
    static func invalidOption(_ message: String) -> DatasetError {
        DatasetError(kind: .invalidOption, path: "", message: message)
    }
}
