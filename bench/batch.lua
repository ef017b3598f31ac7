-- The BATCH row of the benchmark (bench/README.md, issue 13): 1,000 liveportrait jobs from a
-- manifest, run by `dashscope batch` in a process of its own (bench/batch_worker.lua: the CLI's
-- main.run, then its wall, CPU and peak RSS) against the local server with its quotas on.
-- bench/run.lua calls batch.run for the row and reads the server's view itself, as for every row;
-- this file writes the manifest, starts the process (spec/support/batch_run.lua, as the specs
-- start theirs), watches the journal's size while it runs (its largest: before the final
-- compaction) and after (the file left), and gives run.lua's worker result. It never writes
-- run.lua's tables.
local cjson = require("cjson")
local batch_run = require("spec.support.batch_run")
local shared = require("bench.shared")

local batch = {}

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- A manifest of `jobs` liveportrait lines in `dir` (remote inputs, unique per job; the local server
-- never fetches them), each video to out/NNNN.mp4: its path.
local function write_manifest(dir, jobs)
  local lines = {}
  for i = 1, jobs do
    lines[i] = cjson.encode { model = "liveportrait", output = ("out/%04d.mp4"):format(i),
      image_url = ("http://example.com/bench/face-%d.png"):format(i),
      audio_url = ("http://example.com/bench/speech-%d.wav"):format(i) }
  end
  local path = dir .. "/jobs.jsonl"
  local f = assert(io.open(path, "w"))
  f:write(table.concat(lines, "\n"), "\n")
  f:close()
  return path
end

-- The --json events of the run: the last summary, and the number of each kind.
local function read_events(text)
  local s, kinds = nil, {}
  for line in text:gmatch("[^\n]+") do
    local ok, e = pcall(cjson.decode, line)
    if ok and type(e) == "table" and e.event then
      kinds[e.event] = (kinds[e.event] or 0) + 1
      if e.event == "summary" then s = e end
    end
  end
  return s, kinds
end

-- The process to its end, the journal's size sampled every 0.2 s: the largest seen, or nil when
-- the deadline passed first (the process is then killed).
local function watch(run, journal, seconds)
  local peak, deadline = 0, os.time() + seconds
  while not run:status() do
    if os.time() > deadline then
      run:kill()
      return nil
    end
    peak = math.max(peak, batch_run.size(journal) or 0)
    batch_run.sleep(0.2)
  end
  return peak
end

-- The worker result run.lua reads, from the process's figures and its events.
local function result(w, fig, events, kinds, journal)
  local counts = events and events.counts or {}
  local finished = counts.done or kinds.saved or 0
  local errors = {}
  if fig.status ~= 0 then errors["exit " .. tostring(fig.status)] = 1 end
  if (counts.failed or 0) > 0 then errors.failed = counts.failed end
  if (counts.ambiguous or 0) > 0 then errors.ambiguous = counts.ambiguous end
  return { wall = fig.wall, cpu = fig.user + fig.system, user = fig.user, system = fig.system,
           maxrss = fig.maxrss, finished = finished, submitted = kinds.submitted, errors = errors,
           ideal = shared.ideal(w.jobs, w.quota_rate, w.running), journal = journal,
           wait_mode = "dashscope batch MANIFEST --json, one process (BATCH)" }
end

--- Runs the row `w` ({ jobs, quota_rate, running }): a result as run.lua's run_worker gives, with
--- the quota-bound `ideal` and `journal` = { peak, final, jobs } (bytes). `ctx`: { lua = the
--- interpreter, wrap = a command prefix for the process ("taskset -c 0" or ""), seconds = how long
--- it may take }.
function batch.run(w, ctx)
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. quote(dir .. "/out")))
  local manifest = write_manifest(dir, w.jobs)
  local figures = dir .. "/figures.json"
  local run = batch_run.start(dir, { "batch", manifest, "--json" },
    { DASHSCOPE_API_KEY = os.getenv("DASHSCOPE_TEST_API_KEY"), DASHSCOPE_HTTP_BASE_URL = os.getenv("DASHSCOPE_TEST_BASE_URL"),
      BENCH_BATCH_FIGURES = figures },
    ("%s %s bench/batch_worker.lua"):format(ctx.wrap, quote(ctx.lua)))
  local peak = watch(run, manifest .. ".journal", ctx.seconds)
  local ok, fig = pcall(cjson.decode, batch_run.read(figures) or "")
  local events, kinds = read_events(run:stdout())
  local stderr = run:stderr()
  local final = batch_run.size(manifest .. ".journal")
  os.execute("rm -rf " .. quote(dir))
  if not peak then return { failed = ("dashscope batch did not finish within %d s"):format(ctx.seconds) } end
  if not ok or type(fig) ~= "table" then
    return { failed = "dashscope batch left no figures: " .. stderr:sub(1, 300) }
  end
  return result(w, fig, events, kinds, { peak = math.max(peak, final or 0), final = final, jobs = w.jobs })
end

--- The note under the table for the row's result `r` (run.lua's row record).
function batch.note(r)
  local w, j, by = r.w, r.journal or {}, {}
  for name, n in pairs(r.throttled_by or {}) do by[#by + 1] = name .. " " .. n end
  table.sort(by)
  local per_job = function(bytes) return bytes and ("%.0f B"):format(bytes / w.jobs) or "—" end
  -- The floor the client's own quota sets: each window of `rate` submits lasts 1 s + its guard.
  local guard = require("dashscope.limiter").GUARD
  local floor = math.max(0, w.jobs - w.quota_rate) / w.quota_rate * (1 + guard) + w.running
  return ("- %s: %d jobs from a manifest, `dashscope batch` in one process; quota-bound ideal (%d − %d)/%d s"
    .. " + %g s = %.2f s; the client's quota windows keep a %g s guard (limiter.lua), a floor of %.2f s"
    .. " (%.4f× the ideal), and the batch took %.4f× that floor; journal %s per job at its largest (%s,"
    .. " before the final compaction), %s per job after (%s); 429s %d%s."):format(w.id, w.jobs, w.jobs,
    w.quota_rate, w.quota_rate, w.running, r.ideal, guard, floor, floor / r.ideal, r.wall / floor,
    per_job(j.peak), tostring(j.peak), per_job(j.final), tostring(j.final), r.throttled,
    #by > 0 and " (" .. table.concat(by, ", ") .. ")" or "")
end

return batch
