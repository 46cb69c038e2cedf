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
    static let elementKey = "element-6066-11e4-a52e-4f735466cecc"

    let process: Process
    let base: URL
    let profile: URL
    let log: URL
    private(set) var session: String?

    /// Starts chromedriver on a free loopback port (in a session of its own, so that killing its
    /// process group also kills the browser) and opens a headless browser session. Chromium runs
    /// with `--no-sandbox`: its sandbox refuses to run as root, which CI is.
    init(timeout: TimeInterval = 90) throws {
        for path in [Self.chromedriverPath, Self.chromiumPath] where !FileManager.default.isExecutableFile(atPath: path) {
            throw Failure("\(path) is missing: `make setup` installs the Debian packages chromium and chromium-driver")
        }
        profile = try TinyData.temporaryDirectory()
        log = profile.appendingPathComponent("chromedriver.log")
        let port = try freeLoopbackPort()
        base = URL(string: "http://127.0.0.1:\(port)")!
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setsid")
        process.arguments = [Self.chromedriverPath, "--port=\(port)", "--log-path=\(log.path)"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()

        let deadline = Date().addingTimeInterval(timeout)
        var ready = false
        while Date() < deadline && process.isRunning && !ready {
            ready = ((try? call("GET", "status", timeout: 2))?["ready"] as? Bool) == true
            if !ready { Thread.sleep(forTimeInterval: 0.1) }
        }
        guard ready else { throw Failure("chromedriver did not become ready on \(base) within \(timeout) s: \(logTail())") }

        let options: [String: Any] = [
            "binary": Self.chromiumPath,
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                     "--disable-extensions", "--user-data-dir=\(profile.appendingPathComponent("profile").path)"],
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
    private func callValue(_ method: String, _ path: String, _ body: [String: Any]?, timeout: TimeInterval) throws -> Any? {
        var request = URLRequest(url: base.appendingPathComponent(path), timeoutInterval: timeout)
        request.httpMethod = method
        if let body {
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.httpBody = try JSONSerialization.data(withJSONObject: body)
        }
        let (status, data) = try HTTP.send(request, timeout: timeout)
        let answer = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
        let value = answer?["value"]
        if status != 200 {
            let details = value as? [String: Any]
            throw Failure("WebDriver \(method) /\(path): \(status) \(details?["error"] ?? "") \(String(describing: details?["message"] ?? String(decoding: data, as: UTF8.self)).prefix(500))")
        }
        return value is NSNull ? nil : value
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
        guard done.wait(timeout: .now() + timeout + 5) == .success else { throw Failure("no answer from \(request.url!) within \(timeout) s") }
        guard let status = box.status else { throw Failure("\(request.httpMethod ?? "GET") \(request.url!): \(box.error.map { "\($0)" } ?? "no response")") }
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
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0 }
    }
    guard bound else { throw Failure("could not bind a loopback port: errno \(errno)") }
    return Int(UInt16(bigEndian: address.sin_port))
}
