import XCTest
@testable import Tensors

final class TensorTests: XCTestCase {
    func testReshapeKeepsElements() {
        let t = Tensor(shape: [2, 3], storage: [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(t.reshaped([3, 2]).storage, t.storage)
        XCTAssertEqual(t.reshaped([3, 2]).shape, [3, 2])
    }

    func testMatmulMatchesHandComputation() {
        let a = Tensor(shape: [2, 2], storage: [1, 2, 3, 4])
        let b = Tensor(shape: [2, 2], storage: [5, 6, 7, 8])
        XCTAssertEqual(a.matmul(b).storage, [19, 22, 43, 50])
        XCTAssertEqual(a.matmul(b, transposeOther: true).storage, [17, 23, 39, 53])
    }
}
