import Foundation
import _ConvKernels

/// The packed weights (`conv3x3_pack`) of the convolutions that ran on one image split across threads
/// (batch-1 inference), kept between calls so that each call reads them instead of packing them again.
///
/// Packing a 64 x 64 layer writes 150 KB: about as long as that layer's share of a batch-1 inference on
/// one thread, and, when one thread packs for all, every line the others read is one they must fetch from
/// its cache (a 400 ns round trip each on a host that places the two cores on different dies). Packed once
/// and only read after, the lines stay in every core's cache.
///
/// An entry holds on to the weight tensor it was packed from, which is how it stays right: a tensor's
/// storage is copy-on-write, so a weight that an optimizer updates while an entry holds it is written to a
/// new buffer, and an entry matches a weight only when the two share one buffer (the entry's reference
/// keeps that buffer's address from being reused). It also means that a model trained one image at a time
/// copies its convolution weights on each update; the batch kernels (training) never use the cache.
/// At most `capacity` entries, the least recently used dropped first.
enum PackedWeightCache {
    /// One weight tensor packed for the direct kernels.
    final class Entry: @unchecked Sendable {
        /// The tensor the weights were packed from (held: see the type's comment).
        let source: Tensor
        /// Whether it was packed rotated (`[C, O, 3, 3]` read as `[O, C]` turned by 180 degrees).
        let rotated: Bool
        /// `[blocks, C, 9, 16]`, `conv3x3_packed_count(O, C)` floats.
        let packed: UnsafeMutablePointer<Float>

        init(source: Tensor, rotated: Bool, outputChannels: Int, channels: Int) {
            self.source = source
            self.rotated = rotated
            let (o, c) = (Int32(outputChannels), Int32(channels))
            packed = .allocate(capacity: conv3x3_packed_count(o, c))
            source.withUnsafeBufferPointer { conv3x3_pack(packed, $0.baseAddress!, o, c, rotated ? 1 : 0) }
        }

        deinit { packed.deallocate() }

        /// Whether this entry holds `weight`'s own buffer packed the same way.
        func matches(_ weight: Tensor, rotated: Bool) -> Bool {
            self.rotated == rotated && source.shape == weight.shape
                && source.withUnsafeBufferPointer({ $0.baseAddress }) == weight.withUnsafeBufferPointer({ $0.baseAddress })
        }
    }

    /// Entries kept: the convolutions of a few networks.
    static let capacity = 16

    nonisolated(unsafe) private static var entries: [Entry] = []
    private static let lock = NSLock()

    /// `weight` packed for `outputChannels` outputs and `channels` inputs (rotated or not): the cached entry
    /// when one holds `weight`'s buffer, else a new one. Keep the entry while its `packed` is read.
    static func entry(for weight: Tensor, rotated: Bool, outputChannels: Int, channels: Int) -> Entry {
        lock.lock()
        defer { lock.unlock() }
        if let index = entries.firstIndex(where: { $0.matches(weight, rotated: rotated) }) {
            let entry = entries.remove(at: index)
            entries.insert(entry, at: 0)
            return entry
        }
        let entry = Entry(source: weight, rotated: rotated, outputChannels: outputChannels, channels: channels)
        entries.insert(entry, at: 0)
        if entries.count > capacity { entries.removeLast() }
        return entry
    }
}
