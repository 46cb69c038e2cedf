/// An error a user caused (bad file, bad option) that the command-line tools turn
/// into one line on standard error and an exit status following sysexits(3).
public protocol UserFacingError: Error, CustomStringConvertible {
    /// The sysexits status: 64 usage, 65 data, 66 no input, 73 can't create, 74 I/O.
    var exitCode: Int32 { get }
}

/// Exit statuses from sysexits(3).
public enum ExitStatus {
    public static let usage: Int32 = 64
    public static let dataError: Int32 = 65
    public static let noInput: Int32 = 66
    public static let software: Int32 = 70
    public static let cannotCreate: Int32 = 73
    public static let ioError: Int32 = 74
}
