-- POST /api/events/: one event a request. With WRK_IDEMPOTENCY=1 in the environment each
-- request carries its own idempotency key (unique per thread and request).
package.path = package.path .. ";" .. debug.getinfo(1, "S").source:match("@(.*/)") .. "?.lua"
done = require("report").done

local counter = 0
thread_id = 0  -- a global: setup() sets it in each thread
local with_keys = os.getenv("WRK_IDEMPOTENCY") == "1"
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
  local key = ""
  if with_keys then
    key = string.format(', "idempotency_key": "wrk-%s-%d-%d"', os.time(), thread_id, counter)
  end
  local body = string.format(
    '{"event": "application.created", "payload": {"application_id": "%d-%d", "stage": "applied"}%s}',
    thread_id, counter, key)
  return wrk.format("POST", nil, headers, body)
end
