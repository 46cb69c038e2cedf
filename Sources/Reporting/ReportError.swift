import Foundation
import ToolkitCore

/// An error in writing a report that a user can act on.
public enum ReportError: ToolkitError, Equatable, LocalizedError {
    /// A figure or output file name is not a plain file name with the expected extension.
    case invalidFileName(String, reason: String)
    /// Two figures in one report would be written to the same file.
    case duplicateFileName(String)
    /// A file could not be written.
    case writeFailed(path: String, reason: String)

    /// A sentence that says what went wrong and what to do.
    public var errorDescription: String? {
        switch self {
        case .invalidFileName(let name, let reason):
            return "The file name \"\(name)\" cannot be used: \(reason)."
        case .duplicateFileName(let name):
            return "Two figures of the report are named \"\(name)\"; give each figure its own file name."
        case .writeFailed(let path, let reason):
            return "Could not write \(path): \(reason)."
        }
    }

    /// A bad name is an invalid argument; a failed write, an output that cannot be created.
    public var cause: ErrorCause {
        switch self {
        case .invalidFileName, .duplicateFileName: return .invalidArgument
        case .writeFailed: return .cannotCreate
        }
    }

    public var description: String { errorDescription ?? "the report could not be written" }
}
