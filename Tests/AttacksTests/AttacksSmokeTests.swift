import XCTest
@testable import Attacks

final class AttacksSmokeTests: XCTestCase {
    func testModuleLoads() throws {
        XCTAssertTrue(true)
    }
}
