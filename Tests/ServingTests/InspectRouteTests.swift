import DAFAR
import Foundation
import Hummingbird
import HummingbirdTesting
import ImageFiles
import Serving
import Tensors
import XCTest

private let png: HTTPFields = [.contentType: "image/png"]
private let json: HTTPFields = [.contentType: "application/json"]

/// `POST /v1/inspect`, `/healthz` and `/metrics` in process (HummingbirdTesting's router and live
/// modes): verdicts equal the library's, and every refusal has its status and message.
final class InspectRouteTests: XCTestCase {

    func testPNGAndJSONBodiesGiveTheLibrarysVerdicts() async throws {
        let reference = ServingFixture.makeModel()
        let images = ServingFixture.noise(6, seed: 21)
        let service = ServingFixture.service()
        try await service.application.test(.router) { client in
            for i in 0..<3 {
                let response = try await client.execute(
                    uri: "/v1/inspect", method: .post, headers: png,
                    body: ByteBuffer(bytes: try ServingFixture.png(images, i)))
                try ServingFixture.assertVerdicts(response, ImageVerdict.inspect(reference, images.slice(i..<(i + 1))), "PNG \(i)")
            }
            let body = ServingFixture.json(images)
            let decoded = try PixelJSON.images(body, imageShape: [1, 28, 28])
            XCTAssertEqual(decoded.shape, [6, 1, 28, 28])
            let several = try await client.execute(uri: "/v1/inspect", method: .post, headers: json, body: ByteBuffer(bytes: body))
            try ServingFixture.assertVerdicts(several, ImageVerdict.inspect(reference, decoded), "JSON images")

            let one = ServingFixture.json(images.slice(4..<5), single: true)
            let single = try await client.execute(
                uri: "/v1/inspect", method: .post,
                headers: [.contentType: "application/json; charset=utf-8"], body: ByteBuffer(bytes: one))
            try ServingFixture.assertVerdicts(
                single, ImageVerdict.inspect(reference, try PixelJSON.images(one, imageShape: [1, 28, 28])),
                "JSON pixels")
        }
        let flagged = ImageVerdict.inspect(reference, images).filter(\.adversarial).count
        XCTAssert(
            (1...5).contains(flagged), "the fixture flags some noise images and not all (\(flagged) of 6): the verdicts are not all alike")
    }

    func testRefusalsHaveTheirStatusAndAJSONMessage() async throws {
        let service = ServingFixture.service(.init(port: 0, maxBodyBytes: 4096))
        let images = ServingFixture.noise(1, seed: 22)
        let good = try ServingFixture.png(images, 0)
        let narrow = try ServingFixture.png(ServingFixture.noise(1, seed: 23, width: 27), 0)
        try await service.application.test(.router) { client in
            func expect(
                _ status: HTTPResponse.Status, _ headers: HTTPFields, _ body: [UInt8], _ fragments: [String],
                line: UInt = #line
            ) async throws {
                let response = try await client.execute(uri: "/v1/inspect", method: .post, headers: headers, body: ByteBuffer(bytes: body))
                XCTAssertEqual(response.status, status, ServingFixture.text(response), line: line)
                let message = try XCTUnwrap(try ServingFixture.object(response)["error"] as? String, line: line)
                for fragment in fragments { XCTAssert(message.contains(fragment), "'\(message)' names '\(fragment)'", line: line) }
            }
            try await expect(.unsupportedMediaType, [.contentType: "text/plain"], good, ["image/png", "application/json", "text/plain"])
            try await expect(.unsupportedMediaType, [:], good, ["got none"])
            try await expect(.contentTooLarge, png, [UInt8](repeating: 7, count: 5000), ["4096 bytes"])
            try await expect(.badRequest, png, Array(good.prefix(good.count / 2)), ["PNG"])
            try await expect(.badRequest, png, Array("not a png".utf8), ["PNG"])
            try await expect(.badRequest, png, narrow, ["[1, 28, 27]", "[1, 28, 28]"])
            let rows = (0..<28).map { y in "[" + (0..<28).map { x in y == 3 && x == 5 ? "1.5" : "0.5" }.joined(separator: ",") + "]" }
            try await expect(
                .badRequest, json, Array("{\"pixels\": [\(rows.joined(separator: ","))]}".utf8), ["1.5", "[0, 0, 3, 5]", "[0, 1]"])
            try await expect(.badRequest, json, Array("{\"pixels\": [[0.5, NaN]]}".utf8), ["expected a number", "byte 18"])
            try await expect(.badRequest, json, Array("{\"pixels\": [[0.5], [0.5, 0.5]]}".utf8), ["ragged"])
            try await expect(.badRequest, json, Array("{\"image\": []}".utf8), ["\"image\""])
            try await expect(
                .badRequest, json, ServingFixture.json(ServingFixture.noise(1, seed: 24, height: 3, width: 3)),
                ["[1, 3, 3]", "[1, 28, 28]"])
        }
    }

