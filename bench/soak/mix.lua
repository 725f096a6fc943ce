-- mix.lua -- wrk script for bench/soak.sh: a mix of GET /small, GET /large (64 KiB) and
-- POST /post (SOAK_POST_BYTES) over wrk's keep-alive connections, every answer checked.
--
-- Requests follow a fixed 10-step cycle shared by the thread's connections (6 small,
-- 2 large, 2 post), so each connection carries all three kinds. A 2xx answer is told
-- apart by its body (the backends write the kind in it) and checked: the right length,
-- and for a POST the byte count the backend saw. Other statuses are counted by status;
-- the kind of a failed request is in fulcrum's access log, not here. done() prints one
-- line "soak-wrk key=value ..." that bench/soak/report.py reads.

local post_bytes = tonumber(os.getenv("SOAK_POST_BYTES") or "2048")
local large_bytes = tonumber(os.getenv("SOAK_LARGE_BYTES") or "65536")
local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   local post = wrk.format("POST", "/post", {["Content-Type"] = "application/octet-stream"},
                           string.rep("p", post_bytes))
   local small = wrk.format("GET", "/small")
   local large = wrk.format("GET", "/large")
   cycle = {small, large, small, post, small, small, large, small, post, small}
   n = 0
   ok_small, ok_large, ok_post, bad_body = 0, 0, 0, 0
   by_status = {}
   first_bad = ""
end

function request()
   n = n + 1
   return cycle[(n - 1) % #cycle + 1]
end

local function note_bad(what)
   bad_body = bad_body + 1
   if first_bad == "" then
      first_bad = what
   end
end

function response(status, headers, body)
   if status < 200 or status > 299 then
      by_status[status] = (by_status[status] or 0) + 1
      return
   end
   if body:sub(1, 6) == "small " then
      ok_small = ok_small + 1
   elseif body:sub(1, 5) == "post " then
      if body:match(" got (%d+) bytes") == tostring(post_bytes) then
         ok_post = ok_post + 1
      else
         note_bad("post answer: " .. body:sub(1, 60))
      end
   elseif #body == large_bytes then
      ok_large = ok_large + 1
   else
      note_bad("unexpected 2xx body of " .. #body .. " bytes: " .. body:sub(1, 40))
   end
end

function done(summary, latency, requests)
   local t = {ok_small = 0, ok_large = 0, ok_post = 0, bad_body = 0}
   local statuses = {}
   local bad = ""
   for _, thread in ipairs(threads) do
      for k, _ in pairs(t) do
         t[k] = t[k] + thread:get(k)
      end
      for code, count in pairs(thread:get("by_status")) do
         statuses[code] = (statuses[code] or 0) + count
      end
      if bad == "" then
         bad = thread:get("first_bad")
      end
   end
   local e = summary.errors
   local line = string.format(
      "soak-wrk requests=%d bytes=%d duration_us=%d connect=%d read=%d write=%d timeout=%d" ..
      " status=%d ok_small=%d ok_large=%d ok_post=%d bad_body=%d p50_us=%d p99_us=%d max_us=%d",
      summary.requests, summary.bytes, summary.duration, e.connect, e.read, e.write,
      e.timeout, e.status, t.ok_small, t.ok_large, t.ok_post, t.bad_body,
      latency:percentile(50), latency:percentile(99), latency.max)
   for code, count in pairs(statuses) do
      line = line .. string.format(" http_%d=%d", code, count)
   end
   io.write(line .. "\n")
   if bad ~= "" then
      io.write("soak-wrk first_bad_body=" .. bad:gsub("%c", " ") .. "\n")
   end
end
