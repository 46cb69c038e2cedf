import Tensors
import XCTest
@testable import ImageFiles

/// The pictures and strips of `ImageExplanation` on hand-made tensors: layout, enlargement, the
/// white gaps and the shared residual scale.
final class ImageExplanationTests: XCTestCase {
    /// A `[1, 2, 3]` explanation whose residual spans -0.4...0.2 (m = 0.4).
    func example() -> ImageExplanation {
        ImageExplanation(
            input: Tensor(shape: [1, 2, 3], storage: [0, 0.1, 0.2, 0.3, 0.4, 0.5]),
            reconstruction: Tensor(shape: [1, 2, 3], storage: [1, 0.9, 0.8, 0.7, 0.6, 0.5]),
            residual: Tensor(shape: [1, 2, 3], storage: [-0.4, 0.2, 0, 0.1, -0.2, 0]),
            detectorReconstruction: Tensor(shape: [1, 2, 3], storage: [-0.8, 0.4, 0, 0, 0, 0.1]))
    }

    func testPicturesShowBothResidualsOnTheScaleOfTheLargestResidual() {
        let explanation = example()
        XCTAssertEqual(explanation.residualMaximum, 0.4, accuracy: 1e-7)
        let pictures = explanation.pictures
        XCTAssertEqual(pictures.count, ImageExplanation.pictureNames.count)
        XCTAssertEqual(pictures[0], explanation.input)
        XCTAssertEqual(pictures[1], explanation.reconstruction)
        // 0.5 + 0.5 * r / 0.4: -0.4 -> 0 (black), 0 -> 0.5 (mid grey), 0.2 -> 0.75.
        let expectedResidual: [Float] = [0, 0.75, 0.5, 0.625, 0.25, 0.5]
        for (got, want) in zip(pictures[2].storage, expectedResidual) { XCTAssertEqual(got, want, accuracy: 1e-6, "residual picture") }
        // C's output on the residual's scale, clamped: -0.8 -> 0 (not -0.5), 0.4 -> 1.
        let expectedDetector: [Float] = [0, 1, 0.5, 0.5, 0.5, 0.625]
        for (got, want) in zip(pictures[3].storage, expectedDetector) { XCTAssertEqual(got, want, accuracy: 1e-6, "C's picture") }

        let zero = ImageExplanation(
            input: explanation.input, reconstruction: explanation.input,
            residual: Tensor(shape: [1, 2, 3], repeating: 0), detectorReconstruction: explanation.residual)
        XCTAssertEqual(zero.pictures[2].storage, [Float](repeating: 0.5, count: 6), "no residual: all mid grey")
        XCTAssertEqual(zero.pictures[3].storage, [Float](repeating: 0.5, count: 6))
    }

    func testStripPlacesTheFourEnlargedPicturesWithWhiteGaps() {
        let explanation = example()
        let scale = 2, gap = ImageExplanation.gap
        let strip = explanation.strip(scale: scale)
        let (height, panelWidth) = (2 * scale, 3 * scale)
        let width = 4 * panelWidth + 3 * gap
        XCTAssertEqual(strip.shape, [1, height, width])
        let pictures = explanation.pictures
        for y in 0..<height {
            for x in 0..<width {
                let (panel, column) = (x / (panelWidth + gap), x % (panelWidth + gap))
                let value = strip.storage[y * width + x]
                if column >= panelWidth {
                    XCTAssertEqual(value, 1, "gap at (\(x), \(y)) is white")
                } else {
                    XCTAssertEqual(value, pictures[panel].storage[(y / scale) * 3 + column / scale], "panel \(panel) at (\(x), \(y))")
                }
            }
        }
        XCTAssertEqual(explanation.strip(scale: 1).shape, [1, 2, 4 * 3 + 3 * gap])
    }

    func testColourPicturesKeepTheirChannels() {
        let values = (0..<12).map { Float($0) / 12 }
        let rgb = Tensor(shape: [3, 2, 2], storage: values)
        let explanation = ImageExplanation(input: rgb, reconstruction: rgb, residual: rgb, detectorReconstruction: rgb)
        let strip = explanation.strip(scale: 1)
        XCTAssertEqual(strip.shape, [3, 2, 4 * 2 + 3 * ImageExplanation.gap])
        let width = strip.shape[2]
        for channel in 0..<3 {  // the input panel: the top-left pixel of each channel
            XCTAssertEqual(strip.storage[channel * 2 * width], values[channel * 4])
        }
        XCTAssertEqual(PixelImage(tensor: strip).channels, 3)
    }
}
