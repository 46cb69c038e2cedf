import DAFAR
import Foundation
import Hummingbird
import HummingbirdTesting
import ImageFiles
import Serving
import Tensors
import XCTest

private let png: HTTPFields = [.contentType: "image/png"]

/// The PNG in a base64 member of an answer.
private func decodePNG(_ base64: Any?, _ what: String) throws -> PixelImage {
    let text = try XCTUnwrap(base64 as? String, "\(what): a base64 string")
    let bytes = try XCTUnwrap(Data(base64Encoded: text), "\(what): valid base64")
    return try PNGFormat.decode([UInt8](bytes))
}

/// `POST /v1/explain` and the page at `GET /`, in process: the verdicts of `/v1/inspect`, the four
/// pictures of `ImageExplanation` recomputed here from D, E and C, the strip of `dafar-inspect
/// --explain`, and the refusals.
final class ExplainRouteTests: XCTestCase {

    func testExplainAnswersTheInspectVerdictWithTheFourPicturesAndTheStrip() async throws {
        let reference = ServingFixture.makeModel()
        let images = ServingFixture.noise(4, seed: 51)
        for mode in BatchMode.allCases {  // explanations run per request in either mode
            let service = ServingFixture.service(.init(port: 0, batching: .init(maxWait: .milliseconds(1), mode: mode)))
            try await service.application.test(.router) { client in
                for i in 0..<4 {
                    let x = images.slice(i..<(i + 1))  // [1, 1, 28, 28]
                    let body = ByteBuffer(bytes: try ServingFixture.png(images, i))
                    let inspected = try await client.execute(uri: "/v1/inspect", method: .post, headers: png, body: body)
                    let explained = try await client.execute(uri: "/v1/explain", method: .post, headers: png, body: body)
                    XCTAssertEqual(explained.status, .ok, ServingFixture.text(explained))
                    let entries = try XCTUnwrap(try ServingFixture.object(explained)["verdicts"] as? [[String: Any]])
                    XCTAssertEqual(entries.count, 1)
                    let entry = entries[0]
                    let verdict = try XCTUnwrap((try ServingFixture.object(inspected)["verdicts"] as? [[String: Any]])?.first)
                    for key in ["index", "predicted_class", "probability", "score", "threshold", "adversarial"] {
                        XCTAssertEqual(
                            "\(entry[key] ?? "missing")", "\(verdict[key] ?? "absent")", "\(mode) image \(i): \(key) as /v1/inspect")
                    }
                    let alone = ImageVerdict.inspect(reference, x)[0]
                    XCTAssertEqual(
                        Float((entry["score"] as? Double) ?? -1).bitPattern, alone.score.bitPattern, "\(mode) image \(i): the score alone")

                    // The pictures from first principles: x, D(E(x)), x - D(E(x)), C(x - D(E(x))).
                    let reconstruction = reference.reconstruct(x)
                    let residual = x - reconstruction
                    let expected = ImageExplanation.explain(reference, x)[0]
                    XCTAssertEqual(expected.reconstruction.storage, reconstruction.storage)
                    XCTAssertEqual(expected.residual.storage, residual.storage)
                    XCTAssertEqual(Float((entry["residual_maximum"] as? Double) ?? -1), residual.storage.map(abs).max()!)
                    let pictures = try XCTUnwrap(entry["pictures"] as? [String: Any])
                    XCTAssertEqual(Set(pictures.keys), Set(ImageExplanation.pictureNames))
                    for (name, picture) in zip(ImageExplanation.pictureNames, expected.pictures) {
                        let decoded = try decodePNG(pictures[name], "\(mode) image \(i) \(name)")
                        XCTAssertEqual(decoded, PixelImage(tensor: picture), "\(mode) image \(i): picture \(name)")
                        XCTAssertEqual([decoded.width, decoded.height, decoded.channels], [28, 28, 1])
                    }
                    XCTAssertEqual(
                        try decodePNG(pictures["input"], "input"), try PNGFormat.decode(try ServingFixture.png(images, i)),
                        "the input picture is the PNG that was sent")
                    let strip = try decodePNG(entry["strip"], "\(mode) image \(i) strip")
                    XCTAssertEqual(strip, PixelImage(tensor: expected.strip(scale: InspectionRoutes.defaultStripScale)))
                    XCTAssertEqual([strip.width, strip.height], [4 * 4 * 28 + 3 * ImageExplanation.gap, 4 * 28])
                }
                // Several images in one JSON body, and another strip scale.
                let several = try await client.execute(
                    uri: "/v1/explain?scale=1", method: .post, headers: [.contentType: "application/json"],
                    body: ByteBuffer(bytes: ServingFixture.json(images)))
                XCTAssertEqual(several.status, .ok, ServingFixture.text(several))
                let entries = try XCTUnwrap(try ServingFixture.object(several)["verdicts"] as? [[String: Any]])
                XCTAssertEqual(entries.map { $0["index"] as? Int }, [0, 1, 2, 3])
                let decoded = try PixelJSON.images(ServingFixture.json(images), imageShape: [1, 28, 28])
                for (entry, explanation) in zip(entries, ImageExplanation.explain(reference, decoded)) {
                    XCTAssertEqual(try decodePNG(entry["strip"], "scale 1"), PixelImage(tensor: explanation.strip(scale: 1)))
                }
            }
        }
        let flagged = ImageVerdict.inspect(reference, images).filter(\.adversarial).count
        XCTAssert((1...3).contains(flagged), "some of the four images are flagged and some not (\(flagged))")
    }

