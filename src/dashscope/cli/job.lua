-- The run in progress, as a signal must describe it: its context (ctx), the task it knows (and
-- whether this run follows it to its end), the model of a submit whose answer has not come back
-- (with the wall clock when it began), and the probe file jobs.lua may have beside -o for an
-- instant. The commands tell it what happens through the functions below; only this file writes
-- its record. main.lua asks it, once the run was stopped, what to say.
local text = require("dashscope.cli.text")

local job = {}

local run = {} -- ctx, task, follows, submitting, since, probe, resume

function job.start(ctx)
  run.ctx = ctx
end

function job.ctx()
  return run.ctx
end

--- This run follows its task to its end (a model command, wait): a signal says how to resume.
function job.follows()
  run.follows = true
end

--- A submit of `model` begins: until its answer, a signal says that the task may exist.
--- (One field a statement, in this order: a signal may stop the run between any two.)
function job.submitting(model)
  run.since = os.time()
  run.submitting = model
end

--- The command line that resumes this run after a signal (batch: the same command), as words.
function job.resumes_with(words)
  run.resume = words
end

--- The task this run knows (nil: the submit failed); the submit, if any, has its answer.
function job.knows(task)
  run.task = task
  run.submitting = nil
end

function job.task()
  return run.task
end

--- The probe file beside -o, while it may exist (nil once it is gone).
function job.probe(path)
  run.probe = path
end

--- After a signal: removes the probe file, if it may exist.
function job.drop_probe()
  if run.probe then os.remove(run.probe) end
end

-- What goes on without us, for a task this run knows: `stop` is "stopped by SIGINT".
local function task_text(ctx, stop, t)
  local name = text.task_name(t)
  -- pcall: a handle whose client was stopped in the middle of an answer may be half updated
  local known, ended, status = pcall(function() return t:ended(), t:status() end)
  if not known then ended, status = false, "?" end
  if not run.follows then -- status, cancel
    return stop .. " (" .. name .. "; its status: " .. text.again(ctx.opts, { "status", t.id }) .. ")"
  elseif ended and status == "SUCCEEDED" and ctx.opts.output then
    local words = { "wait", t.id, "-o", ctx.opts.output }
    if ctx.opts.overwrite then words[#words + 1] = "--overwrite" end
    return stop .. "; " .. name .. " ended SUCCEEDED; download its video with: " .. text.again(ctx.opts, words)
  elseif ended then
    return stop .. "; " .. name .. " ended " .. tostring(status) .. ": " .. text.again(ctx.opts, { "status", t.id })
  end
  local words = { "wait", t.id }
  if ctx.opts.output then words[#words + 1] = "-o"; words[#words + 1] = ctx.opts.output end
  return stop .. "; " .. name .. " goes on; follow it with: " .. text.again(ctx.opts, words)
end

--- After a signal stopped the run: `stop` ("stopped by SIGINT"), and what goes on without us,
--- with the command that finds it.
function job.stopped_text(stop)
  local ctx = run.ctx
  if run.resume then
    return stop .. "; the jobs sent go on, and the journal knows them: resume with " .. text.again(ctx.opts, run.resume)
  elseif run.task then
    return task_text(ctx, stop, run.task)
  elseif run.submitting then
    -- a minute early: the service's clock may be behind ours
    return stop .. " while submitting; the task may exist: " .. text.again(ctx.opts, { "list", "--model",
      run.submitting, "--start-time", string.format("%d", (run.since or os.time()) - 60) })
  end
  return stop
end

return job
