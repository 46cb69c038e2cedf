import Foundation
import ImageFiles
import Tensors

/// The files of `--explain`: where the strips go and what they are called. The strips
/// themselves are `ImageFiles.ImageExplanation.strip(scale:)`, the pictures `dafar-serve`'s
/// `/v1/explain` answers too.
enum Explanation {
    /// File names `<stem>-<index>.png` where stem is the file's name with characters other than
    /// letters, digits, `.`, `_` and `-` replaced by `_`; when two inputs share a name, their
    /// stems start with their position on the command line (`2-digit.png-0.png`).
    static func stems(_ files: [String]) -> [String] {
        let names = files.map { file -> String in
            let base = URL(fileURLWithPath: file).lastPathComponent
            return String(
                base.unicodeScalars.map {
                    CharacterSet.alphanumerics.contains($0) && $0.isASCII || "._-".unicodeScalars.contains($0) ? Character($0) : "_"
                })
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
            FileManager.default.isWritableFile(atPath: parent)
        else {
            throw InspectError(
                "cannot create --explain folder \(folder): \(parent) does not exist or is not writable", cause: .cannotCreate)
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