    func testExplainRefusesWhatInspectRefusesAndABadScale() async throws {
        let service = ServingFixture.service(.init(port: 0, maxBodyBytes: 4096))
        let good = try ServingFixture.png(ServingFixture.noise(1, seed: 52), 0)
        let narrow = try ServingFixture.png(ServingFixture.noise(1, seed: 53, width: 27), 0)
        try await service.application.test(.router) { client in
            func expect(
                _ uri: String, _ status: HTTPResponse.Status, _ headers: HTTPFields, _ body: [UInt8], _ fragments: [String],
                line: UInt = #line
            ) async throws {
                let response = try await client.execute(uri: uri, method: .post, headers: headers, body: ByteBuffer(bytes: body))
                XCTAssertEqual(response.status, status, ServingFixture.text(response), line: line)
                let message = try XCTUnwrap(try ServingFixture.object(response)["error"] as? String, line: line)
                for fragment in fragments { XCTAssert(message.contains(fragment), "'\(message)' names '\(fragment)'", line: line) }
            }
            try await expect("/v1/explain", .unsupportedMediaType, [.contentType: "text/plain"], good, ["image/png", "text/plain"])
            try await expect("/v1/explain", .contentTooLarge, png, [UInt8](repeating: 7, count: 5000), ["4096 bytes"])
            try await expect("/v1/explain", .badRequest, png, Array(good.prefix(good.count / 2)), ["PNG"])
            try await expect("/v1/explain", .badRequest, png, narrow, ["[1, 28, 27]", "[1, 28, 28]"])
            for scale in ["0", "17", "two", ""] {
                try await expect("/v1/explain?scale=\(scale)", .badRequest, png, good, ["scale", "1 to 16"])
            }
            let wrongMethod = try await client.execute(uri: "/v1/explain", method: .get)
            XCTAssertEqual(wrongMethod.status, .methodNotAllowed)
            XCTAssertEqual(wrongMethod.headers[.allow], "POST")
            XCTAssert(
                ((try ServingFixture.object(wrongMethod)["error"] as? String) ?? "").contains("POST"), ServingFixture.text(wrongMethod))
            let metrics = ServingFixture.text(try await client.execute(uri: "/metrics", method: .get))
            XCTAssert(metrics.contains("dafar_requests_total{outcome=\"bad_request\"} 6"), metrics)
        }
    }

    func testThePageIsSelfContainedAndCallsExplain() async throws {
        let service = ServingFixture.service()
        try await service.application.test(.router) { client in
            let response = try await client.execute(uri: "/", method: .get)
            XCTAssertEqual(response.status, .ok)
            XCTAssertEqual(response.headers[.contentType], "text/html; charset=utf-8")
            let html = ServingFixture.text(response)
            XCTAssertEqual(html, InspectionPage.html)
            for needed in ["<input type=\"file\" id=\"file\"", "id=\"verdict\"", "id=\"status\"", "fetch(\"v1/explain\"", "\"drop\""]
                + ImageExplanation.pictureNames.map({ "data-name=\"\($0)\"" })
            {
                XCTAssert(html.contains(needed), "the page holds \(needed)")
            }
            for external in ["http:", "https:", "src=\"", "href=", "url(", "@import", "<link", "<iframe"] {
                XCTAssertFalse(html.contains(external), "the page loads nothing from elsewhere: it contains \(external)")
            }
        }
    }
}
