-- wrk script of bench/wrk.py: POST a body template with every @SEQ@ replaced, per request, by a
-- number no other request of the run gets, and write the run's figures as JSON in done().
--
-- Parameters come from the environment, which both of wrk's Lua states (the main one that
-- runs setup() and done(), and each thread's own) can read:
--   BENCH_WRK_BODY_FILE    the body template
--   BENCH_WRK_FIRST_SEQ    the run's first number; thread i takes first + i + k * threads
--   BENCH_WRK_THREADS      wrk's -t, the stride between one thread's numbers
--   BENCH_WRK_PORTS        ports of the target's host, one per replica: thread i sends to the
--                          (i mod n)-th, as a Service spreads connections over replicas
--   BENCH_WRK_OK_STATUS    the status that counts as accepted; any other is counted by code
--   BENCH_WRK_RESULT_FILE  where done() writes the JSON

wrk.method = "POST"

local first_seq = tonumber(os.getenv("BENCH_WRK_FIRST_SEQ"))
local stride = tonumber(os.getenv("BENCH_WRK_THREADS"))
local ok_status = tonumber(os.getenv("BENCH_WRK_OK_STATUS"))

-- The main state: one entry per thread, in the order of their numbers.
local threads = {}
local ports = {}
for port in string.gmatch(os.getenv("BENCH_WRK_PORTS") or "", "%d+") do
   ports[#ports + 1] = port
end

function setup(thread)
   local index = #threads
   if #ports > 0 then
      thread.addr = wrk.lookup(wrk.host, ports[index % #ports + 1])[1]
   end
   -- Globals of the thread's own state, set before its init() runs.
   thread:set("index", index)
   threads[#threads + 1] = thread
end

-- Each thread's state.
local pieces  -- the template split at each @SEQ@
sent = 0
unexpected = {}

function init(args)
   local file = assert(io.open(os.getenv("BENCH_WRK_BODY_FILE"), "rb"))
   local template = file:read("*a")
   file:close()
   pieces = {}
   local from = 1
   while true do
      local at = string.find(template, "@SEQ@", from, true)
      if at == nil then
         break
      end
      pieces[#pieces + 1] = string.sub(template, from, at - 1)
      from = at + 5
   end
   pieces[#pieces + 1] = string.sub(template, from)
   assert(#pieces > 1, "no @SEQ@ in the body template")
end

function request()
   local seq = first_seq + index + sent * stride
   sent = sent + 1
   return wrk.format(nil, nil, nil, table.concat(pieces, string.format("%.0f", seq)))
end

function response(status, headers, body)
   if status ~= ok_status then
      local code = tostring(status)
      unexpected[code] = (unexpected[code] or 0) + 1
   end
end

-- The main state again, after every thread has stopped.
local function object(fields)
   local parts = {}
   for _, field in ipairs(fields) do
      parts[#parts + 1] = string.format("%q:%s", field[1], field[2])
   end
   return "{" .. table.concat(parts, ",") .. "}"
end

local function number(value)
   return string.format("%.0f", value)
end

function done(summary, latency, requests)
   local total_sent, codes = 0, {}
   for _, thread in ipairs(threads) do
      total_sent = total_sent + thread:get("sent")
      for code, count in pairs(thread:get("unexpected")) do
         codes[code] = (codes[code] or 0) + count
      end
   end
   local statuses = {}
   for code, count in pairs(codes) do
      statuses[#statuses + 1] = { code, number(count) }
   end
   local errors = {}
   for _, kind in ipairs({ "connect", "read", "write", "status", "timeout" }) do
      errors[#errors + 1] = { kind, number(summary.errors[kind]) }
   end
   local percentiles = {
      { "min", number(latency.min) },
      { "mean", string.format("%.1f", latency.mean) },
      { "max", number(latency.max) },
   }
   for _, p in ipairs({ 50, 90, 99, 99.9 }) do
      percentiles[#percentiles + 1] = { string.format("p%g", p), number(latency:percentile(p)) }
   end
   local document = object({
      { "duration_us", number(summary.duration) },
      { "requests", number(summary.requests) },
      { "sent", number(total_sent) },
      { "threads", number(#threads) },
      { "bytes", number(summary.bytes) },
      { "errors", object(errors) },
      { "unexpected_status", object(statuses) },
      { "latency_us", object(percentiles) },
   })
   local file = assert(io.open(os.getenv("BENCH_WRK_RESULT_FILE"), "w"))
   file:write(document, "\n")
   file:close()
end
