-- The SHARED row of the benchmark (bench/README.md): several processes on one account, sharing its
-- quotas through a real redis-server (issue 12). bench/run.lua calls shared.run for the row and
-- reads the server's view itself, as for every row; this file starts and stops the redis-server,
-- measures what the store adds to a submit (bench/store_probe.lua, in a process of its own), runs
-- the fleet (spec/support/fleet.lua: each process a spec/support/quota_worker.lua with the
-- client's default settings and DASHSCOPE_QUOTA_STORE) and sums what the processes report, in the
-- shape of run.lua's worker result. It never writes run.lua's tables.
local cjson = require("cjson")
local redis = require("spec.support.redis")
local fleet = require("spec.support.fleet")

local shared = {}

-- Submits per process of the store probe, for each of its two clients.
local PROBE_SUBMITS = 50

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

--- The quota-bound ideal of `jobs` jobs of `running` seconds submitted at `rate` per second: the
--- first `rate` go at once, the rest `rate` a second, and the last runs to its end.
function shared.ideal(jobs, rate, running)
  return math.max(0, jobs - rate) / rate + running
end

shared.throttled = fleet.throttled

-- The store probe (bench/store_probe.lua) against `url`, the server's quotas off: per submit,
-- what it took with the store over the median without it. { median, max, store, none } seconds,
-- or nil and why.
local function probe(ctx, url)
  ctx.control("POST", "/reset")
  ctx.control("POST", "/config", { rate_limits = false, concurrency = 0,
    durations = { pending = 0, pre_processing = 0, running = 0.05, post_processing = 0 } })
  local p = assert(io.popen(("%s %s bench/store_probe.lua %s %d 2>&1"):format(ctx.wrap, quote(ctx.lua),
    quote(url), PROBE_SUBMITS)))
  local out = p:read("a")
  p:close()
  local line = out:match("(%b{})%s*$")
  local ok, times = pcall(cjson.decode, line or "")
  if not ok or type(times) ~= "table" or not times.store then return nil, "the store probe failed: " .. out end
  local median = ctx.median
  local none = median(times["local"])
  local extra = {}
  for i, t in ipairs(times.store) do extra[i] = t - none end
  return { median = median(extra), max = ctx.maximum(extra), store = median(times.store), none = none }
end

-- Sums the processes' reports into run.lua's worker result (nil and why when one did not finish).
local function sum(outcomes, w)
  local c = { finished = 0, submitted = 0, errors = {}, cpu = 0, user = 0, system = 0, submit_cpu = 0, maxrss = 0,
              warnings = 0,
              wait_mode = ("client:wait_all(tasks) in each of %d processes sharing one Redis"):format(w.processes) }
  local start, submitted, finish
  for tag, o in pairs(outcomes) do
    local d = o.done
    if not d then return nil, tag .. " did not finish: " .. o.stderr:sub(1, 200) end
    for _, job in pairs(o.jobs) do
      if job.id then c.submitted = c.submitted + 1 end
      if job.status == "SUCCEEDED" then
        c.finished = c.finished + 1
      else
        c.errors[job.error or "?"] = (c.errors[job.error or "?"] or 0) + 1
      end
    end
    c.warnings = c.warnings + #o.warnings
    c.user, c.system, c.submit_cpu = c.user + d.user, c.system + d.system, c.submit_cpu + d.submit_cpu
    c.cpu, c.maxrss = c.user + c.system, math.max(c.maxrss, d.maxrss or 0)
    start = math.min(start or d.start, d.start)
    submitted = math.max(submitted or d.submitted, d.submitted)
    finish = math.max(finish or d.finish, d.finish)
  end
  c.wall, c.submit_wall = finish - start, submitted - start
  return c
end

--- Runs the row `w` ({ processes, jobs, running, quota_rate }): a result as run.lua's run_worker
--- gives, with the quota-bound `ideal`, the store's `latency` and the on_warning calls `warnings`.
--- `ctx`: { control = run.lua's control, configure = resets the server for the row, lua = the
--- interpreter, wrap = a command prefix for each client process ("taskset -c 0" or ""), seconds =
--- how long the fleet may take, median and maximum = run.lua's, of a list }.
function shared.run(w, ctx)
  local server, why = redis.start()
  if not server then return { na = why } end
  -- the probe's reservations (1000/s) under a prefix of their own: kept under the fleet's, they
  -- would hold its first submits back by a window
  local latency, perr = probe(ctx, server.url .. "?prefix=probe")
  ctx.configure()
  local names = {}
  for i = 1, w.processes do names[i] = "shared" .. i end
  local run = fleet.start({ { tags = names, jobs = w.jobs // w.processes, model = "liveportrait",
                              wrap = ctx.wrap, env = { DASHSCOPE_QUOTA_STORE = server.url } } }, ctx.seconds)
  local ended = run:wait(ctx.seconds + 10)
  local c, cerr = sum(run:outcomes(), w)
  run:remove()
  server:stop()
  if not ended or not c then
    return { failed = not ended and ("the fleet did not finish within %d s"):format(ctx.seconds) or cerr }
  end
  c.ideal = shared.ideal(w.jobs, w.quota_rate, w.running)
  c.latency, c.latency_error = latency, perr
  return c
end

--- The note under the table for the row's result `r` (run.lua's row record).
function shared.note(r)
  local w, by = r.w, {}
  for name, n in pairs(r.throttled_by or {}) do by[#by + 1] = name .. " " .. n end
  table.sort(by)
  local lat = r.latency
  local latency = lat and ("median %.2f ms, max %.2f ms (a submit took %.2f ms with the store and %.2f ms"
    .. " without, medians of %d each: bench/store_probe.lua)"):format(lat.median * 1000, lat.max * 1000,
    lat.store * 1000, lat.none * 1000, PROBE_SUBMITS) or "unmeasured: " .. tostring(r.latency_error)
  return ("- %s: %d processes × %d jobs, one Redis; quota-bound ideal (%d − %d)/%d s + %g s = %.2f s;"
    .. " 429s %d%s; on_warning calls %d; what the store adds to a submit: %s."):format(w.id, w.processes,
    w.jobs // w.processes, w.jobs, w.quota_rate, w.quota_rate, w.running, r.ideal, r.throttled,
    #by > 0 and " (" .. table.concat(by, ", ") .. ")" or "", r.warnings or 0, latency)
end

return shared
