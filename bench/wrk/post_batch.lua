-- POST /api/events/batch/: WRK_BATCH (default 100) events a request, each with its own
-- idempotency key: {"events": [{"event", "payload", "idempotency_key"}, ...]}.
package.path = package.path .. ";" .. debug.getinfo(1, "S").source:match("@(.*/)") .. "?.lua"
done = require("report").done

local counter = 0
thread_id = 0  -- a global: setup() sets it in each thread
local size = tonumber(os.getenv("WRK_BATCH") or "100")
local threads = 0

-- wrk.format replaces wrk.headers (the -H ones: Authorization) with the table it gets.
headers = {}
function init(args)
  for name, value in pairs(wrk.headers) do headers[name] = value end
  headers["Content-Type"] = "application/json"
end

function setup(thread)
  threads = threads + 1
  thread:set("thread_id", threads)
end

function request()
  counter = counter + 1
  local items = {}
  for n = 1, size do
    items[n] = string.format(
      '{"event": "application.created", "payload": {"n": %d}, "idempotency_key": "wrk-batch-%s-%d-%d-%d"}',
      n, os.time(), thread_id, counter, n)
  end
  local body = '{"events": [' .. table.concat(items, ", ") .. ']}'
  return wrk.format("POST", nil, headers, body)
end
