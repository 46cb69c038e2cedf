import CZlib
import Foundation
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The whole content of a data file in one malloc'ed block, gunzipped when the
/// file starts with the gzip magic bytes `1f 8b` (the name does not matter).
///
/// Every failure is a `DatasetError`: missing file (66), a directory or an I/O
/// error (66), an empty file (65), a truncated or corrupt gzip stream (65).
final class FileBytes {
    /// The path the bytes came from, as shown in error messages.
    let path: String
    /// Number of (decompressed) bytes.
    let count: Int
    /// Whether the file was gzip-compressed.
    let wasCompressed: Bool
    private let base: UnsafeMutableRawPointer
    /// Whether `base` is a read-only file mapping (else it is malloc'ed).
    private let isMapped: Bool

    /// Decompressed output is refused past this many bytes (a zip bomb guard): 1 GiB, nine
    /// times the largest supported file (the full MNIST as CSV, 110 MB), a fraction of memory.
    static let defaultMaximumSize = 1 << 30

    private init(path: String, base: UnsafeMutableRawPointer, count: Int, wasCompressed: Bool, isMapped: Bool = false) {
        self.path = path
        self.base = base
        self.count = count
        self.wasCompressed = wasCompressed
        self.isMapped = isMapped
    }

    deinit {
        if isMapped { munmap(base, count) } else { free(base) }
    }

