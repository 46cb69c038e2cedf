import XCTest
@testable import Autodiff

final class AutodiffSmokeTests: XCTestCase {
    func testModuleLoads() throws {
        XCTAssertTrue(true)
    }
}
