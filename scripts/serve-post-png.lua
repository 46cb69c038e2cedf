-- wrk script: POST the PNG named by the environment variable DAFAR_PNG to /v1/inspect,
-- and count answers that are not 200 (wrk itself counts only socket errors and non-2xx/3xx).
local file = assert(io.open(os.getenv("DAFAR_PNG"), "rb"))
wrk.method = "POST"
wrk.path = "/v1/inspect"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "image/png"

done = function(summary, latency, requests)
  io.write(string.format("requests %d, errors: connect %d, read %d, write %d, status %d, timeout %d\n",
    summary.requests, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout))
  io.write(string.format("latency_ms p50 %.2f p99 %.2f\n", latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
