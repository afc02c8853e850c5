-- db_read.lua - wrk script used by bench/db_read.sh.
--
-- Two modes, chosen by the arguments after wrk's `--`:
--
--   wrk ... -s db_read.lua URL -- items PREFIX MAXID
--       GET PREFIX<id> with id drawn uniformly from 1..MAXID for every
--       request (each wrk thread has its own generator, seeded apart).
--   wrk ... -s db_read.lua URL -- post BODY
--       POST BODY (Content-Type: application/json) to URL's path.
--
-- Like summary.lua it counts 2xx and every other status itself (wrk's own
-- "Non-2xx or 3xx" line only counts statuses >= 400) and prints one
-- machine-readable line that the shell script parses; latencies in
-- microseconds. It also counts 404, 429 and 5xx apart, to say why.

local threads = {}
local counter = 0

function setup(thread)
   counter = counter + 1
   thread:set("seed", counter)
   table.insert(threads, thread)
end

function init(args)
   s2xx, s404, s429, s5xx, other = 0, 0, 0, 0, 0
   mode = args[1] or "items"
   math.randomseed(os.time() * 1000 + (seed or 0) * 7919)
   if mode == "items" then
      prefix = args[2] or "/api/dbtest/items/"
      maxid = tonumber(args[3] or "10000")
      -- throw away the first draws: close seeds give close first values
      for _ = 1, 10 do math.random(1, maxid) end
   elseif mode == "post" then
      fixed = wrk.format("POST", nil,
                         { ["Content-Type"] = "application/json" }, args[2])
   else
      error("db_read.lua: mode must be 'items' or 'post', not " .. mode)
   end
end

function request()
   if mode == "items" then
      return wrk.format("GET", prefix .. math.random(1, maxid))
   end
   return fixed
end

function response(status, headers, body)
   if status >= 200 and status < 300 then
      s2xx = s2xx + 1
   elseif status == 404 then
      s404 = s404 + 1
   elseif status == 429 then
      s429 = s429 + 1
   elseif status >= 500 and status < 600 then
      s5xx = s5xx + 1
   else
      other = other + 1
   end
end

function done(summary, latency, requests)
   local ok, n404, n429, n5xx, oth = 0, 0, 0, 0, 0
   for _, t in ipairs(threads) do
      ok = ok + t:get("s2xx")
      n404 = n404 + t:get("s404")
      n429 = n429 + t:get("s429")
      n5xx = n5xx + t:get("s5xx")
      oth = oth + t:get("other")
   end
   local e = summary.errors
   io.write(string.format(
      "WEFTBENCH requests=%d duration_us=%d rps=%.2f p50_us=%.0f p90_us=%.0f " ..
      "p99_us=%.0f max_us=%.0f s2xx=%d non2xx=%d s404=%d s429=%d s5xx=%d " ..
      "sother=%d err_connect=%d err_read=%d err_write=%d err_timeout=%d\n",
      summary.requests, summary.duration,
      summary.requests / (summary.duration / 1e6),
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, ok, n404 + n429 + n5xx + oth, n404, n429, n5xx, oth,
      e.connect, e.read, e.write, e.timeout))
end
