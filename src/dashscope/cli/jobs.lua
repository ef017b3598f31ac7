-- The commands that submit or follow a job: MODEL (submit, follow, download), detect MODEL, and
-- the following and downloading that `wait` shares (finish). Each run(ctx) returns the exit status;
-- ctx: { command, opts, fields, raw, args, options_of, started } (main.lua). What a signal must
-- know goes to job.lua as it happens.
local dashscope = require("dashscope")
local core = require("dashscope.core") -- now(): the monotonic clock only the C core has
local args = require("dashscope.cli.args")
local job = require("dashscope.cli.job")
local library = require("dashscope.cli.library")
local report = require("dashscope.cli.report")
local text = require("dashscope.cli.text")

local jobs = {}

local now = core.now
local usage = args.usage
local PROG = text.PROG

--- Exit statuses (documented in --help); a signal (SIGINT, SIGTERM, SIGHUP) exits 128 + its number.
jobs.EXIT = { ok = 0, unexpected = 1, usage = 2, failure = 3, not_succeeded = 4 }
local EXIT = jobs.EXIT

-- How often the live status line is redrawn while waiting, seconds.
local TICK = 0.25

-- "RUNNING, 12.3 s, queue position 2, about 40.0 s left": what this client knows of the task, from
-- its progress `p` (task:progress()).
local function progress_text(p, started)
  local parts = { p.status, text.seconds(p.elapsed or now() - started) }
  if p.position then parts[#parts + 1] = "queue position " .. p.position end
  if p.expected_end then parts[#parts + 1] = "about " .. text.seconds(p.expected_end) .. " left" end
  return table.concat(parts, ", ")
end

-- Waits for the task's end, showing each change of status: the result, or nil and err. On a
-- terminal the live line is redrawn every TICK seconds (task:wait's on_tick), so that its clock
-- moves between status queries.
local function follow(task, ctx, reporter)
  local started, timeout = ctx.started, ctx.opts.timeout or dashscope.defaults.wait_timeout
  local last
  local function on_status(t, status)
    if status ~= last then
      last = status
      if reporter.live then
        reporter:show(progress_text(t:progress(), started))
      else
        reporter:say(text.task_name(t) .. ": " .. progress_text(t:progress(), started))
      end
    end
  end
  local on_tick = reporter.live and function(_, p) reporter:show(progress_text(p, started)) end or nil
  local result, err = task:wait { timeout = math.max(0, started + timeout - now()), on_status = on_status,
                                  on_tick = on_tick, tick = TICK }
  if err and err.code == "WaitTimeout" then -- said in the user's terms
    err = { code = err.code, message = string.format("task still %s after waiting %s", task:status(),
      text.seconds(timeout)), task_id = task.id }
  end
  return result, err
end

local function progress_bar(done, total, width)
  local filled = math.floor(width * math.min(done, total) / total + 0.5)
  return "[" .. string.rep("#", filled) .. string.rep("-", width - filled) .. "]"
end

-- Downloads the video to ctx.opts.output, with a progress bar on a terminal: the path, or nil, err.
local function fetch(task, ctx, reporter)
  local last_draw = -1
  local function on_progress(done, total)
    local t = now()
    if not reporter.live or (t - last_draw < 0.1 and done ~= total) then return end
    last_draw = t
    if total and total > 0 then
      reporter:show(string.format("downloading %s %3d%%  %s of %s", progress_bar(done, total, 24),
        math.floor(100 * done / total), text.bytes(done), text.bytes(total)))
    else
      reporter:show("downloading " .. text.bytes(done))
    end
  end
  local timeout = ctx.opts.timeout and math.max(0.001, ctx.started + ctx.opts.timeout - now())
  if ctx.opts.output == "-" then -- streamed to stdout as it arrives: no file, nothing to replace
    return task:download(io.stdout, { timeout = timeout, on_progress = on_progress })
  end
  return task:download(ctx.opts.output, { overwrite = ctx.opts.overwrite == true,
                                          timeout = timeout, on_progress = on_progress })
end

-- A job that did not succeed: the wait failed (exit 3), or the job ended otherwise (exit 4).
local function not_succeeded(task, ctx, reporter, err)
  if not task:ended() then -- the wait failed, not the job
    local resume = err.code == "WaitTimeout" and "\n  the task goes on; follow it with: "
      .. text.again(ctx.opts, { "wait", task.id }) or ""
    report.failure(ctx, reporter, err, text.error(err) .. resume)
    return EXIT.failure
  end
  -- --json: the task's result, which has its code, message, status and task_id
  reporter:fail(text.task_name(task) .. " ended " .. task:status() .. ": " .. text.error(err))
  if ctx.opts.json then print(task:result() and text.json(task:result()) or text.error_json(err)) end
  return EXIT.not_succeeded
end

-- -o PATH: the video downloaded; the path, or nil once the failure is said. (-o -: true.)
local function save(task, ctx, reporter)
  local path, err = fetch(task, ctx, reporter)
  if not path then
    report.failure(ctx, reporter, err)
    return nil
  end
  reporter:clear()
  if ctx.opts.output == "-" then return true end
  local ok, file = pcall(dashscope.file, path)
  reporter:say("saved " .. path .. (ok and " (" .. text.bytes(file.size) .. ")" or ""))
  return path
end

--- Follows the task to its end, prints its outcome and says how it ended: the exit status.
function jobs.finish(task, ctx, reporter)
  local result, err = follow(task, ctx, reporter)
  if not result then
    return not_succeeded(task, ctx, reporter, err)
  end
  if reporter.live then -- the live line becomes a lasting one (plain lines said it already)
    reporter:clear()
    reporter:say(text.task_name(task) .. ": " .. task:status() .. " after " .. text.seconds(now() - ctx.started))
  end
  local out = result.video_url
  if ctx.opts.output then
    local path = save(task, ctx, reporter)
    if not path then return EXIT.failure end
    if ctx.opts.output == "-" then return EXIT.ok end -- stdout holds the video, and only it
    result.path, out = path, path
  end
  print(ctx.opts.json and text.json(result) or out)
  return EXIT.ok
end

-- A path that exists: usable only with --overwrite, and when it is not a directory.
local function check_existing(ctx, path)
  local f = io.open(path, "rb")
  if not f then return end
  local readable, why = f:read(0) -- a directory opens, but does not read
  f:close()
  if readable == nil and why then
    usage("cannot write the video to " .. path .. ": " .. tostring(why), ctx.command)
  end
  if not ctx.opts.overwrite then
    usage(path .. " exists (--overwrite replaces it)", ctx.command)
  end
end

--- Before anything is sent (a job is billed): -o must be usable, so that the video is not lost.
function jobs.check_output(ctx)
  local path = ctx.opts.output
  if not path then return end
  if ctx.opts.no_wait then
    usage("--output and --no-wait do not go together (download later with: " .. PROG
      .. " wait ID -o PATH)", ctx.command)
  end
  if path == "-" then return end -- stdout
  check_existing(ctx, path)
  local probe = path .. ".dashscope-probe"
  job.probe(probe) -- (before the file exists: a signal in between removes it)
  local p, why = io.open(probe, "wb")
  if not p then
    job.probe(nil)
    usage("cannot write beside " .. path .. ": " .. tostring(why), ctx.command)
  end
  p:close()
  os.remove(probe)
  job.probe(nil)
end

--- MODEL --field ...: submit a job, then follow it (finish) unless --no-wait.
function jobs.run_model(ctx)
  jobs.check_output(ctx)
  local client = library.client(ctx)
  local reporter = report.new(ctx.opts.quiet)
  local method = ctx.command.method
  reporter:show(method .. ": submitting")
  -- From here until the task is known, a signal says that the task may exist, and how to find it.
  job.follows()
  job.submitting(ctx.command.contract.model)
  local task, err = library.call(ctx, client[method], client, ctx.fields)
  job.knows(task)
  if not task then
    report.failure(ctx, reporter, err)
    -- the model's detector ran first (emoji-v1 without boxes) and refused the image
    return err.detect and EXIT.not_succeeded or EXIT.failure
  end
  reporter:clear()
  if ctx.opts.no_wait then
    reporter:say(method .. ": submitted " .. text.task_name(task) .. "; follow it with: " .. PROG .. " wait " .. task.id)
    print(ctx.opts.json and text.json({ task_id = task.id, model = task.model, status = task:status(),
      request_id = task.request_id }) or task.id)
    return EXIT.ok
  end
  reporter:say(method .. ": submitted " .. text.task_name(task))
  return jobs.finish(task, ctx, reporter)
end

-- The model whose contract runs `detector` first to fill some of its fields (emoji for
-- emoji_detect), and those fields: { field = key of the detector's result }.
local function filled_by(detector)
  for method, contract in pairs(dashscope.models) do
    if contract.detect and contract.detect.method == detector then
      return method, contract.detect.fills
    end
  end
end

-- "passed", then what the detector found, as the options of the model it is for.
local function passed(method, r)
  print("passed")
  local model, fills = filled_by(method)
  for _, rule in ipairs(model and dashscope.models[model].fields or {}) do
    local found = fills[rule.name] and r[fills[rule.name]]
    if found then print("--" .. args.field_option(rule).long .. " " .. text.value(found)) end
  end
end

--- detect MODEL --image PATH|URL: "passed" (with what it found, as the model's options take it) or
--- "refused: why".
function jobs.run_detect(ctx)
  local client = library.client(ctx)
  local reporter = report.new(ctx.opts.quiet)
  local method = ctx.command.method
  reporter:show(method .. ": asking")
  local r, err = library.call(ctx, client[method], client, ctx.fields)
  reporter:clear()
  if not r then
    report.failure(ctx, reporter, err)
    return EXIT.failure
  end
  if ctx.opts.json then
    print(text.json(r))
  elseif r.pass then
    passed(method, r)
  else
    print("refused: " .. (r.message ~= "" and r.message or "no reason given")
      .. (r.code and " (" .. r.code .. ")" or ""))
  end
  return r.pass and EXIT.ok or EXIT.not_succeeded
end

return jobs
