-- referral.lua - wrk script used by bench/referral.sh.
--
-- Two modes, chosen by the arguments after wrk's `--`:
--
--   wrk ... -s referral.lua URL -- register TAG CODE [CODE...]
--       POST /api/auth/register with a new account per request:
--       username "<TAG>t<thread>n<counter>" (at most 32 characters), email
--       "<username>@example.com", a fixed password, and "referral_code" set
--       to the CODEs in turn (request k of a thread uses CODE number
--       k mod #CODEs). TAG must differ between runs (usernames are unique).
--   wrk ... -s referral.lua URL -- board LIMIT MAXOFFSET
--       GET /api/referral/leaderboard?limit=LIMIT&offset=<random 0..MAXOFFSET>
--       for every request (each wrk thread has its own generator).
--
-- Like db_read.lua it counts 2xx and every other status itself and prints
-- one machine-readable WEFTBENCH line (same keys) that the shell script
-- parses; latencies in microseconds. 409 (a name taken: should never
-- happen) is counted under "other".

local threads = {}
local counter = 0

function setup(thread)
   counter = counter + 1
   thread:set("seed", counter)
   table.insert(threads, thread)
end

function init(args)
   s2xx, s404, s429, s5xx, other = 0, 0, 0, 0, 0
   mode = args[1] or "board"
   n = 0
   math.randomseed(os.time() * 1000 + (seed or 0) * 7919)
   if mode == "register" then
      tag = args[2] or error("referral.lua: register needs TAG CODE...")
      codes = {}
      for i = 3, #args do table.insert(codes, args[i]) end
      if #codes == 0 then error("referral.lua: register needs at least one CODE") end
      headers = { ["Content-Type"] = "application/json" }
   elseif mode == "board" then
      limit = tonumber(args[2] or "20")
      maxoff = tonumber(args[3] or "9980")
      for _ = 1, 10 do math.random(0, maxoff) end
   else
      error("referral.lua: mode must be 'register' or 'board', not " .. mode)
   end
end

function request()
   n = n + 1
   if mode == "register" then
      local user = string.format("%st%dn%d", tag, seed or 0, n)
      local body = string.format(
         '{"email":"%s@example.com","username":"%s","display_name":"Bench %d %d",' ..
         '"password":"bench-password-%d","referral_code":"%s"}',
         user, user, seed or 0, n, n, codes[(n % #codes) + 1])
      return wrk.format("POST", "/api/auth/register", headers, body)
   end
   return wrk.format("GET", "/api/referral/leaderboard?limit=" .. limit ..
                     "&offset=" .. math.random(0, maxoff))
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
   -- rps counts 2xx answers only: a refused registration is not a signup
   io.write(string.format(
      "WEFTBENCH requests=%d duration_us=%d rps=%.2f ok_rps=%.2f p50_us=%.0f p90_us=%.0f " ..
      "p99_us=%.0f max_us=%.0f s2xx=%d non2xx=%d s404=%d s429=%d s5xx=%d " ..
      "sother=%d err_connect=%d err_read=%d err_write=%d err_timeout=%d\n",
      summary.requests, summary.duration,
      summary.requests / (summary.duration / 1e6),
      ok / (summary.duration / 1e6),
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, ok, n404 + n429 + n5xx + oth, n404, n429, n5xx, oth,
      e.connect, e.read, e.write, e.timeout))
end