    func testAFullQueueAnswers503WithRetryAfterAndALateVerdict504() async throws {
        // The first request waits up to 2 s for a batch partner (combined batches wait): the queue of one image is full meanwhile.
        let full = ServingFixture.service(
            .init(port: 0, batching: .init(maxBatch: 256, maxWait: .seconds(2), queueLimit: 1, mode: .combined)))
        let body = ByteBuffer(bytes: try ServingFixture.png(ServingFixture.noise(1, seed: 25), 0))
        let headers = png
        try await full.application.test(.router) { client in
            async let first = client.execute(uri: "/v1/inspect", method: .post, headers: headers, body: body)
            try await Task.sleep(for: .milliseconds(300))
            let second = try await client.execute(uri: "/v1/inspect", method: .post, headers: headers, body: body)
            XCTAssertEqual(second.status, .serviceUnavailable, ServingFixture.text(second))
            XCTAssertEqual(second.headers[.retryAfter], "1")
            XCTAssert(((try ServingFixture.object(second)["error"] as? String) ?? "").contains("queue is full"))
            let answered = try await first
            XCTAssertEqual(answered.status, .ok, "the queued request is still answered")
        }
        // A timeout shorter than the batch wait: 504.
        let slow = ServingFixture.service(
            .init(port: 0, batching: .init(maxBatch: 256, maxWait: .seconds(1), timeout: .milliseconds(100), mode: .combined)))
        try await slow.application.test(.router) { client in
            let response = try await client.execute(uri: "/v1/inspect", method: .post, headers: headers, body: body)
            XCTAssertEqual(response.status, .gatewayTimeout, ServingFixture.text(response))
            let metrics = try await client.execute(uri: "/metrics", method: .get)
            XCTAssert(ServingFixture.text(metrics).contains("dafar_requests_total{outcome=\"timeout\"} 1"), ServingFixture.text(metrics))
        }
    }

    func testHealthAndMetricsOverALiveServer() async throws {
        let service = ServingFixture.service()
        let images = ServingFixture.noise(3, seed: 26)
        let body = ByteBuffer(bytes: ServingFixture.json(images))
        try await service.application.test(.live) { client in
            let health = try await client.execute(uri: "/healthz", method: .get)
            XCTAssertEqual(health.status, .ok)
            XCTAssertEqual(try ServingFixture.object(health)["status"] as? String, "ok")
            for _ in 0..<2 { _ = try await client.execute(uri: "/v1/inspect", method: .post, headers: json, body: body) }
            _ = try await client.execute(uri: "/v1/inspect", method: .post, headers: [.contentType: "text/plain"], body: body)

            let response = try await client.execute(uri: "/metrics", method: .get)
            XCTAssertEqual(response.status, .ok)
            XCTAssert(response.headers[.contentType]?.hasPrefix("text/plain") ?? false)
            var samples: [String: Double] = [:]
            for line in ServingFixture.text(response).split(separator: "\n") where !line.hasPrefix("#") {
                let parts = line.split(separator: " ")
                XCTAssertEqual(parts.count, 2, "a sample line is 'name{labels} value': \(line)")
                samples[String(parts[0])] = Double(parts[1])
                XCTAssertNotNil(Double(parts[1]), "a number: \(line)")
            }
            XCTAssertEqual(samples["dafar_requests_total{outcome=\"ok\"}"], 2)
            XCTAssertEqual(samples["dafar_requests_total{outcome=\"unsupported_media_type\"}"], 1)
            XCTAssertEqual(samples["dafar_images_total"], 6)
            XCTAssertEqual(samples["dafar_batch_size_sum"], 6)
            XCTAssertEqual(samples["dafar_request_duration_seconds_count"], 3)
            XCTAssertEqual(samples["dafar_queue_depth"], 0)
            let flagged = ImageVerdict.inspect(ServingFixture.makeModel(), images).filter(\.adversarial).count
            XCTAssertEqual(samples["dafar_images_flagged_total"], Double(2 * flagged))
        }
    }
}
