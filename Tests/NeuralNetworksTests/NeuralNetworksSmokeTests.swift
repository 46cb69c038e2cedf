import XCTest
@testable import NeuralNetworks

final class NeuralNetworksSmokeTests: XCTestCase {
    func testModuleLoads() throws {
        XCTAssertTrue(true)
    }
}
