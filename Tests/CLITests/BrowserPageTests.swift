import DAFAR
import Datasets
import Foundation
#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif
import ImageFiles
import NeuralNetworks
import Tensors
import XCTest

/// dafar-serve's page (`GET /`) in headless Chromium: the built tool and chromedriver on free
/// loopback ports, a clean digit and an FGSM example chosen as PNG files through the page's file
/// input, and the verdict read from the page equal to what `POST /v1/inspect` answers for the same
/// file; the four pictures shown; the strip of `/v1/explain` equal to `dafar-inspect --explain`'s.
final class BrowserPageTests: BadInputTestCase {
    func testThePageShowsTheVerdictOfInspectAndTheFourPicturesForACleanAndAnAdversarialPNG() throws {
        let f = try files
        let folder = f.folder.appendingPathComponent("page-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)

        // A clean test digit the fixture does not flag, and an FGSM example (eps 0.3) it flags, as PNGs.
        let adversarialSet = folder.appendingPathComponent("fgsm.safetensors").path
        let attack = try Reliability.run(
            "dafar-attack",
            f.data + [
                "--model", f.model, "--detector", f.detector, "--attack", "fgsm", "--eps", "0.3", "--count", "20", "--output",
                adversarialSet
            ])
        XCTAssertEqual(attack.status, 0, attack.stderr)
        Parallel.setThreadCount(1)  // as the tools' --threads 1
        let dafar = try DAFARModel(contentsOf: URL(fileURLWithPath: f.model), detector: URL(fileURLWithPath: f.detector))
        func asPNG(_ images: Tensor) -> [(image: PixelImage, adversarial: Bool)] {
            (0..<images.batchSize).map { i in
                let image = PixelImage(tensor: images.slice(i..<(i + 1)).reshaped([1, 28, 28]))  // what the file will hold
                return (image, dafar.inspect(try! image.tensor(channels: 1))[0].isAdversarial)
            }
        }
        let clean = asPNG(try IDXFormat.readImages(from: Reliability.dataFolder.appendingPathComponent("t10k-images-idx3-ubyte")))
        let fgsm = asPNG(try SafetensorsArchive(contentsOf: URL(fileURLWithPath: adversarialSet)).float32("x_adv"))
        let cleanImage = try XCTUnwrap(clean.first { !$0.adversarial }, "a clean test image the fixture does not flag").image
        let adversarialImage = try XCTUnwrap(fgsm.first { $0.adversarial }, "an FGSM image the fixture flags").image
        let pngs = [folder.appendingPathComponent("digit.png"), folder.appendingPathComponent("fgsm.png")]
        try PNGFormat.write(cleanImage, to: pngs[0])
        try PNGFormat.write(adversarialImage, to: pngs[1])

        let server = try Reliability.start(
            "dafar-serve",
            [
                "--model", f.model, "--detector", f.detector, "--host", "127.0.0.1",
                "--port", "0", "--threads", "1"
            ])
        defer { if server.process.isRunning { kill(server.process.processIdentifier, SIGKILL) } }
        let address = server.listeningAddress(timeout: 60)
        XCTAssertNotNil(address, "dafar-serve printed its address (stderr: \(server.stderr))")
        guard let base = address else { return }

        let browser = try WebDriver()
        defer { browser.quit() }
        try browser.navigate(to: base)
        XCTAssertEqual(try browser.execute("return document.title") as? String, "dafar-serve: is this image adversarial?")
        let input = try browser.element("#file")

        for (n, (png, expectedFlag)) in zip(pngs, [false, true]).enumerated() {
            var request = URLRequest(url: base.appendingPathComponent("v1/inspect"))
            request.httpMethod = "POST"
            request.setValue("image/png", forHTTPHeaderField: "Content-Type")
            request.httpBody = try Data(contentsOf: png)
            let (status, body) = try HTTP.send(request, timeout: 20)
            XCTAssertEqual(status, 200, String(decoding: body, as: UTF8.self))
            let served =
                try XCTUnwrap((try JSONSerialization.jsonObject(with: body) as? [String: Any])?["verdicts"] as? [[String: Any]]).first
                ?? [:]
            XCTAssertEqual(served["adversarial"] as? Bool, expectedFlag, "\(png.lastPathComponent): /v1/inspect")

            try browser.sendKeys(input, png.path)  // choosing the file starts the page's request
            try browser.waitUntil(timeout: 30, "the page showed the verdict on \(png.lastPathComponent)") {
                let state =
                    try browser.execute("const s = document.getElementById('status'); return s.dataset.request + ' ' + s.dataset.state")
                    as? String
                if state == "\(n + 1) error" { throw Failure("the page shows an error: \(try browser.text("#status"))") }
                return state == "\(n + 1) done"
            }
            let what = "\(png.lastPathComponent) on the page"
            XCTAssertEqual(try browser.text("#verdict"), expectedFlag ? "ADVERSARIAL" : "clean", what)
            XCTAssertEqual(try browser.text("#file-name"), png.lastPathComponent, what)
            XCTAssertEqual(Int(try browser.text("#predicted-class")), served["predicted_class"] as? Int, "\(what): class as /v1/inspect")
            for key in ["probability", "score", "threshold"] {
                let shown = try browser.text("#\(key)")
                XCTAssertEqual(
                    Double(shown), served[key] as? Double, "\(what): \(key) '\(shown)' as /v1/inspect's \(served[key] ?? "none")")
            }
            // Four pictures, decoded by the browser at the image's size.
            let sizes =
                try browser.execute(
                    """
                    return Array.from(document.querySelectorAll('#pictures img')).map(i => i.dataset.name + ' ' + i.naturalWidth + 'x' + i.naturalHeight)
                    """) as? [String]
            XCTAssertEqual(sizes, ImageExplanation.pictureNames.map { "\($0) 28x28" }, what)
        }

        // The strip /v1/explain gives for the FGSM file is the one dafar-inspect --explain writes.
        let strips = folder.appendingPathComponent("strips")
        let inspected = try Reliability.run(
            "dafar-inspect",
            [
                "--model", f.model, "--detector", f.detector, "--threads", "1",
                "--explain", strips.path, pngs[1].path
            ])
        XCTAssertEqual(inspected.status, 1, inspected.stderr)
        var request = URLRequest(url: base.appendingPathComponent("v1/explain"))
        request.httpMethod = "POST"
        request.setValue("image/png", forHTTPHeaderField: "Content-Type")
        request.httpBody = try Data(contentsOf: pngs[1])
        let (status, body) = try HTTP.send(request, timeout: 20)
        XCTAssertEqual(status, 200)
        let entry = try XCTUnwrap((try JSONSerialization.jsonObject(with: body) as? [String: Any])?["verdicts"] as? [[String: Any]]).first
        let strip = try XCTUnwrap(Data(base64Encoded: try XCTUnwrap(entry?["strip"] as? String)))
        XCTAssertEqual(
            try PNGFormat.decode([UInt8](strip)),
            try PNGFormat.decode([UInt8](Data(contentsOf: strips.appendingPathComponent("fgsm.png-0.png")))),
            "/v1/explain's strip is dafar-inspect --explain's")

        browser.quit()
        kill(server.process.processIdentifier, SIGTERM)
        XCTAssertEqual(server.wait(timeout: 20).status, 0, "SIGTERM ends dafar-serve with status 0")
    }
}
