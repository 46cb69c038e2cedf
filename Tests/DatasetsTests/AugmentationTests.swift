import Datasets
import Tensors
import XCTest

final class AugmentationTests: XCTestCase {
    /// The value of pixel (y, x) of the test image.
    static func value(_ y: Int, _ x: Int) -> Float { Float(1 + 10 * y + x) }

    /// A [1, 1, 4, 5] image whose pixel (y, x) holds 1 + 10 y + x.
    func ramp() -> Tensor {
        let pixels: [Float] = (0..<20).map { (p: Int) -> Float in Self.value(p / 5, p % 5) }
        return Tensor(shape: [1, 1, 4, 5], storage: pixels)
    }

    func testNoneAndZeroShiftReturnTheInput() {
        var g = SeededGenerator(seed: 1)
        XCTAssertEqual(Augmentation.none.apply(to: ramp(), using: &g).storage, ramp().storage)
        XCTAssertTrue(Augmentation(maxShift: 0).isIdentity)
        XCTAssertEqual(Augmentation.none.summary, "none")
        XCTAssertEqual(Augmentation(maxShift: 2, horizontalFlip: true).summary, "shift 2, flip")
    }

    func testEachImageIsATranslationWithZeroFill() {
        var g = SeededGenerator(seed: 5)
        let images = Tensor.concatenate(Array(repeating: ramp(), count: 50))
        let out = Augmentation(maxShift: 1).apply(to: images, using: &g)
        var seenShifts = Set<[Int]>()
        for i in 0..<50 {
            let image = Array(out.storage[(i * 20)..<((i + 1) * 20)])
            // Recover (dy, dx) from a surviving pixel and check every pixel against it.
            var match: [Int]? = nil
            for dy in -1...1 {
                for dx in -1...1 {
                    let predicted = (0..<20).map { p -> Float in
                        let (y, x) = (p / 5 - dy, p % 5 - dx)
                        return (0..<4).contains(y) && (0..<5).contains(x) ? Self.value(y, x) : 0
                    }
                    if predicted == image { match = [dy, dx] }
                }
            }
            XCTAssertNotNil(match, "image \(i) is not a shift by at most 1 pixel: \(image)")
            if let match { seenShifts.insert(match) }
        }
        XCTAssertEqual(seenShifts.count, 9, "50 draws should cover all 9 shifts of at most 1 pixel")
    }

    func testFlipMirrorsColumnsAndTheSeedFixesTheDraws() {
        let images = Tensor.concatenate(Array(repeating: ramp(), count: 40))
        var g1 = SeededGenerator(seed: 9), g2 = SeededGenerator(seed: 9)
        let flip = Augmentation(maxShift: 0, horizontalFlip: true)
        let a = flip.apply(to: images, using: &g1), b = flip.apply(to: images, using: &g2)
        XCTAssertEqual(a.storage, b.storage, "same seed, same draws")
        let mirrored: [Float] = (0..<20).map { (p: Int) -> Float in Self.value(p / 5, 4 - p % 5) }
        var flipped = 0
        for i in 0..<40 {
            let image = Array(a.storage[(i * 20)..<((i + 1) * 20)])
            XCTAssertTrue(image == ramp().storage || image == mirrored, "image \(i) is neither the input nor its mirror")
            if image == mirrored { flipped += 1 }
        }
        XCTAssertTrue((8...32).contains(flipped), "about half should flip, got \(flipped) of 40")
    }

    func testDefaultsFlipOnlyColourImages() {
        XCTAssertEqual(Augmentation.defaults(forImageShape: [1, 28, 28]), Augmentation(maxShift: 2))
        XCTAssertEqual(Augmentation.defaults(forImageShape: [3, 32, 32]), Augmentation(maxShift: 2, horizontalFlip: true))
    }
}
