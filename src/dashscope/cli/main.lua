-- The program: the command line to a command and its context, the run with its exit status (a
-- usage error exits 2 with nothing on stdout, a bug 1), and the signals (SIGINT, SIGTERM, SIGHUP:
-- exit 128 + N, having said what goes on without us). bin/dashscope calls main.run(arg).
local dashscope = require("dashscope")
local core = require("dashscope.core") -- now(), trap_signals, caught_signal: mechanism in C
local args = require("dashscope.cli.args")
local commands = require("dashscope.cli.commands")
local help = require("dashscope.cli.help")
local job = require("dashscope.cli.job")
local jobs = require("dashscope.cli.jobs")
local report = require("dashscope.cli.report")
local text = require("dashscope.cli.text")

local main = {}

local EXIT, PROG, usage = jobs.EXIT, text.PROG, args.usage

-- detect MODEL (argv[i]): the model picks the options. The detector's command; or nil and
-- detect's help page.
local function detector(argv, i, command, got)
  local model = argv[i]
  if model == nil or model:sub(1, 1) == "-" then
    args.parse(argv, i, command.options, got, command)
    if got.opts.help then return nil, help.command(command) end
    usage("detect needs a MODEL: " .. table.concat(text.sorted_keys(command.sub), " or "), command)
  end
  return command.sub[model] or usage("detect: unknown MODEL '" .. model .. "' (one of "
    .. table.concat(text.sorted_keys(command.sub), ", ") .. ")", command)
end

-- help [COMMAND [MODEL]]: the page to print.
local function help_page(got)
  if not got.args[1] then return help.global() end
  local c = commands.find(got.args[1])
  if c.sub and got.args[2] then
    c = c.sub[got.args[2]] or usage("help: unknown MODEL '" .. got.args[2] .. "'", c)
  end
  return help.command(c)
end

-- The command line to a command and its context; nil and the text to print for help and version.
local function read_command_line(argv)
  local got = { opts = {}, fields = {}, raw = {}, args = {} }
  local pre = {}
  for _, o in ipairs(args.GLOBAL) do pre[#pre + 1] = o end
  pre[#pre + 1] = args.VERSION
  local i = args.parse(argv, 1, pre, got, nil, true)
  if got.opts.version then
    return nil, PROG .. " (lua-dashscope) " .. dashscope.VERSION
  end
  if not argv[i] then
    if got.opts.help then return nil, help.global() end
    usage("no command given")
  end
  local command = commands.find(argv[i])
  i = i + 1
  if command.sub then
    local sub, page = detector(argv, i, command, got)
    if not sub then return nil, page end
    command, i = sub, i + 1
  end
  args.parse(argv, i, command.options, got, command)
  if command.name == "help" then return nil, help_page(got) end
  if got.opts.help then return nil, help.command(command) end
  local want = command.args or {}
  if #got.args ~= #want then
    usage(#got.args < #want and "missing " .. want[#got.args + 1]
      or "unexpected argument '" .. got.args[#want + 1] .. "'", command)
  end
  got.command, got.options_of, got.started = command, command.options_of, core.now()
  return got
end

local function run_command(argv)
  local ctx, page = read_command_line(argv)
  if not ctx then
    print(page)
    return EXIT.ok
  end
  job.start(ctx)
  return ctx.command.run(ctx)
end

-- The error value a trapped signal raises (src/signals.c): { signal = N }.
local function is_signal(e)
  return type(e) == "table" and getmetatable(e) == nil and type(e.signal) == "number"
end

-- What the run raised, said: a usage error (exit 2, nothing on stdout, --json or not: the command
-- line is wrong), or a bug (exit 1; with --json also as one JSON object).
local function raised(e, trace)
  report.clear_active()
  if args.is_usage(e) then
    report.complain(e.message)
    local c = e.command
    io.stderr:write("Try '", PROG, c and " " .. commands.full_name(c) or "", " --help'.\n")
    return EXIT.usage
  end
  report.complain("unexpected error: " .. (trace or tostring(e)))
  local ctx = job.ctx()
  if ctx and ctx.opts.json then
    print(text.error_json { code = "InternalError", message = tostring(e):match("^[^\n]*") })
  end
  return EXIT.unexpected
end

local function run(argv)
  local trace
  local ok, status = xpcall(function() return run_command(argv) end, function(e)
    if not args.is_usage(e) and not is_signal(e) then trace = debug.traceback(tostring(e), 2) end
    return e
  end)
  if ok then
    return status
  end
  if is_signal(status) then
    error(status, 0) -- said by stopped(), once no signal can raise any more
  end
  return raised(status, trace)
end

-- After a signal stopped the run: the library's cleanups ran as its error unwound (a partial
-- download is gone), and this says what goes on without us, with the command that finds it; the
-- probe file of jobs.check_output goes too. Exit status 128 + the signal's number, as a shell
-- reports a process a signal ended.
local function stopped(sig, name)
  report.clear_active()
  job.drop_probe()
  local ctx = job.ctx()
  local said = "stopped by " .. (name or "signal " .. sig)
  if ctx then
    local ok, more = pcall(job.stopped_text, said) -- a bug here must not change the exit status
    said = ok and more or said .. " (" .. tostring(more) .. ")"
  end
  report.complain(said)
  if ctx and ctx.opts.json then
    local task = job.task()
    print(text.error_json { code = "Interrupted", message = said, task_id = task and task.id })
  end
  return 128 + sig
end

--- The whole run with SIGINT, SIGTERM and SIGHUP trapped (src/signals.c): a signal raises an error
--- at the next Lua instruction, which unwinds through the module's cleanups and comes back here,
--- where no signal can raise any more. LuaJIT's compiled loops would never see that error: the JIT
--- is off (this program waits on the network, not on the CPU). The exit status.
function main.run(argv)
  if jit then jit.off() end
  local ok, status = core.trap_signals(run, argv)
  local sig, name = core.caught_signal()
  if sig then
    return stopped(sig, name)
  end
  if not ok then -- raised while reporting: a bug
    report.complain("unexpected error: " .. tostring(status))
    return EXIT.unexpected
  end
  return status
end

return main
