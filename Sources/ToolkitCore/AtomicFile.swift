import Foundation
#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A file that could not be written: which, why, and whether it could not be created or failed midway.
public struct FileWriteError: ToolkitError, Equatable {
    /// The file that was to be written.
    public let path: String
    /// What went wrong (`the folder '/x' does not exist`, `writing failed (No space left on device)`).
    public let reason: String
    /// `.cannotCreate` or `.ioFailure`.
    public let cause: ErrorCause

    public init(path: String, reason: String, cause: ErrorCause) {
        (self.path, self.reason, self.cause) = (path, reason, cause)
    }

    /// One sentence: the file, then the problem.
    public var description: String { "Cannot write '\(path)': \(reason)." }
}

/// Whole-file writes that readers never see half done.
///
/// The bytes go to a temporary file in the target's folder, are flushed to disk (`fsync`),
/// and the temporary file is renamed over the target, then the folder is flushed so the
/// rename itself survives a crash. A reader sees either the old file or the new one.
public enum AtomicFile {
    /// Replaces the file at `url` with `bytes`, atomically.
    ///
    /// On any failure the temporary file is removed and an existing target is left untouched.
    /// A replaced file keeps its permission bits; a new one gets 0666 less the umask.
    /// - Throws: `FileWriteError`, whose cause is `.cannotCreate` when the folder does not exist or
    ///   is not writable (or the target is a folder), `.ioFailure` when writing or flushing fails.
    public static func write(_ bytes: [UInt8], to url: URL) throws {
        try write(bytes, to: url, beforeRename: {})
    }

    /// `write(_:to:)` with a hook that runs after the data is flushed and before the rename;
    /// tests throw from it to check that a failure leaves no trace.
    static func write(_ bytes: [UInt8], to url: URL, beforeRename: () throws -> Void) throws {
        let target = url.standardizedFileURL
        let folder = target.deletingLastPathComponent()
        func failure(_ reason: String, _ code: Int32 = errno, cause: ErrorCause = .cannotCreate) -> FileWriteError {
            let detail = code == 0 ? "" : " (\(String(cString: strerror(code))))"
            return FileWriteError(path: target.path, reason: reason + detail, cause: cause)
        }

        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw failure("the folder '\(folder.path)' does not exist", 0)
        }
        if FileManager.default.fileExists(atPath: target.path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw failure("it is a folder", 0)
        }

        let temporary = folder.appendingPathComponent(
            ".\(target.lastPathComponent).tmp-\(getpid())-\(UInt64.random(in: 0...UInt64.max))")
        let descriptor = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
        guard descriptor >= 0 else {
            throw failure("cannot create a file in the folder '\(folder.path)'")
        }
        var isOpen = true
        var renamed = false
        defer {
            if isOpen { close(descriptor) }
            if !renamed { unlink(temporary.path) }
        }

        var existing = stat()
        if stat(target.path, &existing) == 0 {
            _ = fchmod(descriptor, existing.st_mode & 0o7777)
        }
        try bytes.withUnsafeBytes { buffer in
            var written = 0
            while written < buffer.count {
                let count = systemWrite(descriptor, buffer.baseAddress! + written, buffer.count - written)
                if count < 0 {
                    if errno == EINTR { continue }
                    throw failure("writing failed", cause: .ioFailure)
                }
                written += count
            }
        }
        guard fsync(descriptor) == 0 else { throw failure("flushing to disk failed", cause: .ioFailure) }
        isOpen = false
        guard close(descriptor) == 0 else { throw failure("closing the file failed", cause: .ioFailure) }

        try beforeRename()
        guard rename(temporary.path, target.path) == 0 else {
            throw failure("cannot replace the file")
        }
        renamed = true
        try syncFolder(folder, failure: failure)
    }

    /// Flushes the folder entry so the rename survives a crash; filesystems that cannot
    /// flush folders (EINVAL) are accepted.
    private static func syncFolder(
        _ folder: URL,
        failure: (String, Int32, ErrorCause) -> FileWriteError
    ) throws {
        let descriptor = open(folder.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        defer { close(descriptor) }
        if fsync(descriptor) != 0 && errno != EINVAL {
            throw failure("flushing the folder to disk failed", errno, .ioFailure)
        }
    }
}

/// The C `write(2)`, renamed so it cannot be confused with `AtomicFile.write`.
@inline(__always)
private func systemWrite(_ descriptor: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
        return Glibc.write(descriptor, buffer, count)
    #elseif canImport(Musl)
        return Musl.write(descriptor, buffer, count)
    #else
        return Darwin.write(descriptor, buffer, count)
    #endif
}
