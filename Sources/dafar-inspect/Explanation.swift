import Foundation
import ImageFiles
import Tensors

/// The PNG strips of `--explain`: four panels side by side, each `scale` times enlarged
/// (nearest neighbour), with a white gap of `gap` pixels between panels.
///
///     [ x | D(E(x)) | residual x - D(E(x)) | C's reconstruction of the residual ]
///
/// The two residual panels share one scale so that they can be compared: with
/// `m = max |x - D(E(x))|` over the image, a value `r` is shown as `0.5 + 0.5 * r / m`, so mid
/// grey is 0, white is +m and black is -m (all mid grey when m = 0). Where the detector sees
/// an anomaly, the residual panel has structure that C's panel does not reproduce.
enum Explanation {
    /// Enlarged pixels between panels.
    static let gap = 2

    /// The strip for one image; every argument is `[C, H, W]` (C's output reshaped).
    /// Returns `[C, scale * H, 4 * scale * W + 3 * gap]` with values in [0, 1].
    static func strip(input: Tensor, reconstruction: Tensor, residual: Tensor, detectorReconstruction: Tensor, scale: Int) -> Tensor {
        let (c, h, w) = (input.shape[0], input.shape[1], input.shape[2])
        let m = residual.storage.reduce(Float(0)) { max($0, abs($1)) }
        func shown(_ r: Float) -> Float { m > 0 ? min(1, max(0, 0.5 + 0.5 * r / m)) : 0.5 }
        let panels = [input, reconstruction, residual.map(shown), detectorReconstruction.map(shown)]
        let (height, panelWidth) = (scale * h, scale * w)
        let width = 4 * panelWidth + 3 * gap
        var strip = Tensor(shape: [c, height, width], repeating: 1)
        strip.withUnsafeMutableBufferPointer { out in  // out: [C, height, width]
            for (p, panel) in panels.enumerated() {
                let left = p * (panelWidth + gap)
                for channel in 0..<c {
                    for y in 0..<height {
                        for x in 0..<panelWidth {
                            out[(channel * height + y) * width + left + x] = panel.storage[(channel * h + y / scale) * w + x / scale]
                        }
                    }
                }
            }
        }
        return strip
    }

    /// File names `<stem>-<index>.png` where stem is the file's name with characters other than
    /// letters, digits, `.`, `_` and `-` replaced by `_`; when two inputs share a name, their
    /// stems start with their position on the command line (`2-digit.png-0.png`).
    static func stems(_ files: [String]) -> [String] {
        let names = files.map { file -> String in
            let base = URL(fileURLWithPath: file).lastPathComponent
            return String(base.unicodeScalars.map { CharacterSet.alphanumerics.contains($0) && $0.isASCII || "._-".unicodeScalars.contains($0) ? Character($0) : "_" })
        }
        let counts = Dictionary(names.map { ($0, 1) }, uniquingKeysWith: +)
        return names.enumerated().map { counts[$0.element]! > 1 ? "\($0.offset + 1)-\($0.element)" : $0.element }
    }

    /// Checks before any work that `folder` is, or can be made, a writable folder.
    static func checkFolder(_ folder: String) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw InspectError("--explain \(folder) is a file, not a folder", cause: .cannotCreate) }
            guard FileManager.default.isWritableFile(atPath: folder) else {
                throw InspectError("--explain folder \(folder) is not writable", cause: .cannotCreate)
            }
            return
        }
        let parent = URL(fileURLWithPath: folder).deletingLastPathComponent().path
        guard FileManager.default.fileExists(atPath: parent, isDirectory: &isDirectory), isDirectory.boolValue,
              FileManager.default.isWritableFile(atPath: parent) else {
            throw InspectError("cannot create --explain folder \(folder): \(parent) does not exist or is not writable", cause: .cannotCreate)
        }
    }

    /// Creates `folder` when it does not exist yet (one level).
    static func makeFolder(_ folder: String) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue { return }
        do { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false) } catch {
            throw InspectError("cannot create --explain folder \(folder) (\(error.localizedDescription))", cause: .cannotCreate)
        }
    }
}
