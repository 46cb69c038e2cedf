import CZlib

/// gzip compression through zlib, the counterpart of the gunzip that reads `.gz` data files:
/// for writing compressed IDX files, test fixtures and fuzz seeds.
public enum Gzip {
    /// `bytes` as one gzip member (zlib deflate at the default level).
    public static func compress(_ bytes: [UInt8]) -> [UInt8] {
        var stream = z_stream()
        let initialized = deflateInit2_(
            &stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY,
            zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        precondition(initialized == Z_OK, "zlib's deflateInit2 failed (\(initialized))")
        defer { deflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, uLong(bytes.count))) + 64)
        var input = bytes
        let status = input.withUnsafeMutableBufferPointer { source in
            output.withUnsafeMutableBufferPointer { destination in
                stream.next_in = source.baseAddress
                stream.avail_in = uInt(source.count)
                stream.next_out = destination.baseAddress
                stream.avail_out = uInt(destination.count)
                return deflate(&stream, Z_FINISH)
            }
        }
        // the output buffer holds deflateBound bytes, so one Z_FINISH always completes the stream
        precondition(status == Z_STREAM_END, "zlib's deflate did not finish (\(status))")
        return Array(output.prefix(Int(stream.total_out)))
    }
}
