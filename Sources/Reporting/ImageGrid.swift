import Foundation

/// One picture of an `ImageGrid`: `channels x height x width` values in [0, 1] (channel-major, as
/// an NCHW tensor stores one image), or a signed map shown around mid-grey when `signed`.
public struct GridImage: Sendable {
    /// Channels (1 grey, 3 RGB).
    public let channels: Int
    /// Rows of pixels.
    public let height: Int
    /// Columns of pixels.
    public let width: Int
    /// `[channels, height, width]` values.
    public let pixels: [Float]
    /// Values in [-1, 1] drawn as 0.5 + value / 2 (a perturbation), instead of [0, 1].
    public let signed: Bool

    /// An image; `pixels.count` must be `channels * height * width`.
    public init(channels: Int, height: Int, width: Int, pixels: [Float], signed: Bool = false) {
        precondition(channels == 1 || channels == 3, "an image grid shows 1- or 3-channel images, got \(channels)")
        precondition(
            pixels.count == channels * height * width,
            "an image of \(channels)x\(height)x\(width) needs \(channels * height * width) values, got \(pixels.count)")
        (self.channels, self.height, self.width, self.pixels, self.signed) = (channels, height, width, pixels, signed)
    }

    /// `#rrggbb` of pixel (y, x), values clamped to [0, 1] (NaN drawn black).
    func color(y: Int, x: Int) -> String {
        let plane = height * width
        func byte(_ c: Int) -> Int {
            var v = pixels[c * plane + y * width + x]
            if signed { v = 0.5 + v / 2 }
            return v.isNaN ? 0 : Int((min(1, max(0, v)) * 255).rounded())
        }
        let (r, g, b) = channels == 1 ? (byte(0), byte(0), byte(0)) : (byte(0), byte(1), byte(2))
        return String(format: "#%02x%02x%02x", r, g, b)
    }
}

/// Rows of small images with a caption per row and a heading per column, as an SVG document in
/// which every pixel is a square (no raster encoder needed; fine for a few dozen 28 x 28 images).
public struct ImageGrid: SVGChart {
    public let title: String
    /// Column headings (`clean`, `adversarial`, `D(E(x'))`).
    public let columns: [String]
    /// Rows: a caption and one image per column.
    public let rows: [(caption: String, images: [GridImage])]
    /// Screen size of one pixel.
    public let pixelSize: Double

    /// A grid; every row has one image per column.
    public init(title: String, columns: [String], rows: [(caption: String, images: [GridImage])], pixelSize: Double = 3) {
        precondition(rows.allSatisfy { $0.images.count == columns.count }, "every row of an image grid needs \(columns.count) images")
        (self.title, self.columns, self.rows, self.pixelSize) = (title, columns, rows, pixelSize)
    }

    public func svg() -> String {
        let cell = Double(rows.flatMap(\.images).map { max($0.width, $0.height) }.max() ?? 28) * pixelSize
        let gap = 10.0, captionWidth = 260.0, top = 56.0
        let width = captionWidth + Double(columns.count) * (cell + gap) + gap
        let height = top + Double(rows.count) * (cell + gap) + gap
        var canvas = SVGCanvas(width: width, height: height)
        canvas.text(title, x: width / 2, y: 22, size: 15)
        for (c, heading) in columns.enumerated() {
            canvas.text(heading, x: captionWidth + Double(c) * (cell + gap) + cell / 2, y: top - 10, size: 12)
        }
        for (r, row) in rows.enumerated() {
            let y0 = top + Double(r) * (cell + gap)
            canvas.text(row.caption, x: captionWidth - 8, y: y0 + cell / 2 + 4, anchor: "end", size: 11)
            for (c, image) in row.images.enumerated() {
                let x0 = captionWidth + Double(c) * (cell + gap)
                // the most common colour (black background, grey zero perturbation) as one rectangle
                let colors = (0..<image.height).map { y in (0..<image.width).map { x in image.color(y: y, x: x) } }
                let counts = colors.joined().reduce(into: [String: Int]()) { $0[$1, default: 0] += 1 }
                let background = counts.max { $0.value < $1.value || ($0.value == $1.value && $0.key > $1.key) }?.key ?? "#000000"
                canvas.rect(x0, y0, Double(image.width) * pixelSize, Double(image.height) * pixelSize, fill: background)
                for y in 0..<image.height {
                    for x in 0..<image.width where colors[y][x] != background {
                        canvas.rect(x0 + Double(x) * pixelSize, y0 + Double(y) * pixelSize, pixelSize, pixelSize, fill: colors[y][x])
                    }
                }
                canvas.rect(x0, y0, Double(image.width) * pixelSize, Double(image.height) * pixelSize, fill: "none", stroke: "#888888")
            }
        }
        return canvas.document(title: title)
    }
}
