-- The command-line tool never strands a paid job or a partial file (issue 9, finding 13): real
-- signals sent to a real child process (bin/dashscope under the interpreter under test, $LUA) at
-- each point of a run, against the local test server, whose `slow` fault holds a submit or a
-- result download open for as long as the test needs; and what stdout holds when a run fails.
local helper = require("spec.support.helper")
local json = helper.json

local LUA = os.getenv("LUA") or "lua5.4"
local SCRIPT = "bin/dashscope"
local SIGNALS = { INT = 2, HUP = 1, TERM = 15 } -- POSIX fixes these three numbers

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local read = helper.read_file

-- A shell command's output and status (`echo $?` works the same on every Lua).
local function shell(command)
  local p = assert(io.popen(command .. "; echo \"status $?\""))
  local out = p:read("*a")
  p:close()
  local status = tonumber(out:match("status (%d+)%s*$"))
  return status, (out:gsub("status %d+%s*$", ""))
end

local function contains(text, fragment)
  return text:find(fragment, 1, true) ~= nil
end

local tmp -- a fresh directory for each test's files

-- Polls `ready()` every 50 ms until it is true: its value, or an error after `seconds` (generous:
-- the machine may be loaded).
local function eventually(ready, seconds, what)
  local deadline = os.time() + (seconds or 30)
  repeat
    local v = ready()
    if v then return v end
    shell("sleep 0.05")
  until os.time() > deadline
  error("timed out waiting for " .. what, 2)
end

local function env_prefix()
  return "env DASHSCOPE_API_KEY=" .. quote(helper.KEY) .. " DASHSCOPE_HTTP_BASE_URL=" .. quote(helper.BASE_URL)
end

-- Starts `dashscope ARGS...` in the background: a handle with its pid, whose :finish() waits for
-- its end and gives the exit status, stdout and stderr.
local function start(args)
  local words = {}
  for i, a in ipairs(args) do words[i] = quote(a) end
  local run = { out = tmp .. "/stdout", err = tmp .. "/stderr", pidfile = tmp .. "/pid", statusfile = tmp .. "/status" }
  -- the subshell records the child's pid, waits for it and records its status, all in the background
  local command = ("(%s %s %s %s >%s 2>%s </dev/null & echo $! >%s; wait $!; echo $? >%s) >/dev/null 2>&1 & true")
    :format(env_prefix(), LUA, SCRIPT, table.concat(words, " "), quote(run.out), quote(run.err),
      quote(run.pidfile), quote(run.statusfile))
  assert(shell(command) == 0)
  run.pid = eventually(function() return tonumber(read(run.pidfile) or "") end, 10, "the child's pid")
  function run.stderr()
    return read(run.err) or ""
  end
  function run.kill(name)
    assert(shell("kill -" .. name .. " " .. run.pid) == 0)
  end
  function run.finish()
    local status = eventually(function() return tonumber(read(run.statusfile) or "") end, 30, "the child's end")
    return status, read(run.out) or "", read(run.err) or ""
  end
  return run
end

