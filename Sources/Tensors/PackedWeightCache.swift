import Foundation
import _ConvKernels

/// The packed weights of the convolutions, kept between calls so that each call reads them instead of
/// packing them again: `conv3x3_pack`'s for one image split across threads (batch-1 inference), and the
/// Winograd transform (`conv3x3_winograd_pack`) for every batch.
///
/// Packing a 64 x 64 layer writes 150 KB: about as long as that layer's share of a batch-1 inference on
/// one thread, and, when one thread packs for all, every line the others read is one they must fetch from
/// its cache (a 400 ns round trip each on a host that places the two cores on different dies). Packed once
/// and only read after, the lines stay in every core's cache. Transforming one for Winograd takes about as
/// long as convolving a few images, which an attack's slices of 16 images would repeat on every step.
///
/// An entry holds on to the weight tensor it was packed from, which is how it stays right: a tensor's
/// storage is copy-on-write, so a weight that an optimizer updates while an entry holds it is written to a
/// new buffer, and an entry matches a weight only when the two share one buffer (the entry's reference
/// keeps that buffer's address from being reused). It also means that a training step copies each
/// convolution weight it updates (150 KB for a 64 x 64 layer, against tens of milliseconds for the step).
/// At most `capacity` entries, the least recently used replaced first.
enum PackedWeightCache {
    /// How a weight is packed: for the direct kernel (`conv3x3_pack`) or transformed for Winograd's
    /// F(2x2, 3x3) (`conv3x3_winograd_pack`) or F(4x4, 3x3) (`conv3x3_winograd4_pack`).
    enum Layout: Sendable {
        case direct, winograd, winograd4

        /// Floats of a packed weight for `outputChannels` outputs and `channels` inputs.
        func packedCount(outputChannels: Int32, channels: Int32) -> Int {
            switch self {
            case .direct: conv3x3_packed_count(outputChannels, channels)
            case .winograd: conv3x3_winograd_packed_count(outputChannels, channels)
            case .winograd4: conv3x3_winograd4_packed_count(outputChannels, channels)
            }
        }

        /// Packs `weight` (`[O, C, 3, 3]`, or `[C, O, 3, 3]` read rotated) into `packed`.
        func pack(
            _ packed: UnsafeMutablePointer<Float>, _ weight: UnsafePointer<Float>, outputChannels: Int32, channels: Int32, rotated: Bool
        ) {
            switch self {
            case .direct: conv3x3_pack(packed, weight, outputChannels, channels, rotated ? 1 : 0)
            case .winograd: conv3x3_winograd_pack(packed, weight, outputChannels, channels, rotated ? 1 : 0)
            case .winograd4: conv3x3_winograd4_pack(packed, weight, outputChannels, channels, rotated ? 1 : 0)
            }
        }
    }

    /// One weight tensor packed for the direct kernels.
    final class Entry: @unchecked Sendable {
        /// The tensor the weights were packed from (held: see the type's comment).
        let source: Tensor
        /// Whether it was packed rotated (`[C, O, 3, 3]` read as `[O, C]` turned by 180 degrees).
        let rotated: Bool
        /// For which kernel.
        let layout: Layout
        /// `layout.packedCount(O, C)` floats.
        let packed: UnsafeMutablePointer<Float>
        /// The base address of `source`'s buffer, compared first.
        let address: UnsafePointer<Float>?
        /// When the entry was last asked for (`PackedWeightCache.clock`), for dropping the least recently used.
        var lastUse: UInt64 = 0

        init(source: Tensor, rotated: Bool, layout: Layout, outputChannels: Int, channels: Int) {
            self.source = source
            self.rotated = rotated
            self.layout = layout
            let (o, c) = (Int32(outputChannels), Int32(channels))
            packed = .allocate(capacity: layout.packedCount(outputChannels: o, channels: c))
            address = source.withUnsafeBufferPointer { $0.baseAddress }
            source.withUnsafeBufferPointer { layout.pack(packed, $0.baseAddress!, outputChannels: o, channels: c, rotated: rotated) }
        }

        deinit { packed.deallocate() }

        /// Whether this entry holds the buffer at `address` (a weight's own) with `weight`'s shape, packed the same way.
        func matches(_ weight: Tensor, address: UnsafePointer<Float>?, rotated: Bool, layout: Layout) -> Bool {
            self.address == address && self.rotated == rotated && self.layout == layout && source.shape == weight.shape
        }
    }

    /// Entries kept: the convolutions of a few networks.
    static let capacity = 16

    nonisolated(unsafe) private static var entries: [Entry] = []
    /// Counts the lookups (the entries' `lastUse`).
    nonisolated(unsafe) private static var clock: UInt64 = 0
    private static let lock = NSLock()

    /// `weight` packed (`layout`) for `outputChannels` outputs and `channels` inputs (rotated or not): the cached entry
    /// when one holds `weight`'s buffer, else a new one. Keep the entry while its `packed` is read.
    static func entry(for weight: Tensor, rotated: Bool, layout: Layout, outputChannels: Int, channels: Int) -> Entry {
        let address = weight.withUnsafeBufferPointer { $0.baseAddress }
        lock.lock()
        defer { lock.unlock() }
        clock += 1
        // found in place and stamped (a network's convolutions take turns: moving the found entry to the front
        // shifted the list at every call)
        if let entry = entries.first(where: { $0.matches(weight, address: address, rotated: rotated, layout: layout) }) {
            entry.lastUse = clock
            return entry
        }
        let entry = Entry(source: weight, rotated: rotated, layout: layout, outputChannels: outputChannels, channels: channels)
        entry.lastUse = clock
        if entries.count < capacity {
            entries.append(entry)
        } else if let oldest = entries.indices.min(by: { entries[$0].lastUse < entries[$1].lastUse }) {
            entries[oldest] = entry
        }
        return entry
    }
}
