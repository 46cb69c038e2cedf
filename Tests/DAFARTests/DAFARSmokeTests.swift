import XCTest
@testable import DAFAR

final class DAFARSmokeTests: XCTestCase {
    func testModuleLoads() throws {
        XCTAssertTrue(true)
    }
}
