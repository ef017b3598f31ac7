-- The commands about tasks that exist: status ID, wait ID, cancel ID and list. Each run(ctx)
-- returns the exit status (jobs.EXIT); ctx as in jobs.lua.
local dashscope = require("dashscope")
local job = require("dashscope.cli.job")
local jobs = require("dashscope.cli.jobs")
local library = require("dashscope.cli.library")
local report = require("dashscope.cli.report")
local text = require("dashscope.cli.text")

local tasks = {}

local EXIT = jobs.EXIT

-- A handle for the command's ID argument.
local function task_of(ctx, client)
  local task = library.call(ctx, client.task, client, ctx.args[1])
  job.knows(task)
  return task
end

-- What status prints below the status, when the result has it.
local DETAILS = { "video_url", "code", "message", "submit_time", "scheduled_time", "end_time" }

-- The command's task, asked once (task:poll or task:cancel): the task and the answer, or nil once
-- the failure is said.
local function ask(ctx, method)
  local client = library.client(ctx)
  local task = task_of(ctx, client)
  local answer, err = task[method](task)
  if not answer then
    report.failure(ctx, nil, err)
    return nil
  end
  return task, answer
end

--- status ID: one query.
function tasks.status(ctx)
  local task, status = ask(ctx, "poll")
  if not task then return EXIT.failure end
  local result = task:result()
  if ctx.opts.json then
    print(text.json(result or { task_id = task.id, status = status }))
  else
    print(status)
    for _, k in ipairs(DETAILS) do
      if result and result[k] ~= nil then print(k .. ": " .. text.value(result[k])) end
    end
  end
  return (task:ended() and status ~= "SUCCEEDED") and EXIT.not_succeeded or EXIT.ok
end

--- wait ID [-o PATH]: follow a task submitted earlier, or by another process.
function tasks.wait(ctx)
  jobs.check_output(ctx)
  local client = library.client(ctx)
  local reporter = report.new(ctx.opts.quiet)
  job.follows()
  local task = task_of(ctx, client)
  reporter:say("following " .. text.task_name(task))
  local status, err = task:poll() -- the real status first (a new handle only says PENDING)
  if not status then
    report.failure(ctx, reporter, err)
    return EXIT.failure
  end
  return jobs.finish(task, ctx, reporter)
end

--- cancel ID
function tasks.cancel(ctx)
  local task = ask(ctx, "cancel")
  if not task then return EXIT.failure end
  print(ctx.opts.json and text.json(task:result()) or task:status())
  return EXIT.ok
end

-- A model command's name stands for its model ("emoji" for "emoji-v1").
local function model_name(name)
  local contract = dashscope.models[name]
  return contract and contract.model or name
end

local function list_row(item)
  local created = tonumber(item.gmt_create)
  created = created and os.date("%Y-%m-%d %H:%M:%S", math.floor(created / 1000)) or ""
  return string.format("%-36s  %-15s  %-20s  %s", tostring(item.task_id), tostring(item.status),
    tostring(item.model_name), created)
end

-- Prints the list's items: show(item), and head() once, before the first or at the end. The header
-- comes with the first answer, once the module has checked every filter: a usage error or a
-- failure prints nothing on stdout before it (but --json's error object).
local function printer(ctx)
  local headed = ctx.opts.json -- --json: one object per task and line (JSON Lines), no header
  local function head()
    if headed then return end
    headed = true
    print(string.format("%-36s  %-15s  %-20s  %s", "TASK_ID", "STATUS", "MODEL", "CREATED (local time)"))
  end
  local function show(item)
    head()
    print(ctx.opts.json and text.json(item) or list_row(item))
  end
  return show, head
end

-- list --all: every page.
local function list_all(ctx, client, reporter, filter)
  local show, head = printer(ctx)
  local n = 0
  for item, err in library.call(ctx, client.each_task, client, filter) do
    if not item then
      report.failure(ctx, reporter, err)
      return EXIT.failure
    end
    n = n + 1
    show(item)
  end
  head()
  reporter:say(n == 1 and "1 task" or n .. " tasks")
  return EXIT.ok
end

--- list: the task list, one page or --all; filters from the list's contract.
function tasks.list(ctx)
  local client = library.client(ctx)
  local reporter = report.new(ctx.opts.quiet)
  local filter = {} -- the fields as given, but a command's name for a model
  for k, v in pairs(ctx.fields) do filter[k] = v end
  if filter.model then filter.model = model_name(filter.model) end
  if ctx.opts.all then
    return list_all(ctx, client, reporter, filter)
  end
  local page, err = library.call(ctx, client.tasks, client, filter)
  if not page then
    report.failure(ctx, reporter, err)
    return EXIT.failure
  end
  local show, head = printer(ctx)
  head()
  for _, item in ipairs(page.data) do show(item) end
  reporter:say(string.format("page %s of %s, %s tasks in all", text.value(page.page_no or 1),
    text.value(page.total_page or 1), text.value(page.total or #page.data)))
  return EXIT.ok
end

return tasks
