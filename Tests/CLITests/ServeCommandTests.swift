import DAFAR
import Datasets
import Foundation
#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif
import ImageFiles
import Tensors
import XCTest

/// dafar-serve end to end: the built tool on a free loopback port, real HTTP requests, the
/// verdict compared with dafar-inspect's on the same PNG, refusals, and SIGTERM -> exit 0.
final class ServeCommandTests: BadInputTestCase {
    /// Sends one request and waits at most `timeout` seconds for the answer.
    func send(
        _ url: URL, method: String = "GET", contentType: String? = nil, body: Data? = nil,
        timeout: TimeInterval = 20
    ) throws -> (status: Int, headers: [AnyHashable: Any], body: Data) {
        var request = URLRequest(url: url, timeoutInterval: timeout)
        request.httpMethod = method
        if let contentType { request.setValue(contentType, forHTTPHeaderField: "Content-Type") }
        request.httpBody = body
        final class Box: @unchecked Sendable { var result: (Int, [AnyHashable: Any], Data)?; var error: Error? }
        let box = Box()
        let done = DispatchSemaphore(value: 0)
        URLSession.shared.dataTask(with: request) { data, response, error in
            if let response = response as? HTTPURLResponse {
                box.result = (response.statusCode, response.allHeaderFields, data ?? Data())
            }
            box.error = error
            done.signal()
        }.resume()
        guard done.wait(timeout: .now() + timeout + 5) == .success else { throw Failure("no answer from \(url) within \(timeout) s") }
        guard let (status, headers, data) = box.result else {
            throw Failure("\(method) \(url): \(box.error.map { "\($0)" } ?? "no response")")
        }
        return (status, headers, data)
    }

    func object(_ data: Data) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any], String(decoding: data, as: UTF8.self))
    }

    func testServesDafarInspectsVerdictRefusesBadInputAndStopsOnSIGTERM() throws {
        let f = try files
        let folder = f.folder.appendingPathComponent("serve-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let images = try IDXFormat.readImages(from: Reliability.dataFolder.appendingPathComponent("t10k-images-idx3-ubyte"))
        var pngs: [URL] = []
        for i in 0..<3 {
            let url = folder.appendingPathComponent("digit\(i).png")
            try PNGFormat.write(PixelImage(tensor: images.slice(i..<(i + 1)).reshaped([1, 28, 28])), to: url)
            pngs.append(url)
        }

        let server = try Reliability.start(
            "dafar-serve",
            [
                "--model", f.model, "--detector", f.detector, "--host", "127.0.0.1",
                "--port", "0", "--threads", "1", "--max-body-bytes", "65536"
            ])
        defer { if server.process.isRunning { kill(server.process.processIdentifier, SIGKILL) } }
        let address = server.listeningAddress(timeout: 60)
        XCTAssertNotNil(address, "dafar-serve printed its address (stderr: \(server.stderr))")
        guard let base = address, let port = base.port, port > 0 else { return }

        let health = try send(base.appendingPathComponent("healthz"))
        XCTAssertEqual(health.status, 200)
        XCTAssertEqual(try object(health.body)["status"] as? String, "ok")

        let inspected = try Reliability.run(
            "dafar-inspect", ["--model", f.model, "--detector", f.detector, "--threads", "1"] + pngs.map(\.path))
        XCTAssert([0, 1].contains(inspected.status), inspected.stderr)
        let expected = try inspected.stdout.split(separator: "\n").map { try object(Data($0.utf8)) }
        XCTAssertEqual(expected.count, 3)
        for (url, want) in zip(pngs, expected) {
            let answer = try send(
                base.appendingPathComponent("v1/inspect"), method: "POST", contentType: "image/png", body: try Data(contentsOf: url))
            XCTAssertEqual(answer.status, 200, String(decoding: answer.body, as: UTF8.self))
            let verdicts = try XCTUnwrap(try object(answer.body)["verdicts"] as? [[String: Any]])
            XCTAssertEqual(verdicts.count, 1)
            for key in ["predicted_class", "probability", "score", "threshold", "adversarial"] {
                XCTAssertEqual(
                    "\(verdicts[0][key] ?? "missing")", "\(want[key] ?? "absent")", "\(url.lastPathComponent): \(key) as dafar-inspect")
            }
        }

        let truncated = try Data(contentsOf: pngs[0]).prefix(100)
        let bad = try send(base.appendingPathComponent("v1/inspect"), method: "POST", contentType: "image/png", body: truncated)
        XCTAssertEqual(bad.status, 400)
        XCTAssertNotNil(try object(bad.body)["error"] as? String)
        let large = try send(
            base.appendingPathComponent("v1/inspect"), method: "POST", contentType: "image/png", body: Data(count: 100_000))
        XCTAssertEqual(large.status, 413)
        let text = try send(base.appendingPathComponent("v1/inspect"), method: "POST", contentType: "text/plain", body: Data("hi".utf8))
        XCTAssertEqual(text.status, 415)
        let metrics = try send(base.appendingPathComponent("metrics"))
        XCTAssert(
            String(decoding: metrics.body, as: UTF8.self).contains("dafar_requests_total{outcome=\"ok\"} 3"),
            String(decoding: metrics.body, as: UTF8.self))

        kill(server.process.processIdentifier, SIGTERM)
        let result = server.wait(timeout: 20)
        XCTAssertEqual(result.status, 0, "SIGTERM ends dafar-serve with status 0 (stderr: \(result.stderr))")
        XCTAssertEqual(result.stdout, "listening on \(base.absoluteString)\n", "one line on standard output")
    }

    func testBadOptionsAndFilesGiveOneLineAndASysexitsStatus() throws {
        let f = try files
        try expectFailure("dafar-serve", ["--model", f.model, "--detector", f.detector, "--port", "70000"], status: 64, ["--port", "70000"])
        try expectFailure("dafar-serve", ["--model", f.model, "--detector", f.detector, "--max-batch", "0"], status: 64, ["--max-batch"])
        try expectFailure(
            "dafar-serve", ["--model", f.folder.appendingPathComponent("missing.safetensors").path, "--detector", f.detector],
            status: 66, ["missing.safetensors"])
        try expectFailure("dafar-serve", ["--model", f.otherModel, "--detector", f.detector, "--port", "0"], status: 65, ["another model"])
        let help = try Reliability.run("dafar-serve", ["--help"])
        XCTAssertEqual(help.status, 0)
        for option in [
            "--max-batch", "--max-wait-ms", "--queue-limit", "--max-body-bytes", "--timeout-ms", "--threads", "--batch-mode", "/v1/inspect"
        ] {
            XCTAssert(help.stdout.contains(option), "--help explains \(option)")
        }
    }
}
