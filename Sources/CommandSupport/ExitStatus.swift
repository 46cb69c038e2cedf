import Tensors
import ToolkitCore

/// Exit statuses of the command-line tools, from sysexits(3).
public enum ExitStatus {
    public static let usage: Int32 = 64
    public static let dataError: Int32 = 65
    public static let noInput: Int32 = 66
    public static let software: Int32 = 70
    public static let cannotCreate: Int32 = 73
    public static let ioError: Int32 = 74
}

extension ErrorCause {
    /// The sysexits status a tool exits with when an error of this cause ends it.
    public var exitStatus: Int32 {
        switch self {
        case .invalidArgument: return ExitStatus.usage
        case .invalidData: return ExitStatus.dataError
        case .missingInput: return ExitStatus.noInput
        case .cannotCreate: return ExitStatus.cannotCreate
        case .ioFailure: return ExitStatus.ioError
        case .internalFailure: return ExitStatus.software
        }
    }
}
