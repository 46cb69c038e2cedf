import Foundation
import Hummingbird
import ImageFiles
import Tensors

/// The HTTP routes of `dafar-serve`:
/// - `POST /v1/inspect`: a PNG (`image/png`) or a JSON pixel document (`application/json`, see
///   `PixelJSON`) -> `{"verdicts": [{"index": 0, "predicted_class": ..., "probability": ...,
///   "score": ..., "threshold": ..., "adversarial": ...}, ...]}`, one verdict per image in order;
/// - `POST /v1/explain[?scale=S]`: the same bodies -> the same verdicts, each with
///   `"residual_maximum"`, `"pictures"` (the four pictures of `ImageExplanation` as base64 PNGs at
///   the image's size, keyed by `ImageExplanation.pictureNames`) and `"strip"` (base64 of the PNG
///   `dafar-inspect --explain --explain-scale S` writes, S in 1...16, default 4);
/// - `GET /` -> `InspectionPage.html`, a page to drop an image on that calls `/v1/explain`;
/// - `GET /healthz` -> `{"status":"ok"}`;
/// - `GET /metrics` -> the Prometheus text exposition of `ServiceMetrics`.
///
/// Both POST routes count in the request metrics. Every refusal is a JSON `{"error": "..."}` with
/// its status: 405 (with `Allow: POST`) another method on the POST routes, 400 bad image, document or scale, 413
/// body over `maxBodyBytes` (or more images than the queue holds), 415 another content type,
/// 503 with `Retry-After` when the queue is full or the service is stopping, 504 after the
/// request timeout.
public enum InspectionRoutes {
    /// A router with the three routes, inspecting through `batcher`.
    public static func router(batcher: InspectionBatcher, metrics: ServiceMetrics, maxBodyBytes: Int) -> Router<BasicRequestContext> {
        precondition(maxBodyBytes > 0, "the body limit must be positive")
        let router = Router()
        router.post("v1/inspect") { request, _ -> Response in
            let started = ContinuousClock.now
            let (outcome, response) = await inspect(
                request, batcher: batcher, metrics: metrics, maxBodyBytes: maxBodyBytes, explains: false)
            metrics.record(outcome, duration: ContinuousClock.now - started)
            return response
        }
        router.post("v1/explain") { request, _ -> Response in
            let started = ContinuousClock.now
            let (outcome, response) = await inspect(request, batcher: batcher, metrics: metrics, maxBodyBytes: maxBodyBytes, explains: true)
            metrics.record(outcome, duration: ContinuousClock.now - started)
            return response
        }
        for path in ["v1/inspect", "v1/explain"] {
            for method in [HTTPRequest.Method.get, .put, .delete, .patch] {
                router.on(RouterPath(path), method: method) { request, _ -> Response in
                    var response = error(.methodNotAllowed, "\(request.method) is not allowed on /\(path): send the image with POST")
                    response.headers[.allow] = "POST"
                    return response
                }
            }
        }
        router.get("/") { _, _ -> Response in
            Response(
                status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(string: InspectionPage.html)))
        }
        router.get("healthz") { _, _ -> Response in json(.ok, "{\"status\":\"ok\"}") }
        router.get("metrics") { _, _ -> Response in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: metrics.text())))
        }
        return router
    }

    /// The media types `POST /v1/inspect` reads.
    static let pngType = "image/png", jsonType = "application/json"

    /// Enlargement of the strip in `/v1/explain` answers unless `?scale=` says otherwise (as `dafar-inspect --explain-scale`).
    public static let defaultStripScale = 4

    /// Reads, checks and inspects (or explains) one request; never throws: every failure is an answer.
    static func inspect(
        _ request: Request, batcher: InspectionBatcher, metrics: ServiceMetrics,
        maxBodyBytes: Int, explains: Bool
    ) async -> (RequestOutcome, Response) {
        var stripScale = defaultStripScale
        if explains, let text = request.uri.queryParameters["scale"] {
            guard let scale = Int(text), (1...16).contains(scale) else {
                return (.badRequest, error(.badRequest, "scale must be a whole number from 1 to 16, got '\(text.prefix(20))'"))
            }
            stripScale = scale
        }
        let contentType = request.headers[.contentType] ?? ""
        let mediaType = contentType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        guard mediaType == pngType || mediaType == jsonType else {
            let found = contentType.isEmpty ? "none" : "'\(contentType.prefix(100))'"
            return (.unsupportedMediaType, error(.unsupportedMediaType, "Content-Type must be \(pngType) or \(jsonType), got \(found)"))
        }
        let tooLarge = "the body is larger than the limit of \(maxBodyBytes) bytes (--max-body-bytes)"
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > maxBodyBytes {
            return (.tooLarge, error(.contentTooLarge, tooLarge))
        }
        var body: [UInt8] = []
        do {
            for try await buffer in request.body {
                guard body.count + buffer.readableBytes <= maxBodyBytes else { return (.tooLarge, error(.contentTooLarge, tooLarge)) }
                body.append(contentsOf: buffer.readableBytesView)
            }
        } catch {
            return (.badRequest, Self.error(.badRequest, "the body could not be read: \(error)"))
        }

        let images: Tensor
        do {
            images = try decode(body, pngBody: mediaType == pngType, imageShape: batcher.imageShape)
        } catch let problem as ImageFileError {
            return (.badRequest, error(.badRequest, problem.description))
        } catch {
            return (.badRequest, Self.error(.badRequest, "\(error)"))
        }
        let limit = batcher.settings.queueLimit
        guard images.batchSize <= limit else {
            return (
                .tooLarge,
                error(.contentTooLarge, "the body holds \(images.batchSize) images; one request may hold at most \(limit) (--queue-limit)")
            )
        }

        do {
            let items: [String]
            if explains {
                let answers = try await batcher.explain(images)
                metrics.flagged.increment(by: Int64(answers.filter(\.verdict.adversarial).count))
                items = try answers.enumerated().map { i, answer in
                    "{\"index\":\(i),\(answer.verdict.jsonMembers),\(try explanationMembers(answer.explanation, stripScale: stripScale))}"
                }
            } else {
                let verdicts = try await batcher.inspect(images)
                metrics.flagged.increment(by: Int64(verdicts.filter(\.adversarial).count))
                items = verdicts.enumerated().map { "{\"index\":\($0),\($1.jsonMembers)}" }
            }
            return (.ok, json(.ok, "{\"verdicts\":[" + items.joined(separator: ",") + "]}"))
        } catch let problem as ImageFileError {  // a picture libpng would not encode: not the client's fault
            return (.internalError, error(.internalServerError, "the pictures could not be encoded: \(problem.description)"))
        } catch BatcherError.queueFull(let limit) {
            var response = error(.serviceUnavailable, "the queue is full (\(limit) images waiting, --queue-limit); retry later")
            response.headers[.retryAfter] = "1"
            return (.queueFull, response)
        } catch BatcherError.timedOut {
            return (.timeout, error(.gatewayTimeout, "no verdict within \(batcher.settings.timeout) (--timeout-ms)"))
        } catch {
            var response = Self.error(.serviceUnavailable, "the service is shutting down")
            response.headers[.retryAfter] = "1"
            return (.shuttingDown, response)
        }
    }

    /// The images of a body, `[N, C, H, W]` fitting `imageShape` (`[C, H, W]`).
    /// - Throws: `ImageFileError` for a malformed PNG or document, or an image of another shape
    ///   (the message names both shapes).
    public static func decode(_ body: [UInt8], pngBody: Bool, imageShape: [Int]) throws -> Tensor {
        guard pngBody else { return try PixelJSON.images(body, imageShape: imageShape) }
        let source = "the PNG body"
        let picture = try PNGFormat.decode(body, source: nil)
        let images = try picture.tensor(channels: imageShape[0], source: source)  // [1, C, H, W]
        try ImageArrays.checkFits(images.shape, imageShape: imageShape, source: source)
        return images
    }

    /// The JSON members of an explanation, without braces: `"residual_maximum":M,"pictures":{"input":"<base64 PNG>",
    /// "reconstruction":...,"residual":...,"detector_reconstruction":...},"strip":"<base64 PNG>"`.
    static func explanationMembers(_ explanation: ImageExplanation, stripScale: Int) throws -> String {
        let pictures = try zip(ImageExplanation.pictureNames, explanation.pictures).map { name, picture in
            "\"\(name)\":\"\(try base64PNG(picture))\""
        }
        return "\"residual_maximum\":\(JSONText.number(explanation.residualMaximum)),\"pictures\":{\(pictures.joined(separator: ","))},"
            + "\"strip\":\"\(try base64PNG(explanation.strip(scale: stripScale)))\""
    }

    /// A `[C, H, W]` tensor in [0, 1] as a base64 PNG (the quantisation of `PixelImage(tensor:)`).
    static func base64PNG(_ picture: Tensor) throws -> String {
        Data(try PNGFormat.encode(PixelImage(tensor: picture))).base64EncodedString()
    }

    /// A JSON answer.
    static func json(_ status: HTTPResponse.Status, _ text: String) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    /// `{"error": message}` with `status`.
    static func error(_ status: HTTPResponse.Status, _ message: String) -> Response {
        json(status, "{\"error\":\(JSONText.string(message))}")
    }
}
