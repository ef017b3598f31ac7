-- The help: the manual (dashscope --help) and each command's page, generated from the commands
-- (commands.lua) and the contracts' rules and docs, so that a field added to a contract is
-- documented here with its rule. Text only; main.lua prints it.
local dashscope = require("dashscope")
local args = require("dashscope.cli.args")
local commands = require("dashscope.cli.commands")
local text = require("dashscope.cli.text")

local help = {}

local PROG, WIDTH = text.PROG, 100
local wrap = text.wrap

-- What a field takes, in words: "integer from 15 to 30; default 24".
local function rule_text(rule)
  local parts = {}
  if rule.required then parts[#parts + 1] = "required" end
  if rule.type == "enum" then
    parts[#parts + 1] = "one of " .. table.concat(rule.values, ", ")
  elseif rule.type == "integer" or rule.type == "number" then
    parts[#parts + 1] = rule.type .. dashscope.range_text(rule)
  elseif rule.type == "boolean" then
    parts[#parts + 1] = "true or false; alone: true"
  end
  if rule.default ~= nil then
    local d = rule.default == "" and '""' or text.value(rule.default)
    parts[#parts + 1] = "default " .. d
  end
  return table.concat(parts, "; ")
end

local function option_doc(o)
  if not o.rule then return o.doc end
  local doc, rules = o.rule.doc or "", rule_text(o.rule)
  if rules ~= "" then doc = doc .. " (" .. rules .. ")" end
  return doc
end

-- Appends to `out` one entry per option: its names and metavar, then its doc, wrapped.
local function options_help(options, out)
  for _, o in ipairs(options) do
    local names = (o.short and "-" .. o.short .. ", " or "") .. "--" .. o.long
    for _, a in ipairs(o.aliases or {}) do names = names .. ", --" .. a end
    if o.arg then names = names .. (o.optional and " [" .. o.arg .. "]" or " " .. o.arg) end
    local head = "  " .. names
    if #head < 28 then
      head = head .. string.rep(" ", 28 - #head)
    else
      out[#out + 1] = head
      head = string.rep(" ", 28)
    end
    out[#out + 1] = wrap(head, option_doc(o), WIDTH)
  end
end

local EXAMPLES = [[

Examples:
  dashscope liveportrait --image face.png --audio voice.wav -o out.mp4
  dashscope videoretalk --video v.mp4 --audio a.wav --ref-image r.png -o out.mp4
  dashscope emoji --image face.png --driven mengwa_kaixin -o out.mp4
  dashscope detect liveportrait --image face.png
  dashscope liveportrait --image face.png --audio voice.wav --no-wait    # prints the task id
  dashscope wait ID -o out.mp4
  dashscope list --status RUNNING --model liveportrait

Output: progress goes to stderr, a status line redrawn in place on a terminal (state, time,
queue position, then a download bar), else one line per change of status. The result goes to
stdout: the saved path with -o, else the video URL; --json prints the whole result as JSON (also
of a job that ended without success), and any other failure (exit 1, 3, 4 or a signal) as one
JSON object: code, message, status, request_id, task_id (null when unknown). Bad usage (exit 2)
prints nothing on stdout.
]]

local EXIT_HELP = [[
Exit status:
  0  success
  1  an unexpected error (a bug: please report it with the message)
  2  bad usage: an unknown option, a bad value, a missing file, a field the module refused
     (nothing was sent)
  3  the service or the network failed, or the wait timed out (the task goes on)
  4  the job ended without success (FAILED, CANCELED, UNKNOWN), or the image did not pass a
     detect (also a detect that an emoji job runs for its boxes)
  128+N  stopped by signal N: 130 SIGINT (Ctrl-C), 143 SIGTERM, 129 SIGHUP, at any point. A
     partial download is removed; the task id is printed with the command that resumes it, or,
     when the signal came before the submit's answer, "the task may exist" with the list command
     that finds it. A second signal ends the program at once; one ignored at its start (nohup)
     stays ignored.]]

local ENVIRONMENT = [[

Environment:
  DASHSCOPE_API_KEY            the API key (then DASHSCOPE_API_KEY_FILE_PATH, ~/.dashscope/api_key)
  DASHSCOPE_HTTP_BASE_URL      the service root (--base-url wins)
  DASHSCOPE_QUOTA_STORE        a Redis URL whose quotas this run shares with other processes
                               (--quota-store wins)]]

local function usage_line(command)
  local words = { PROG, commands.full_name(command) }
  for _, a in ipairs(command.args) do words[#words + 1] = a end
  for _, o in ipairs(command.fields or {}) do
    if o.rule.required then words[#words + 1] = "--" .. o.long .. " " .. o.arg end
  end
  words[#words + 1] = "[OPTIONS]"
  return table.concat(words, " ")
end

-- The manual's options: those of every command, then those of the commands that follow a job.
local function global_options(out)
  out[#out + 1] = "Options of every command (also before the command):"
  local global = {}
  for _, o in ipairs(args.GLOBAL) do global[#global + 1] = o end
  global[#global + 1] = args.VERSION
  options_help(global, out)
  out[#out + 1] = ""
  local models = {}
  for _, c in ipairs(commands.ORDER) do
    if c.method then models[#models + 1] = c.name end
  end
  out[#out + 1] = "Options of the model commands (" .. table.concat(models, ", ") .. ") and of wait:"
  local JOB = args.JOB
  options_help({ JOB.output, JOB.overwrite, JOB.timeout, JOB.no_wait }, out)
  out[#out + 1] = wrap("", "(--no-wait: model commands only.) Each model field is an option of its own: "
    .. "see '" .. PROG .. " COMMAND --help'.", WIDTH)
end

--- The manual: dashscope --help.
function help.global()
  local out = {
    "usage: " .. PROG .. " COMMAND [ARGS] [OPTIONS]",
    "",
    wrap("", "Alibaba Cloud DashScope's asynchronous video synthesis from the command line: submit a "
      .. "job, follow it to its end, download the video. Built on lua-dashscope " .. dashscope.VERSION .. ".", WIDTH),
    "",
    "Commands:",
  }
  for _, c in ipairs(commands.ORDER) do
    local name = c.name .. (c.args[1] and " " .. c.args[1] or "")
    out[#out + 1] = wrap(string.format("  %-16s", name), c.summary, WIDTH)
  end
  out[#out + 1] = ""
  global_options(out)
  out[#out + 1] = EXAMPLES
  out[#out + 1] = EXIT_HELP
  out[#out + 1] = ENVIRONMENT
  return table.concat(out, "\n")
end

-- detect's page: its MODELs.
local function detectors_help(out)
  out[#out + 1] = ""
  out[#out + 1] = "MODEL is one of:"
  for _, d in ipairs(commands.DETECTOR_ORDER) do
    out[#out + 1] = wrap(string.format("  %-16s", d.name), d.summary, WIDTH)
  end
  out[#out + 1] = ""
  out[#out + 1] = "'" .. PROG .. " detect MODEL --help' lists its options."
end

-- A contract command's page: its fields, what PATH|URL means, and the detector that fills some.
local function fields_help(command, out)
  out[#out + 1] = ""
  out[#out + 1] = "Fields of " .. command.contract.model .. " (the API's names, underscores as dashes):"
  options_help(command.fields, out)
  local url, filled = false, command.contract.detect
  for _, o in ipairs(command.fields) do url = url or o.rule.type == "url" end
  if url then
    out[#out + 1] = ""
    out[#out + 1] = wrap("", "PATH|URL: a local file is uploaded for you (a temporary copy, kept 48 h); "
      .. "http://, https:// and oss:// URLs are sent as they are.", WIDTH)
  end
  if filled then
    local options = {}
    for _, o in ipairs(command.fields) do
      if filled.fills[o.rule.name] then options[#options + 1] = "--" .. o.long end
    end
    out[#out + 1] = wrap("", "Without " .. table.concat(options, " and ") .. ", "
      .. dashscope.models[filled.method].model .. " runs first and finds them (billed, as '" .. PROG
      .. " detect " .. command.name .. "' is; a refused image exits 4 and submits nothing).", WIDTH)
  end
end

-- list's page: its filters.
local function filters_help(command, out)
  out[#out + 1] = ""
  out[#out + 1] = "Filters:"
  local filters = {}
  for _, o in ipairs(command.options) do if o.rule or o == commands.ALL then filters[#filters + 1] = o end end
  options_help(filters, out)
  out[#out + 1] = ""
  out[#out + 1] = wrap("", "--model also takes a command's name (emoji for emoji-v1). --json prints one "
    .. "JSON object per task and line.", WIDTH)
end

-- The command's own options: neither global, nor fields, nor filters.
local function own_help(command, out)
  local own, global = {}, {}
  for _, o in ipairs(args.GLOBAL) do global[o] = true end
  for _, o in ipairs(command.options) do
    if not o.rule and o ~= commands.ALL and not global[o] then own[#own + 1] = o end
  end
  if #own > 0 then
    out[#out + 1] = ""
    out[#out + 1] = "Options:"
    options_help(own, out)
  end
end

--- A command's page: dashscope COMMAND --help.
function help.command(command)
  local out = { "usage: " .. usage_line(command), "", wrap("", command.summary, WIDTH) }
  if command.sub then
    detectors_help(out)
  end
  if command.fields then
    fields_help(command, out)
  elseif command.options_of then
    filters_help(command, out)
  end
  own_help(command, out)
  if command.notes then
    out[#out + 1] = ""
    out[#out + 1] = wrap("", command.notes, WIDTH)
  end
  out[#out + 1] = ""
  out[#out + 1] = wrap("", "Every command also takes --api-key-file PATH, --base-url URL, --quota-store URL, --json, -q "
    .. "(--quiet) and -h (--help). Exit status: 0 success, 2 bad usage (nothing sent), 3 service or "
    .. "network failure, 4 the job or detect did not succeed, 1 a bug, 128+N stopped by signal N (the task id "
    .. "is printed). See '" .. PROG .. " --help'.", WIDTH)
  return table.concat(out, "\n")
end

return help
