-- batch MANIFEST: every job of a manifest (manifest.lua reads it) through one client and one
-- journal (client:journal), so that running the same command again after any interruption is a
-- resume: nothing already created is submitted again, what runs is waited for, what is missing is
-- downloaded. Threads (threads.lua): one submitter, in manifest order, within the quotas; the
-- tasks followed through the client's callbacks; downloaders as jobs end; a ticker for the view
-- (batch_view.lua). This file owns the run's tallies; what a job is, the journal's.
local dashscope = require("dashscope")
local core = require("dashscope.core")
local args = require("dashscope.cli.args")
local batch_view = require("dashscope.cli.batch_view")
local signal_record = require("dashscope.cli.job") -- what a signal says: the command that resumes
local jobs = require("dashscope.cli.jobs")
local library = require("dashscope.cli.library")
local report = require("dashscope.cli.report")
local manifest = require("dashscope.cli.manifest")
local threads = require("dashscope.cli.threads")

local batch = {}

local EXIT, usage = jobs.EXIT, args.usage

--- The batch command's own options (commands.lua adds the global ones).
batch.OPTIONS = {
  { long = "journal", key = "journal", arg = "PATH",
    doc = "where the batch's journal is kept (default: MANIFEST.journal); running the command again with it resumes" },
  { long = "skip-bad", key = "skip_bad", doc = "run the good lines when some are bad (default: nothing is sent)" },
  { long = "retry-failed", key = "retry_failed", doc = "submit again the jobs that ended FAILED (or that the service refused)" },
  { long = "overwrite", key = "overwrite", doc = "replace an output file that exists (default: such a line is bad)" },
  { long = "downloads", key = "downloads", arg = "N", convert = function(s) return tonumber(s) or s end,
    doc = "videos downloaded at once (default 4)" },
  { long = "settle", key = "settle", arg = "S", convert = args.seconds,
    doc = "seconds after a submit that got no answer before a task list without its task means it was never created (default 15)" },
}

-- How often the live view is redrawn, and how long an idle downloader naps, seconds.
local TICK, NAP = 0.25, 0.05
-- Times one job is settled from the task list (or settled and sent again) in a run, at most.
local SETTLE_TRIES = 10

-- Says each bad line: "MANIFEST: line N: why".
local function say_bad(path, bads)
  for _, b in ipairs(bads) do report.complain(path .. ": " .. b.message) end
end

-- The manifest, checked: open, every line read; a bad line is a usage error unless --skip-bad.
local function checked(ctx)
  local path = ctx.args[1]
  local m, why = manifest.open(path)
  if not m then usage("cannot read " .. path .. ": " .. tostring(why), ctx.command) end
  local count, bads = m:check()
  return m, count, bads
end

-- The run's state: tallies and queues, written here only.
local function new_run(ctx, client, journal, view, total)
  return {
    ctx = ctx, client = client, journal = journal, view = view, total = total,
    counts = { queued = total, submitting = 0, running = 0, downloading = 0, done = 0, failed = 0, ambiguous = 0 },
    downloads = {}, following = 0, submitting_done = false,
    failures = {}, ambiguous = {}, not_succeeded = 0, world_failed = 0,
  }
end

local function move(run, from, to)
  if from then run.counts[from] = run.counts[from] - 1 end
  if to then run.counts[to] = run.counts[to] + 1 end
  run.view:counts(run.counts)
end

