import Foundation
import Hummingbird
import ImageFiles
import Tensors

/// The HTTP routes of `dafar-serve`:
/// - `POST /v1/inspect`: a PNG (`image/png`) or a JSON pixel document (`application/json`, see
///   `PixelJSON`) -> `{"verdicts": [{"index": 0, "predicted_class": ..., "probability": ...,
///   "score": ..., "threshold": ..., "adversarial": ...}, ...]}`, one verdict per image in order;
/// - `GET /healthz` -> `{"status":"ok"}`;
/// - `GET /metrics` -> the Prometheus text exposition of `ServiceMetrics`.
///
/// Every refusal is a JSON `{"error": "..."}` with its status: 400 bad image or document, 413
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
            let (outcome, response) = await inspect(request, batcher: batcher, metrics: metrics, maxBodyBytes: maxBodyBytes)
            metrics.record(outcome, duration: ContinuousClock.now - started)
            return response
        }
        router.get("healthz") { _, _ -> Response in json(.ok, "{\"status\":\"ok\"}") }
        router.get("metrics") { _, _ -> Response in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(string: metrics.text())))
        }
        return router
    }

    /// The media types `POST /v1/inspect` reads.
    static let pngType = "image/png", jsonType = "application/json"

    /// Reads, checks and inspects one request; never throws: every failure is an answer.
    static func inspect(_ request: Request, batcher: InspectionBatcher, metrics: ServiceMetrics,
                        maxBodyBytes: Int) async -> (RequestOutcome, Response) {
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
            return (.tooLarge, error(.contentTooLarge, "the body holds \(images.batchSize) images; one request may hold at most \(limit) (--queue-limit)"))
        }

        do {
            let verdicts = try await batcher.inspect(images)
            metrics.flagged.increment(by: Int64(verdicts.filter(\.adversarial).count))
            let items = verdicts.enumerated().map { "{\"index\":\($0),\($1.jsonMembers)}" }
            return (.ok, json(.ok, "{\"verdicts\":[" + items.joined(separator: ",") + "]}"))
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

    /// A JSON answer.
    static func json(_ status: HTTPResponse.Status, _ text: String) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    /// `{"error": message}` with `status`.
    static func error(_ status: HTTPResponse.Status, _ message: String) -> Response {
        json(status, "{\"error\":\(JSONText.string(message))}")
    }
}