-- The files in the test's directory whose name starts with `prefix`.
local function files_like(prefix)
  local _, out = shell("ls -A " .. quote(tmp))
  local found = {}
  for name in out:gmatch("[^\n]+") do
    if name:sub(1, #prefix) == prefix then found[#found + 1] = name end
  end
  return found
end

local function requests_to(fragment)
  return #helper.requests(fragment)
end

local function job_args(...)
  local args = { "liveportrait", "--image", "https://example.com/f.png", "--audio", "https://example.com/a.wav" }
  for _, a in ipairs { ... } do args[#args + 1] = a end
  return args
end

-- Each test: a fast server and a directory of its own (tmp), removed afterwards.
local function fresh_run()
  helper.reset { durations = { pending = 0, pre_processing = 0.01, running = 0.05, post_processing = 0.01 } }
  local status, out = shell("mktemp -d \"${TMPDIR:-/tmp}/dashscope-cli-safety.XXXXXX\"")
  assert.are.equal(0, status)
  tmp = out:match("^%s*(.-)%s*$")
end

local function drop_tmp()
  if tmp and tmp:find("dashscope%-cli%-safety%.") then shell("rm -rf " .. quote(tmp)) end
  tmp = nil
end

describe("bin/dashscope under a signal", function()
  before_each(fresh_run)
  after_each(drop_tmp)

  for _, name in ipairs { "TERM", "HUP", "INT" } do
    it("SIG" .. name .. " mid-download removes the partial file, names the task and exits " .. 128 + SIGNALS[name], function()
      helper.faults { { match = "result", kind = "slow", delay = 8 } } -- the download hangs, its file open
      local path = tmp .. "/out.mp4"
      local run = start(job_args("-o", path))
      eventually(function() return #files_like("out.mp4.part-") == 1 and requests_to("/results/") == 1 end, 30,
        "the download to start")
      run.kill(name)
      local status, out, err = run.finish()
      assert.are.equal(128 + SIGNALS[name], status, err)
      assert.are.same({}, files_like("out.mp4")) -- neither the video nor a part of it
      assert.are.equal("", out)
      local id = helper.control("GET", "/tasks")[1].task_id
      assert.truthy(contains(err, "stopped by SIG" .. name), err)
      assert.truthy(contains(err, "task " .. id .. " ended SUCCEEDED; download its video with: dashscope wait "
        .. id .. " -o " .. path), err)
    end)
  end

  it("SIGTERM while waiting says the task goes on and how to follow it", function()
    helper.reset { durations = { pending = 60 } }
    local run = start(job_args("-o", tmp .. "/out.mp4"))
    eventually(function() return run.stderr():match("submitted task ([%w%-]+)") end, 30, "the submit")
    run.kill("TERM")
    local status, out, err = run.finish()
    assert.are.equal(143, status, err)
    assert.are.equal("", out)
    local id = helper.control("GET", "/tasks")[1].task_id
    assert.truthy(contains(err, "task " .. id .. " goes on; follow it with: dashscope wait " .. id .. " -o "), err)
    assert.are.same({}, files_like("out.mp4"))
  end)

  it("SIGINT during a slow submit says the task may exist, with the list command that finds it", function()
    helper.faults { { match = "submit", kind = "slow", delay = 5 } } -- the service answers late
    local run = start(job_args("-o", tmp .. "/out.mp4"))
    eventually(function() return requests_to("/video-synthesis") == 1 end, 30, "the submit to arrive")
    run.kill("INT")
    local status, out, err = run.finish()
    assert.are.equal(130, status, err)
    assert.are.equal("", out)
    local command = err:match("the task may exist: (dashscope list [^\n]+)")
    assert.truthy(command, err)
    assert.truthy(contains(command, "--model liveportrait --start-time "), command)
    assert.are.same({}, files_like("out.mp4"))
    -- the slow submit created the task after all; the command printed finds it
    local task = eventually(function() return helper.control("GET", "/tasks")[1] end, 30, "the task")
    local lstatus, listed = shell(env_prefix() .. " " .. LUA .. " " .. SCRIPT .. command:sub(#"dashscope" + 1) .. " 2>&1")
    assert.are.equal(0, lstatus, listed)
    assert.truthy(contains(listed, task.task_id), listed)
  end)

  it("SIGHUP during the upload of a local file leaves nothing beside it and says how to look for the task", function()
    helper.faults { { match = "oss", kind = "slow", delay = 5 } }
    local image, audio = tmp .. "/face.png", tmp .. "/voice.wav"
    helper.write_file(image, "\137PNG\r\n\26\n fake portrait")
    helper.write_file(audio, "RIFF fake speech")
    local run = start { "liveportrait", "--image", image, "--audio", audio, "-o", tmp .. "/out.mp4" }
    eventually(function()
      for _, r in ipairs(helper.log()) do
        if r.host == "upload" and r.method == "POST" then return true end
      end
    end, 30, "the upload to start")
    run.kill("HUP")
    local status, out, err = run.finish()
    assert.are.equal(129, status, err)
    assert.are.equal("", out)
    assert.truthy(contains(err, "stopped by SIGHUP while submitting; the task may exist: dashscope list"), err)
    assert.are.same({}, files_like("out.mp4"))
    assert.are.same({ "face.png" }, files_like("face"))
    assert.are.equal(0, requests_to("/video-synthesis")) -- the job was never sent
  end)

  it("SIGTERM with --json prints the interruption as one JSON object on stdout", function()
    helper.faults { { match = "result", kind = "slow", delay = 8 } }
    local run = start(job_args("-o", tmp .. "/out.mp4", "--json"))
    eventually(function() return #files_like("out.mp4.part-") == 1 and requests_to("/results/") == 1 end, 30,
      "the download to start")
    run.kill("TERM")
    local status, out, err = run.finish()
    assert.are.equal(143, status, err)
    local e = json.decode(out)
    assert.are.equal("Interrupted", e.code)
    assert.are.equal(helper.control("GET", "/tasks")[1].task_id, e.task_id)
    assert.truthy(contains(e.message, "stopped by SIGTERM"), out)
    assert.are.same({}, files_like("out.mp4"))
  end)
end)

describe("bin/dashscope's stdout", function()
  local function cli(args, env)
    local words = {}
    for i, a in ipairs(args) do words[i] = quote(a) end
    local vars = { DASHSCOPE_API_KEY = helper.KEY, DASHSCOPE_HTTP_BASE_URL = helper.BASE_URL }
    for k, v in pairs(env or {}) do vars[k] = v end
    local out, err = tmp .. "/stdout", tmp .. "/stderr"
    local status = shell(("env DASHSCOPE_API_KEY=%s DASHSCOPE_HTTP_BASE_URL=%s %s %s %s >%s 2>%s </dev/null")
      :format(quote(vars.DASHSCOPE_API_KEY), quote(vars.DASHSCOPE_HTTP_BASE_URL), LUA, SCRIPT,
        table.concat(words, " "), quote(out), quote(err)))
    return status, read(out) or "", read(err) or ""
  end

  before_each(fresh_run)
  after_each(drop_tmp)

  it("holds nothing after a usage error, --json or not", function()
    for _, args in ipairs {
      { "list", "--status", "BAD" },
      { "list", "--status", "BAD", "--all" },
      { "list", "--page-size", "500", "--json" },
      { "status", "--json" },
      { "liveportrait", "--image", "https://example.com/f.png", "--json" },
    } do
      local status, out, err = cli(args)
      assert.are.equal(2, status, table.concat(args, " ") .. ": " .. err)
      assert.are.equal("", out, table.concat(args, " "))
    end
    assert.are.same({}, helper.log())
  end)

  it("holds the error as one JSON object with --json, without the key", function()
    local status, out, err = cli({ "status", "some-task", "--json" }, { DASHSCOPE_API_KEY = "sk-wrong-key-0000" })
    assert.are.equal(3, status, err)
    local e = json.decode(out)
    assert.are.equal("InvalidApiKey", e.code)
    assert.are.equal(401, e.status)
    assert.are.equal("string", type(e.message))
    assert.are.equal("string", type(e.request_id))
    assert.truthy(out:find('"task_id":null', 1, true), out) -- every key, null when unknown
    assert.falsy(contains(out .. err, "sk-wrong-key-0000"))
    assert.falsy(out:find("\n.", 1)) -- one object, one line
  end)

  it("holds the error as JSON with --json when a submit is refused, a list or a download fails", function()
    helper.faults { { match = "submit", kind = "status", status = 400, code = "InvalidParameter", message = "bad job" } }
    local status, out, err = cli(job_args("--json"))
    assert.are.equal(3, status, err)
    local e = json.decode(out)
    assert.are.equal("InvalidParameter", e.code)
    assert.are.equal(400, e.status)

    helper.faults { { match = "list", kind = "status", status = 403, code = "AccessDenied", message = "no" } }
    status, out, err = cli { "list", "--json" }
    assert.are.equal(3, status, err)
    assert.are.equal("AccessDenied", json.decode(out).code)

    helper.faults { { match = "result", kind = "status", status = 404, count = 10 } }
    status, out, err = cli(job_args("--json", "-o", tmp .. "/out.mp4"))
    assert.are.equal(3, status, err)
    e = json.decode(out)
    assert.are.equal(helper.control("GET", "/tasks")[1].task_id, e.task_id)
    assert.are.equal(404, e.status)
  end)
end)