local function failed(run, entry, from, err, task_id, ended)
  move(run, from, "failed")
  local f = { key = entry.key, line = entry.line, task_id = task_id, error = { code = err.code, message = err.message } }
  run.failures[#run.failures + 1] = f
  if ended then run.not_succeeded = run.not_succeeded + 1 else run.world_failed = run.world_failed + 1 end
  run.view:event { kind = "failed", key = entry.key, line = entry.line, task_id = task_id, error = f.error }
end

local function finished(run, from)
  move(run, from, "done")
end

-- A job with a task that ended SUCCEEDED: queued for a downloader, or done when it has no output.
local function succeeded(run, entry, from)
  if entry.output then
    run.downloads[#run.downloads + 1] = entry
    move(run, from, "downloading")
  else
    finished(run, from)
  end
end

-- Follows job `entry`'s task `t` to its end through the client's callbacks.
local function follow(run, entry, t)
  run.following = run.following + 1
  run.client:watch(t, { on_done = function(task, result, err)
    run.following = run.following - 1
    if result then
      run.view:event { kind = "ended", key = entry.key, line = entry.line, task_id = task.id, status = task:status(),
                       video_url = result.video_url }
      succeeded(run, entry, "running")
    else
      failed(run, entry, "running", err, task.id, task:ended())
    end
  end })
end

-- Settles an ambiguous job: waits (yielding) while the journal says asking later may settle it.
-- The state it settles in ("submitted": its task was found; "new": it was never created), or nil
-- and err.
local function settle(run, entry)
  local err
  for _ = 1, SETTLE_TRIES do
    local state
    state, err = run.journal:resolve(entry.key)
    if state then
      local job = run.journal:job(entry.key)
      run.view:event { kind = "resolved", key = entry.key, line = entry.line, task_id = job.task_id,
                       status = state == "new" and "never created" or nil }
      return state
    end
    if not err.retryable then return nil, err end
    threads.sleep(err.retry_in or 1)
  end
  return nil, err -- (a task list that keeps failing: the job stays ambiguous for the next run)
end

-- Submits one job (new, or settled as never created): follows its task, or says why not.
local function submit(run, entry)
  move(run, "queued", "submitting")
  local t, err = run.journal:submit(entry.key, entry.method, entry.fields)
  -- sent, its answer lost (task_may_exist): settled from the list before the next submit, so that
  -- no two jobs of this run are ever ambiguous at once
  local rounds = 0
  while not t and (err.task_may_exist or (err.code == "Ambiguous" and err.retryable)) and rounds < SETTLE_TRIES do
    rounds = rounds + 1 -- (a service that drops every submit unread: given up, not resent for ever)
    local state
    state, err = settle(run, entry)
    if state then t, err = run.journal:submit(entry.key, entry.method, entry.fields) end
  end
  if not t then
    if err.code == "Ambiguous" or err.task_may_exist then
      move(run, "submitting", "ambiguous")
      run.ambiguous[#run.ambiguous + 1] = { key = entry.key, line = entry.line, error = { code = err.code, message = err.message },
                                            candidates = err.candidates }
      run.world_failed = run.world_failed + 1
      run.view:event { kind = "ambiguous", key = entry.key, line = entry.line, error = { code = err.code, message = err.message } }
    else
      failed(run, entry, "submitting", err, err.task_id, false)
    end
    return
  end
  move(run, "submitting", "running")
  run.view:event { kind = "submitted", key = entry.key, line = entry.line, task_id = t.id }
  follow(run, entry, t)
end

-- One manifest entry, as its journal says it stands.
local function take(run, entry)
  local journal, job = run.journal, run.journal:job(entry.key)
  local state = job and job.state
  if state == "ambiguous" then state = settle(run, entry) or "ambiguous" end
  if run.ctx.opts.retry_failed and (state == "refused" or (state == "ended" and job.status ~= "SUCCEEDED")) then
    journal:retry(entry.key)
    state = "new"
  end
  if state == "saved" and entry.output and job.path == entry.output and core.file_check(entry.output) == job.bytes then
    run.view:event { kind = "skipped", key = entry.key, line = entry.line, task_id = job.task_id, path = entry.output }
    return finished(run, "queued")
  elseif state == "saved" or (state == "ended" and job.status == "SUCCEEDED") then
    return succeeded(run, entry, "queued")
  elseif state == "ended" or state == "refused" then
    return failed(run, entry, "queued", job.error or { code = "TaskFailed", message = "the task ended " .. tostring(job.status) },
      job.task_id, true)
  elseif state == "submitted" then
    move(run, "queued", "running")
    run.view:event { kind = "resumed", key = entry.key, line = entry.line, task_id = job.task_id }
    return follow(run, entry, journal:task(entry.key))
  end
  return submit(run, entry)
end

local function submitter(run, m, skip)
  for entry in m:each() do
    if entry and not skip[entry.line] then take(run, entry) end
  end
  run.submitting_done = true
end

local function all_done(run)
  return run.submitting_done and run.following == 0 and #run.downloads == 0 and run.counts.downloading == 0
end

local function downloader(run)
  while not all_done(run) do
    local entry = table.remove(run.downloads, 1)
    if entry then
      local path, err = run.journal:download(entry.key, entry.output, { overwrite = run.ctx.opts.overwrite == true })
      local job = run.journal:job(entry.key)
      if path then
        run.view:event { kind = "saved", key = entry.key, line = entry.line, task_id = job.task_id, path = path, bytes = job.bytes }
        finished(run, "downloading")
      else
        failed(run, entry, "downloading", err, job and job.task_id, false)
      end
    else
      threads.sleep(NAP)
    end
  end
end

local function ticker(run)
  while not all_done(run) do
    run.view:tick(core.now())
    threads.sleep(TICK)
  end
end

-- Options given as words, checked as the command line's.
local function check_options(ctx)
  local o = ctx.opts
  if o.downloads ~= nil and (type(o.downloads) ~= "number" or o.downloads % 1 ~= 0 or o.downloads < 1 or o.downloads > 64) then
    usage("--downloads expects a whole number from 1 to 64 (got '" .. tostring(o.downloads) .. "')", ctx.command)
  end
  if o.settle ~= nil and o.settle > 3600 then -- (a number of seconds: args.seconds)
    usage("--settle expects seconds from 0 to 3600 (got '" .. tostring(o.settle) .. "')", ctx.command)
  end
end

-- Can a directory take a new file? Probed once per directory (a file created, then removed).
local function writable(dir, seen)
  if seen[dir] == nil then
    local probe = dir .. "/.dashscope-probe-" .. (core.random_hex(4) or "0")
    local f = io.open(probe, "wb")
    if f then f:close(); os.remove(probe) end
    seen[dir] = f ~= nil
  end
  return seen[dir]
end

-- Before anything is sent (a job is billed): the lines whose video would have nowhere to go, as
-- bad lines. A job not yet sent must not find a file at its output (without --overwrite), and its
-- directory must take new files.
local function outputs_unusable(ctx, m, journal)
  local bads, seen = {}, {}
  for entry in m:each() do
    local job = entry and entry.output and journal:job(entry.key)
    local fresh = entry and entry.output and (not job or job.state == "new")
    if fresh and not ctx.opts.overwrite and core.file_exists(entry.output) then
      bads[#bads + 1] = { line = entry.line, message = "line " .. entry.line .. ": " .. entry.output
        .. " exists (--overwrite replaces it)" }
    elseif fresh and not writable(entry.output:match("^(.*)/[^/]*$") or ".", seen) then
      bads[#bads + 1] = { line = entry.line, message = "line " .. entry.line .. ": cannot write " .. entry.output
        .. " (its directory is missing or read-only)" }
    end
  end
  return bads
end

-- Runs the threads to the end; the summary, the journal compacted when every job is final; the
-- exit status.
local function finish(run, started)
  local c = run.counts
  run.view:summary { counts = c, elapsed = core.now() - started, failures = run.failures, ambiguous = run.ambiguous,
                     journal = run.journal.path, journal_bytes = run.journal:size() }
  if c.queued == 0 and c.running == 0 and c.downloading == 0 and c.ambiguous == 0 and run.world_failed == 0 then
    run.journal:compact()
  end
  run.journal:close()
  run.view:close()
  if run.world_failed > 0 then return EXIT.failure end
  if run.not_succeeded > 0 then return EXIT.not_succeeded end
  return EXIT.ok
end

--- batch MANIFEST: the exit status.
function batch.run(ctx)
  check_options(ctx)
  local started = core.now()
  local m, count, bads = checked(ctx)
  -- Room for the downloads (on the result host) beside the service's connections: with the
  -- default 6 in all, the polls' connections and the downloads' evicted each other, and each
  -- video came over a new connection (H2 counted 860 connections for 1,000 jobs).
  local downloads = ctx.opts.downloads or 4
  local client = library.client(ctx, { sleep = threads.client_sleep,
                                       max_connections = dashscope.defaults.max_connections + downloads })
  local journal, err = client:journal(ctx.opts.journal or ctx.args[1] .. ".journal", { settle = ctx.opts.settle })
  if not journal then
    report.failure(ctx, nil, err)
    return EXIT.failure
  end
  local unusable = outputs_unusable(ctx, m, journal) -- good lines to the manifest: in `count`
  for _, b in ipairs(unusable) do bads[#bads + 1] = b end
  local skip = {}
  if #bads > 0 then
    table.sort(bads, function(a, b) return a.line < b.line end)
    say_bad(ctx.args[1], bads)
    if not ctx.opts.skip_bad then
      journal:close()
      usage(#bads .. " bad line" .. (#bads > 1 and "s" or "") .. " in " .. ctx.args[1]
        .. "; nothing was sent (--skip-bad runs the others)", ctx.command)
    end
    for _, b in ipairs(bads) do skip[b.line] = true end
  end
  local total = count - #unusable
  local view = batch_view.new { total = total, live = not ctx.opts.quiet and core.isatty(2),
                                json = ctx.opts.json, quiet = ctx.opts.quiet }
  local again = { "batch", ctx.args[1] }
  if ctx.opts.journal then again[3], again[4] = "--journal", ctx.opts.journal end
  signal_record.resumes_with(again)
  local run = new_run(ctx, client, journal, view, total)
  local scheduler = threads.new(client)
  scheduler:spawn(submitter, run, m, skip)
  for _ = 1, downloads do scheduler:spawn(downloader, run) end
  scheduler:spawn(ticker, run)
  scheduler:run()
  m:close()
  return finish(run, started)
end

return batch
