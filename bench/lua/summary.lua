-- summary.lua - wrk script used by bench/http_hello.sh for every run.
--
-- wrk's own "Non-2xx or 3xx responses" line only counts statuses >= 400, so
-- this script counts 2xx and everything else itself, then prints one
-- machine-readable line that the shell script parses (latencies in
-- microseconds, exact rather than wrk's rounded text).  The per-response
-- callback costs wrk little: measured within run-to-run noise on nginx.

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   s2xx = 0
   other = 0
end

function response(status, headers, body)
   if status >= 200 and status < 300 then
      s2xx = s2xx + 1
   else
      other = other + 1
   end
end

function done(summary, latency, requests)
   local ok, bad = 0, 0
   for _, t in ipairs(threads) do
      ok = ok + t:get("s2xx")
      bad = bad + t:get("other")
   end
   local e = summary.errors
   io.write(string.format(
      "WEFTBENCH requests=%d duration_us=%d rps=%.2f p50_us=%.0f p90_us=%.0f " ..
      "p99_us=%.0f max_us=%.0f s2xx=%d non2xx=%d err_connect=%d err_read=%d " ..
      "err_write=%d err_timeout=%d\n",
      summary.requests, summary.duration,
      summary.requests / (summary.duration / 1e6),
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, ok, bad, e.connect, e.read, e.write, e.timeout))
end
