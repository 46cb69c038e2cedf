import XCTest
@testable import Evaluation

final class EvaluationSmokeTests: XCTestCase {
    func testModuleLoads() throws {
        XCTAssertTrue(true)
    }
}
