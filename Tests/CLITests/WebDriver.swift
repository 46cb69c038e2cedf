import Foundation
#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif
import XCTest

private typealias Failure = BadInputTestCase.Failure

/// A headless Chromium driven through chromedriver's W3C WebDriver protocol (HTTP + JSON on
/// loopback), for tests of `dafar-serve`'s page: chromedriver and the browser are started by the
/// test on a free port and killed by it (`quit`, or `deinit` when a test fails half-way).
final class WebDriver {
    /// Where Debian's `chromium` and `chromium-driver` packages install them (`make setup`).
    static let chromedriverPath = "/usr/bin/chromedriver", chromiumPath = "/usr/bin/chromium"

    /// WebDriver's key for an element reference.
    static let elementKey = "element-6066-11e4-a52e-4f735466cecf"

    let process: Process
    let port: Int
    let profile: URL
    let log: URL
    private(set) var session: String?

    /// Starts chromedriver on a free loopback port (in a process group of its own, so that killing
    /// the group also kills the browser) and opens a headless browser session. Chromium runs
    /// with `--no-sandbox`: its sandbox refuses to run as root, which CI is.
    init(timeout: TimeInterval = 90) throws {
        for path in [Self.chromedriverPath, Self.chromiumPath] where !FileManager.default.isExecutableFile(atPath: path) {
            throw Failure("\(path) is missing: `make setup` installs the Debian packages chromium and chromium-driver")
        }
        profile = try TinyData.temporaryDirectory()
        log = profile.appendingPathComponent("chromedriver.log")
        port = try freeLoopbackPort()
        process = Process()  // Foundation starts it in a process group of its own (pgid = pid)
        process.executableURL = URL(fileURLWithPath: Self.chromedriverPath)
        process.arguments = ["--port=\(port)", "--log-path=\(log.path)"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()

        let deadline = Date().addingTimeInterval(timeout)
        var ready = false, lastAnswer = "none"
        while Date() < deadline && process.isRunning && !ready {
            do {
                let status = try call("GET", "status", timeout: 2)
                ready = status["ready"] as? Bool == true
                lastAnswer = "\(status)"
            } catch {
                lastAnswer = "\(error)"
            }
            if !ready { Thread.sleep(forTimeInterval: 0.1) }
        }
        guard ready else {
            throw Failure(
                "chromedriver did not become ready on port \(port) within \(timeout) s (last answer: \(lastAnswer)): \(logTail())")
        }

        let options: [String: Any] = [
            "binary": Self.chromiumPath,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--disable-extensions", "--user-data-dir=\(profile.appendingPathComponent("profile").path)"
            ]
        ]
        let capabilities: [String: Any] = ["capabilities": ["alwaysMatch": ["browserName": "chrome", "goog:chromeOptions": options]]]
        let created = try call("POST", "session", capabilities, timeout: max(5, deadline.timeIntervalSinceNow))
        guard let id = created["sessionId"] as? String else { throw Failure("no WebDriver session: \(created)") }
        session = id
    }

    deinit { quit() }

    /// Ends the browser session and chromedriver (and anything left in its process group).
    func quit() {
        if let session, process.isRunning { _ = try? call("DELETE", "session/\(session)", timeout: 10) }
        session = nil
        if process.isRunning {
            kill(-process.processIdentifier, SIGTERM)
            let deadline = Date().addingTimeInterval(5)
            while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        }
        kill(-process.processIdentifier, SIGKILL)  // the group: chromedriver and any browser process left behind
        if process.isRunning { process.waitUntilExit() }
        try? FileManager.default.removeItem(at: profile)
    }

    /// The end of chromedriver's log, for failure messages.
    func logTail() -> String {
        String(String(decoding: (try? Data(contentsOf: log)) ?? Data(), as: UTF8.self).suffix(2000))
    }

    // MARK: Commands of the session

    func navigate(to url: URL) throws { _ = try command("POST", "url", ["url": url.absoluteString]) }

    /// The element matching a CSS selector (an error when there is none).
    func element(_ selector: String) throws -> String {
        let found = try command("POST", "element", ["using": "css selector", "value": selector])
        guard let reference = found[Self.elementKey] as? String else { throw Failure("no element \(selector): \(found)") }
        return reference
    }

