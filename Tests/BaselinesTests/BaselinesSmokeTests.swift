import XCTest
@testable import Baselines

final class BaselinesSmokeTests: XCTestCase {
    func testModuleLoads() throws {
        XCTAssertTrue(true)
    }
}
