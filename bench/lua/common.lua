-- Shared by the per-format wrk scripts: POST one fixed body, count non-2xx answers in a `response`
-- hook, and print one JSON line (prefixed BENCH_RESULT) from `done` for bench/run.py to read.
-- The body file comes from the environment (BENCH_BODY), the client key from BENCH_KEY.
local M = {}

function M.post(path, headers)
  local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
  wrk.body = f:read("*a")
  f:close()
  wrk.method = "POST"
  wrk.path = path
  local key = os.getenv("BENCH_KEY") or "sk-bench"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. key
  wrk.headers["x-api-key"] = key
  for k, v in pairs(headers or {}) do wrk.headers[k] = v end
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

non2xx = 0
first_bad = nil

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    if first_bad == nil then first_bad = status .. " " .. string.sub(body or "", 1, 200) end
  end
end

local function q(s) return '"' .. s:gsub('[%c"\\]', " ") .. '"' end

function done(summary, latency, requests)
  local bad, sample = 0, ""
  for _, t in ipairs(threads) do
    bad = bad + (t:get("non2xx") or 0)
    local fb = t:get("first_bad")
    if fb and sample == "" then sample = fb end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"non2xx":%d,"connect":%d,"read":%d,'
    .. '"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"mean_us":%.1f,'
    .. '"max_us":%d,"first_bad":%s}\n',
    summary.requests, summary.duration, summary.bytes, bad, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean,
    latency.max, q(sample)))
end

return M