    /// Types `text` into an element; for a file input, `text` is the path of the file to choose.
    func sendKeys(_ element: String, _ text: String) throws { _ = try command("POST", "element/\(element)/value", ["text": text]) }

    /// The text an element shows.
    func text(_ selector: String) throws -> String {
        let reference = try element(selector)
        return try XCTUnwrap(try commandValue("GET", "element/\(reference)/text") as? String, "text of \(selector)")
    }

    /// Runs `script` (a function body) in the page and gives its return value.
    func execute(_ script: String) throws -> Any? { try commandValue("POST", "execute/sync", ["script": script, "args": [Any]()]) }

    /// Polls `condition` every 50 ms until it holds or `timeout` seconds pass.
    func waitUntil(timeout: TimeInterval, _ what: String, _ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try condition() { return }
            Thread.sleep(forTimeInterval: 0.05)
        }
        guard try condition() else { throw Failure("\(what): not within \(timeout) s") }
    }

    // MARK: Protocol

    private func command(_ method: String, _ path: String, _ body: [String: Any]? = nil) throws -> [String: Any] {
        let value = try commandValue(method, path, body)
        return value as? [String: Any] ?? [:]
    }

    private func commandValue(_ method: String, _ path: String, _ body: [String: Any]? = nil) throws -> Any? {
        guard let session else { throw Failure("the WebDriver session has ended") }
        return try callValue(method, "session/\(session)/\(path)", body, timeout: 30)
    }

    /// One WebDriver call: the `value` member of the answer as an object.
    private func call(_ method: String, _ path: String, _ body: [String: Any]? = nil, timeout: TimeInterval) throws -> [String: Any] {
        try callValue(method, path, body, timeout: timeout) as? [String: Any] ?? [:]
    }

    /// One WebDriver call: the `value` member of the answer; a WebDriver error is thrown with its message.
    /// (Through `LoopbackHTTP`: Foundation's URLSession on Linux fails on chromedriver's answers
    /// with "Failed writing header".)
    private func callValue(_ method: String, _ path: String, _ body: [String: Any]?, timeout: TimeInterval) throws -> Any? {
        let json = try body.map { try JSONSerialization.data(withJSONObject: $0) }
        let (status, data) = try LoopbackHTTP.send(port: port, method: method, path: "/" + path, json: json, timeout: timeout)
        let answer = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
        let value = answer?["value"]
        if status != 200 {
            let details = value as? [String: Any]
            throw Failure(
                "WebDriver \(method) /\(path): \(status) \(details?["error"] ?? "") \(String(describing: details?["message"] ?? String(decoding: data, as: UTF8.self)).prefix(500))"
            )
        }
        return value is NSNull ? nil : value
    }
}