    /// Calls `body` with the bytes; the buffer is valid only inside `body`.
    func withUnsafeBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try body(UnsafeRawBufferPointer(start: base, count: count))
    }

    /// Reads `url`, gunzipping it when it starts with `1f 8b`.
    /// - Parameter missingHint: completes "<path> was not found; ..." when the file is absent.
    static func read(
        _ url: URL, missingHint: String = "check the path",
        maximumSize: Int = defaultMaximumSize
    ) throws -> FileBytes {
        let path = url.path
        let raw = try readRaw(path, missingHint: missingHint)
        let isGzip =
            raw.count >= 2 && raw.base.load(as: UInt8.self) == 0x1f
            && raw.base.load(fromByteOffset: 1, as: UInt8.self) == 0x8b
        guard isGzip else { return raw }
        let input = UnsafeRawBufferPointer(start: raw.base, count: raw.count)
        let (output, produced) = try gunzip(input, path: path, maximumSize: maximumSize)
        guard produced > 0 else {
            free(output)
            throw DatasetError.badContent(path, "is a gzip file that decompresses to nothing (the data is empty)")
        }
        return FileBytes(path: path, base: output, count: produced, wasCompressed: true)
    }

    /// The file's bytes as stored on disk.
    private static func readRaw(_ path: String, missingHint: String) throws -> FileBytes {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw DatasetError.missing(path, hint: missingHint)
        }
        if isDirectory.boolValue {
            throw DatasetError.unreadable(path, "it is a directory, but a file was expected")
        }
        // O_NONBLOCK: opening a FIFO with no writer must not wait forever.
        let descriptor = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else { throw DatasetError.unreadable(path, String(cString: strerror(errno))) }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            throw DatasetError.unreadable(path, String(cString: strerror(errno)))
        }
        // A pipe or device has no size to check and may never end (/dev/zero).
        guard status.st_mode & S_IFMT == S_IFREG else {
            throw DatasetError.unreadable(path, "it is not a regular file (a pipe, socket or device), but a data file was expected")
        }
        let size = Int(status.st_size)
        guard size > 0 else { throw DatasetError.badContent(path, "is empty") }
        // Map the file when possible: no copy, and the pages come from the page cache.
        if let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, descriptor, 0), mapped != MAP_FAILED {
            return FileBytes(path: path, base: mapped, count: size, wasCompressed: false, isMapped: true)
        }
        guard let base = malloc(size) else { throw DatasetError.unreadable(path, "out of memory for \(size) bytes") }
        var done = 0
        while done < size {
            let got = systemRead(descriptor, base + done, min(size - done, 1 << 30))
            if got < 0 && errno == EINTR { continue }
            guard got > 0 else {
                free(base)
                let reason = got < 0 ? String(cString: strerror(errno)) : "the file shrank while it was read"
                throw DatasetError.unreadable(path, reason)
            }
            done += got
        }
        return FileBytes(path: path, base: base, count: size, wasCompressed: false)
    }

    /// Inflates every gzip member of `input` into a new malloc'ed block.
    /// Returns the block (to be freed by the caller) and the number of bytes written.
    private static func gunzip(
        _ input: UnsafeRawBufferPointer, path: String,
        maximumSize: Int
    ) throws -> (UnsafeMutableRawPointer, Int) {
        guard input.count >= 18 else {
            throw DatasetError.badContent(path, "is a truncated gzip file: \(input.count) bytes cannot hold a gzip header and trailer")
        }
        // The trailer's ISIZE (uncompressed size mod 2^32) is a capacity hint only;
        // deflate cannot expand more than about 1032:1, which bounds the hint.
        let trailerSize = Int(input.loadUnaligned(fromByteOffset: input.count - 4, as: UInt32.self).littleEndian)
        var capacity = max(4096, min(trailerSize, input.count.multipliedReportingOverflow(by: 1032).partialValue, maximumSize))
        guard var output = malloc(capacity) else { throw DatasetError.unreadable(path, "out of memory for \(capacity) bytes") }
        var stream = z_stream()
        guard inflateInit2_(&stream, 16 + MAX_WBITS, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            free(output)
            throw DatasetError.unreadable(path, "zlib could not be initialised")
        }
        defer { inflateEnd(&stream) }
        let source = UnsafeMutablePointer(mutating: input.bindMemory(to: Bytef.self).baseAddress!)
        var consumed = 0, produced = 0
        do {
            while true {
                if produced == capacity {
                    guard capacity < maximumSize else {
                        throw DatasetError.badContent(
                            path, "decompresses to more than \(maximumSize) bytes, more than any supported data set")
                    }
                    capacity = min(capacity * 2, maximumSize)
                    guard let grown = realloc(output, capacity) else {
                        throw DatasetError.unreadable(path, "out of memory for \(capacity) bytes")
                    }
                    output = grown
                }
                let inChunk = min(input.count - consumed, Int(UInt32.max))
                let outChunk = min(capacity - produced, Int(UInt32.max))
                stream.next_in = source + consumed
                stream.avail_in = UInt32(inChunk)
                stream.next_out = output.assumingMemoryBound(to: Bytef.self) + produced
                stream.avail_out = UInt32(outChunk)
                let status = inflate(&stream, Z_NO_FLUSH)
                consumed += inChunk - Int(stream.avail_in)
                produced += outChunk - Int(stream.avail_out)
                let inputLeft = input.count - consumed
                switch status {
                case Z_STREAM_END:
                    if inputLeft == 0 { return (output, produced) }
                    let rest = UnsafeRawBufferPointer(rebasing: input[consumed...])
                    if rest.count >= 2 && rest[0] == 0x1f && rest[1] == 0x8b {
                        inflateReset(&stream)  // another gzip member follows (as `cat a.gz b.gz` makes)
                    } else if rest.allSatisfy({ $0 == 0 }) {
                        return (output, produced)  // zero padding after the stream, which gzip(1) ignores too
                    } else {
                        throw DatasetError.badContent(path, "has \(inputLeft) bytes of unexpected data after the end of its gzip stream")
                    }
                case Z_OK, Z_BUF_ERROR:
                    // No input left while inflate still wants more: the stream was cut short.
                    if inputLeft == 0 && (status == Z_BUF_ERROR || stream.avail_out > 0) {
                        throw DatasetError.badContent(
                            path,
                            "is a truncated gzip file: the compressed data ends before the gzip end marker and checksum (an incomplete download?)"
                        )
                    }
                case Z_DATA_ERROR:
                    let detail = stream.msg.map { String(cString: $0) } ?? "invalid data"
                    let problem =
                        detail.contains("data check") || detail.contains("length check")
                        ? "fails its gzip integrity check (\(detail))" : "is a corrupt gzip file (\(detail))"
                    throw DatasetError.badContent(path, problem + " after \(produced) decompressed bytes")
                case Z_MEM_ERROR:
                    throw DatasetError.unreadable(path, "zlib ran out of memory while decompressing")
                default:
                    throw DatasetError.badContent(path, "is a corrupt gzip file (zlib status \(status))")
                }
            }
        } catch {
            free(output)
            throw error
        }
    }
}

/// `read(2)`, named apart from `FileBytes.read`.
private func systemRead(_ descriptor: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
    read(descriptor, buffer, count)
}
