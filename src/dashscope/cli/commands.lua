-- The commands: one per model contract (dashscope.models), the detectors under `detect`, the task
-- commands, and help; each with its name, positional arguments, options, summary and run. A field
-- added to a contract is an option here. How a command runs is jobs.lua's or tasks.lua's; its help
-- is help.lua's.
--
-- A command: { name, summary, args (positional names), options, run(ctx) -> exit status, and for a
-- contract's command: method, contract, fields (its field options), options_of (field -> option),
-- detector = true under detect; sub for detect itself }.
local dashscope = require("dashscope")
local args = require("dashscope.cli.args")
local batch = require("dashscope.cli.batch")
local jobs = require("dashscope.cli.jobs")
local tasks = require("dashscope.cli.tasks")
local text = require("dashscope.cli.text")

local commands = {}

local JOB = args.JOB

local BY_NAME, ORDER = {}, {}
local DETECTORS, DETECTOR_ORDER = {}, {}
--- The commands in the order --help lists them, and the detectors (detect MODEL).
commands.ORDER, commands.DETECTORS, commands.DETECTOR_ORDER = ORDER, DETECTORS, DETECTOR_ORDER

local function add(list, order, command)
  list[command.name] = command
  order[#order + 1] = command
end

-- A command's options: those of every command, then `extra` (a list), then its field options.
local function command_options(fields, extra)
  local all = {}
  for _, list in ipairs { args.GLOBAL, extra or {}, fields or {} } do
    for _, o in ipairs(list) do all[#all + 1] = o end
  end
  return all
end

-- One command per contract: a model's, or a detector's (under detect).
local function contract_command(method, contract)
  local fields, names = args.field_options(contract.fields)
  local command = { method = method, contract = contract, fields = fields, options_of = names, args = {} }
  if contract.synchronous then
    command.name = method:match("^(.+)_detect$") or method
    command.summary = "check an image for " .. command.name .. " (" .. contract.model .. "; billed per image)"
    command.options, command.detector, command.run = command_options(fields), true, jobs.run_detect
    add(DETECTORS, DETECTOR_ORDER, command)
  else
    command.name = method
    command.summary = (contract.doc or "a job of the model") .. " (" .. contract.model .. ")"
    command.options = command_options(fields, { JOB.no_wait, JOB.output, JOB.overwrite, JOB.timeout })
    command.run = jobs.run_model
    add(BY_NAME, ORDER, command)
  end
end

for _, method in ipairs(text.sorted_keys(dashscope.models)) do
  contract_command(method, dashscope.models[method])
end

add(BY_NAME, ORDER, {
  name = "detect", args = { "MODEL" }, sub = DETECTORS, options = command_options(),
  summary = "check an image before a job of MODEL (" .. table.concat(text.sorted_keys(DETECTORS), " or ") .. ")",
})

add(BY_NAME, ORDER, {
  name = "batch", args = { "MANIFEST" }, options = command_options(nil, batch.OPTIONS), run = batch.run,
  summary = "run every job of a manifest (JSON Lines or CSV); the same command again resumes after any interruption",
  notes = 'A manifest line: {"model": "liveportrait", "image_url": "file:faces/1.png", "audio_url": '
    .. '"https://...", "output": "out/1.mp4"} (JSON Lines), or a CSV whose header names model, output, '
    .. '[key] and the fields. "file:PATH" is a local file to upload, relative to the manifest, as are '
    .. 'outputs; a job\'s key is its "key", else its output, else "line N". Every line and output is '
    .. 'checked before anything is sent.',
})

add(BY_NAME, ORDER, {
  name = "status", args = { "ID" }, options = command_options(), run = tasks.status,
  summary = "ask once for a task's status (exit 4 when it ended without success)",
})
add(BY_NAME, ORDER, {
  name = "wait", args = { "ID" }, options = command_options(nil, { JOB.output, JOB.overwrite, JOB.timeout }),
  summary = "follow a task submitted earlier (or elsewhere) to its end; -o downloads its video",
  run = tasks.wait,
})
add(BY_NAME, ORDER, {
  name = "cancel", args = { "ID" }, options = command_options(), run = tasks.cancel,
  summary = "cancel a task that is still PENDING",
})

-- list: filters from the list's contract (dashscope.task_filter), and --all.
local LIST_FIELDS, LIST_NAMES = args.field_options(dashscope.task_filter)
--- list's --all, which help shows among the filters.
commands.ALL = { long = "all", key = "all", doc = "every page, from --page-no on" }
add(BY_NAME, ORDER, {
  name = "list", args = {}, options = command_options(LIST_FIELDS, { commands.ALL }), options_of = LIST_NAMES,
  summary = "list tasks (default: the last 24 h, newest first, 10 a page)", run = tasks.list,
})

add(BY_NAME, ORDER, { name = "help", args = { "[COMMAND]" }, options = command_options(),
  summary = "show help, of a command when one is named" })

--- The command called `name`; a usage error when there is none.
function commands.find(name)
  local c = BY_NAME[name]
  if not c then
    args.unknown("command", name, text.sorted_keys(BY_NAME))
  end
  return c
end

--- How a command is named on the command line ("detect emoji" for a detector).
function commands.full_name(command)
  return command.detector and "detect " .. command.name or command.name
end

return commands