/// A minimal HTTP/1.1 client for loopback servers in tests: one request per connection
/// (`Connection: close`), the answer read to the end of the stream, every socket operation
/// bounded by the timeout.
enum LoopbackHTTP {
    static func send(port: Int, method: String, path: String, json: Data?, timeout: TimeInterval) throws -> (status: Int, body: Data) {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw Failure("socket() failed: errno \(errno)") }
        defer { close(descriptor) }
        var limit = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1e6))
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard connected else { throw Failure("cannot connect to 127.0.0.1:\(port): errno \(errno)") }

        var request = Data("\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n".utf8)
        if let json { request += Data("Content-Type: application/json\r\nContent-Length: \(json.count)\r\n".utf8) }
        request += Data("\r\n".utf8) + (json ?? Data())
        try request.withUnsafeBytes { raw in
            var sent = 0
            while sent < raw.count {
                let n = Glibc.send(descriptor, raw.baseAddress! + sent, raw.count - sent, Int32(MSG_NOSIGNAL))
                guard n > 0 else { throw Failure("\(method) \(path): sending failed (errno \(errno))") }
                sent += n
            }
        }
        // Read until the header, then to Content-Length, the last chunk, or the end of the stream
        // (chromedriver keeps the connection open whatever `Connection: close` says).
        var answer = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        let deadline = Date().addingTimeInterval(timeout)
        func complete() throws -> (status: Int, body: Data)? {
            guard let split = answer.range(of: Data("\r\n\r\n".utf8)) else { return nil }
            let head = String(decoding: answer[..<split.lowerBound], as: UTF8.self)
            let lines = head.split(separator: "\r\n")
            guard let status = lines.first?.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) else {
                throw Failure("\(method) \(path): bad status line '\(lines.first ?? "")'")
            }
            let body = Data(answer[split.upperBound...])
            func header(_ name: String) -> String? {
                lines.dropFirst().first { $0.lowercased().hasPrefix(name + ":") }.map {
                    $0.dropFirst(name.count + 1).trimmingCharacters(in: .whitespaces)
                }
            }
            if let length = header("content-length").flatMap({ Int($0) }) {
                return body.count >= length ? (status, body.prefix(length)) : nil
            }
            if header("transfer-encoding")?.lowercased() == "chunked" {
                return body.range(of: Data("0\r\n\r\n".utf8)) != nil ? (status, try dechunk(body)) : nil
            }
            return nil  // to the end of the stream
        }
        while true {
            if let done = try complete() { return done }
            let n = recv(descriptor, &buffer, buffer.count, 0)
            if n == 0 {
                guard let split = answer.range(of: Data("\r\n\r\n".utf8)) else {
                    throw Failure("\(method) \(path): no HTTP header in the answer")
                }
                let statusLine = String(decoding: answer[..<split.lowerBound], as: UTF8.self).split(separator: "\r\n").first ?? ""
                guard let status = statusLine.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) else {
                    throw Failure("\(method) \(path): bad status line '\(statusLine)'")
                }
                return (status, Data(answer[split.upperBound...]))
            }
            guard n > 0, Date() < deadline else {
                throw Failure("\(method) \(path): no complete answer within \(timeout) s (errno \(errno))")
            }
            answer.append(contentsOf: buffer[0..<n])
        }
    }

    /// The payload of a chunked body.
    static func dechunk(_ data: Data) throws -> Data {
        var out = Data()
        var rest = data[...]
        while let line = rest.range(of: Data("\r\n".utf8)) {
            let sizeText = String(decoding: rest[..<line.lowerBound], as: UTF8.self).split(separator: ";").first ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else {
                throw Failure("bad chunk size '\(sizeText)'")
            }
            if size == 0 { return out }
            let start = line.upperBound
            guard rest.distance(from: start, to: rest.endIndex) >= size + 2 else { throw Failure("a truncated chunk") }
            let end = rest.index(start, offsetBy: size)
            out += rest[start..<end]
            rest = rest[rest.index(end, offsetBy: 2)...]
        }
        throw Failure("a chunked body without its last chunk")
    }
}

/// Blocking HTTP for tests, bounded in time.
enum HTTP {
    /// Sends `request` and waits at most `timeout` (+ 5) seconds for the status and body.
    static func send(_ request: URLRequest, timeout: TimeInterval) throws -> (status: Int, body: Data) {
        final class Box: @unchecked Sendable { var status: Int?; var data = Data(); var error: Error? }
        let box = Box()
        let done = DispatchSemaphore(value: 0)
        URLSession.shared.dataTask(with: request) { data, response, error in
            box.status = (response as? HTTPURLResponse)?.statusCode
            box.data = data ?? Data()
            box.error = error
            done.signal()
        }.resume()
        guard done.wait(timeout: .now() + timeout + 5) == .success else {
            throw Failure("no answer from \(request.url!) within \(timeout) s")
        }
        guard let status = box.status else {
            throw Failure("\(request.httpMethod ?? "GET") \(request.url!): \(box.error.map { "\($0)" } ?? "no response")")
        }
        return (status, box.data)
    }
}

/// A port on 127.0.0.1 that was free a moment ago: bound with port 0, read back, released.
func freeLoopbackPort() throws -> Int {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { throw Failure("socket() failed: errno \(errno)") }
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0
        }
    }
    guard bound else { throw Failure("could not bind a loopback port: errno \(errno)") }
    return Int(UInt16(bigEndian: address.sin_port))
}
