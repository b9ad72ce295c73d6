-- Shared by the bench/api.py scripts: one JSON line with what wrk measured.
local M = {}

function M.done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'WRK {"requests": %d, "seconds": %.3f, "p50_ms": %.3f, "p95_ms": %.3f, "non2xx": %d, "socket_errors": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    errors.status, errors.connect + errors.read + errors.write + errors.timeout))
end

return M
