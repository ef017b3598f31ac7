-- examples/nvim and dashscope.uv as a user runs them: `nvim --headless --clean` with the plugin on
-- the runtimepath and the LuaJIT build on package.cpath, against the local server. The scripts
-- inside Neovim check for themselves and cquit on any failure (a headless Lua error alone exits 0),
-- and write what they saw (JSON) to a file this spec reads.
local helper = require("spec.support.helper")

local hosts = require("spec.support.hosts")
local run, read, luajit_build = hosts.run, hosts.read, hosts.luajit_build

-- Debian's lua-cjson for Lua 5.1 (what LuaJIT loads).
local function cjson51_dir()
  local _, files = run("dpkg -L lua-cjson")
  return files:match("(/%S+/lua/5%.1)/cjson%.so") or "/usr/lib/x86_64-linux-gnu/lua/5.1"
end

-- :DashscopeLivePortrait while a 10 ms timer ticks; every drive of the client is counted.
local LIVEPORTRAIT = [==[
-- Runs inside `nvim --headless`: :DashscopeLivePortrait against the local server while a 10 ms
-- timer ticks; writes its findings (JSON) to $DS_NVIM_OUT and cquits on any failure.
local uv = vim.loop
local findings = { notes = {} }
local finished = false

local function finish(err)
  if finished then return end
  finished = true
  findings.error = err
  local f = io.open(os.getenv("DS_NVIM_OUT"), "w")
  f:write(vim.fn.json_encode(findings))
  f:close()
  vim.cmd(err and "cquit 1" or "qall!")
end

local function check()
  local notes = findings.notes
  local statuses = {}
  for i, note in ipairs(notes) do
    local s = note:match("^dashscope: task %S+ ([%u-]+)$")
    if s then statuses[#statuses + 1] = s
    elseif i ~= #notes then error("unexpected notification: " .. note) end
  end
  findings.statuses = statuses
  assert(statuses[1] == "PENDING", "the first status is not PENDING")
  assert(statuses[#statuses] == "SUCCEEDED", "the last status is not SUCCEEDED")
  assert(notes[#notes]:find("^dashscope: task %S+ video: http://127%.0%.0%.1:%d+/results/"),
    "the last notification is not the video URL")
  local expected = findings.wait / 0.010
  assert(findings.ticks >= 0.7 * expected, ("%d ticks of 10 ms in %.3f s"):format(findings.ticks, findings.wait))
  assert(findings.max_gap_ms <= 100, ("a gap of %.1f ms between ticks"):format(findings.max_gap_ms))
end

local ok, err = pcall(function()
  package.path = os.getenv("DS_LUA_PATH") .. ";" .. package.path
  package.cpath = os.getenv("DS_LUA_CPATH") .. ";" .. package.cpath
  local plugin = require("dashscope_nvim")
  plugin.setup { client = { poll_interval = 0.3, max_poll_interval = 0.5 } }

  -- Every drive of the client from the loop, counted: no busy polling.
  local client = plugin.client()
  local drives, step, ready = 0, client.step, client.socket_ready
  client.step = function(...) drives = drives + 1 return step(...) end
  client.socket_ready = function(...) drives = drives + 1 return ready(...) end

  local ticker, ticks, max_gap, last, started = uv.new_timer(), 0, 0, nil, nil
  vim.notify = function(message)
    findings.notes[#findings.notes + 1] = message
    if message:find(" video: ") or message:find(" failed: ") or not message:find("^dashscope: task ") then
      ticker:stop()
      findings.wait = (uv.hrtime() - started) / 1e9
      findings.ticks, findings.max_gap_ms, findings.drives = ticks, max_gap, drives
      local good, why = pcall(check)
      finish(not good and tostring(why) or nil)
    end
  end

  vim.cmd("DashscopeLivePortrait https://example.com/face.png https://example.com/speech.wav")
  started = uv.hrtime()
  ticker:start(10, 10, function()
    local now = uv.hrtime()
    if last then max_gap = math.max(max_gap, (now - last) / 1e6) end
    last, ticks = now, ticks + 1
  end)
  uv.new_timer():start(20000, 0, vim.schedule_wrap(function() finish("no result within 20 s") end))
end)
if not ok then finish(tostring(err)) end
]==]

local CALLBACK_RAISES = [==[
-- Runs inside `nvim --headless`: a callback that raises is reported through on_error and the task
-- is followed to its end all the same; prints JSON and cquits unless so.
local uv = vim.loop
package.path = os.getenv("DS_LUA_PATH") .. ";" .. package.path
package.cpath = os.getenv("DS_LUA_CPATH") .. ";" .. package.cpath
local client = require("dashscope").new { poll_interval = 0.2 }
local errors, done = {}, nil
local driver = require("dashscope.uv").attach(client, uv, {
  on_error = function(e) errors[#errors + 1] = tostring(e) end,
})
local task = assert(client:liveportrait { image_url = "https://example.com/f.png", audio_url = "https://example.com/a.wav" })
client:watch(task, {
  on_status = function(_, status) error("raised at " .. status) end,
  on_done = function(_, result, err) done = result and result.status or tostring(err) end,
})
driver:kick()
local ok = vim.wait(10000, function() return done ~= nil end, 20)
driver:detach()
local f = io.open(os.getenv("DS_NVIM_OUT"), "w")
f:write(vim.fn.json_encode({ done = done or vim.NIL, errors = errors }))
f:close()
vim.cmd((ok and done == "SUCCEEDED" and #errors > 0) and "qall!" or "cquit 1")
]==]

describe("examples/nvim", function()
  local reason, build
  if not run("command -v nvim") then
    reason = "nvim is not installed (apt-get install neovim)"
  else
    build, reason = luajit_build()
  end
  if reason then
    -- pending() inside an it: busted's JSON output breaks on a bare pending() in a describe
    it("runs in a real host (skipped)", function() pending("skipped: " .. reason) end)
    return
  end

  local pwd = select(2, run("pwd")):gsub("%s+$", "")
  local lib = build:sub(1, 1) == "/" and build or pwd .. "/" .. build

  -- Runs `script` in nvim with the plugin: ok, nvim's output, and the findings it wrote.
  local function nvim(script)
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir))
    local f = assert(io.open(dir .. "/test.lua", "w"))
    f:write(script)
    f:close()
    -- Without the caller's LUA_PATH/LUA_CPATH: those are for Lua 5.4.
    local ok, out = run(("cd %s && env -u LUA_PATH -u LUA_CPATH DASHSCOPE_API_KEY=%s "
      .. "DASHSCOPE_HTTP_BASE_URL=%s DS_NVIM_OUT=%s/findings.json DS_LUA_PATH='%s/?.lua' "
      .. "DS_LUA_CPATH='%s/?.so;%s/?.so' timeout 60 nvim --headless --clean "
      .. "--cmd 'set rtp^=%s/examples/nvim' -c 'luafile %s/test.lua' </dev/null"):format(
      dir, helper.KEY, helper.BASE_URL, dir, lib, lib, cjson51_dir(), pwd, dir))
    local findings = helper.json.decode(read(dir .. "/findings.json") or "{}")
    os.execute("rm -rf " .. dir)
    return ok, out, findings
  end

  it("reports PENDING to SUCCEEDED and the video URL through vim.notify while a 10 ms timer keeps time", function()
    helper.reset { durations = { pending = 0.3, running = 0.7 } }
    local ok, out, findings = nvim(LIVEPORTRAIT)
    assert.is_true(ok, tostring(findings.error or "") .. "\n" .. out)
    assert.is_nil(findings.error)

    assert.are.equal("PENDING", findings.statuses[1])
    assert.are.equal("SUCCEEDED", findings.statuses[#findings.statuses])
    assert.truthy(findings.notes[#findings.notes]:find(" video: http://127.0.0.1:", 1, true))
    assert.is_true(findings.wait >= 0.9, "the job took " .. findings.wait .. " s")
    assert.is_true(findings.ticks >= 0.7 * findings.wait / 0.010,
      ("%d ticks of 10 ms in %.3f s"):format(findings.ticks, findings.wait))
    assert.is_true(findings.max_gap_ms <= 100, ("a gap of %.1f ms between ticks"):format(findings.max_gap_ms))
    -- No busy polling: the loop drove the client a few times per status query, no more.
    local queries = #helper.requests("/tasks/")
    assert.is_true(findings.drives <= 8 * (queries + 1),
      ("%d drives of the client for %d status queries"):format(findings.drives, queries))
  end)

  it("hands a callback's error to on_error and follows the task to its end all the same", function()
    helper.reset()
    local ok, out, findings = nvim(CALLBACK_RAISES)
    assert.is_true(ok, out)
    assert.are.equal("SUCCEEDED", findings.done)
    assert.truthy(findings.errors[1]:find("raised at ", 1, true), findings.errors[1])
  end)
end)
