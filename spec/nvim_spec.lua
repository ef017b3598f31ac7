-- examples/nvim and dashscope.uv as a user runs them: `nvim --headless --clean` with the plugin on
-- the runtimepath and the LuaJIT build set up, against the local server. The scripts
-- inside Neovim check for themselves and cquit on any failure (a headless Lua error alone exits 0),
-- and write what they saw (JSON) to a file this spec reads.
local helper = require("spec.support.helper")

local hosts = require("spec.support.hosts")
local run, read, luajit_build = hosts.run, hosts.read, hosts.luajit_build

-- What every script below starts with: findings written as JSON to $DS_NVIM_OUT, cquit on any
-- failure (a headless Lua error alone exits 0), vim.notify recorded, the plugin set up on the
-- LuaJIT build ($DS_BUILD) and nothing else.
local PRELUDE = [==[
local uv = vim.uv or vim.loop
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
vim.notify = function(message) findings.notes[#findings.notes + 1] = message end
-- Until `pred()` holds (or `seconds` pass: a failure), the loop turning meanwhile.
local function await(what, seconds, pred)
  if not vim.wait(seconds * 1000, pred, 10) then
    error("no " .. what .. " within " .. seconds .. " s; notes:\n" .. table.concat(findings.notes, "\n"))
  end
end
local function last_note() return findings.notes[#findings.notes] or "" end
local plugin = require("dashscope_nvim")
plugin.setup { build_dir = os.getenv("DS_BUILD"), rocks_tree = false, client = { poll_interval = 0.3, max_poll_interval = 0.5 } }
]==]

-- :DashscopeLivePortrait with a local image and an 8 MB local audio file (both uploaded), the
-- service answering each API call 2 s late, while a 10 ms timer ticks; then :checkhealth.
-- lua-cjson is taken off the path first: the library runs on Neovim's vim.json.
local WHOLE_JOB = PRELUDE .. [==[
local ok, err = pcall(function()
  local kept = {}
  for template in package.cpath:gmatch("[^;]+") do
    local f = io.open((template:gsub("%?", "cjson")), "rb")
    if f then f:close() else kept[#kept + 1] = template end
  end
  package.cpath = table.concat(kept, ";")
  assert(not pcall(require, "cjson"), "cjson is still on the path")

  local client = plugin.client()
  local drives, step, ready = 0, client.step, client.socket_ready
  client.step = function(...) drives = drives + 1 return step(...) end
  client.socket_ready = function(...) drives = drives + 1 return ready(...) end

  local ticker, ticks, max_gap, last = uv.new_timer(), 0, 0, nil
  ticker:start(10, 10, function()
    local now = uv.hrtime()
    if last then max_gap = math.max(max_gap, (now - last) / 1e6) end
    last, ticks = now, ticks + 1
  end)
  local started = uv.hrtime()
  vim.cmd("DashscopeLivePortrait " .. os.getenv("DS_IMAGE") .. " " .. os.getenv("DS_AUDIO") .. " template-id=calm")
  findings.returned_ms = (uv.hrtime() - started) / 1e6 -- the command itself: it must not wait
  await("video", 40, function() return last_note():find(" video: ") or last_note():find("failed") end)
  ticker:stop()
  findings.wait = (uv.hrtime() - started) / 1e9
  findings.ticks, findings.max_gap_ms, findings.drives = ticks, max_gap, drives

  vim.cmd("checkhealth dashscope")
  findings.health = vim.api.nvim_buf_get_lines(0, 0, -1, false)
end)
finish(not ok and tostring(err) or nil)
]==]

-- Every other command against the fast server: a detection, the two other models, status,
-- cancel, list, download (twice: the second needs !), completion, and misuse reported.
local COMMANDS = PRELUDE .. [==[
local function run(command, want)
  local n = #findings.notes
  vim.cmd(command)
  await(want .. " after " .. command, 20, function()
    for i = n + 1, #findings.notes do if findings.notes[i]:find(want, 1, true) then return true end end
  end)
  return findings.notes[#findings.notes]
end
local function task_of(note) return note:match("task (%S+)") end
local function buffer(name)
  for _, buf in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_get_name(buf) == name then return buf end
  end
  error("no buffer " .. name)
end
local function lines_of(name)
  return vim.api.nvim_buf_get_lines(buffer(name), 0, -1, false)
end
local ok, err = pcall(function()
  local image, dir = os.getenv("DS_IMAGE"), os.getenv("DS_DIR")
  findings.detect = run("DashscopeDetect liveportrait " .. image, "liveportrait_detect: pass")
  findings.detect_buffer = lines_of("dashscope://detect")
  local emoji = task_of(run("DashscopeEmoji https://example.com/face.png mengwa_kaixin", " video: "))
  run("DashscopeVideoRetalk https://example.com/v.mp4 https://example.com/a.wav video-extension=true", " video: ")
  findings.status = run("DashscopeStatus " .. emoji, "task " .. emoji .. " SUCCEEDED")
  findings.tasks_buffer = lines_of("dashscope://tasks")
  findings.list = run("DashscopeList model=emoji-v1", "task list: page ")
  findings.list_buffer = lines_of("dashscope://list")
  -- every state the tasks buffer shows while the downloads run
  findings.shown = {}
  vim.api.nvim_buf_attach(buffer("dashscope://tasks"), false, { on_lines = function(_, buf)
    for _, line in ipairs(vim.api.nvim_buf_get_lines(buf, 1, -1, false)) do
      local state = line:match("^" .. emoji:gsub("%-", "%%-") .. "%s+%S+%s+%S+%s+(%S+)")
      if state and state ~= findings.shown[#findings.shown] then findings.shown[#findings.shown + 1] = state end
    end
  end })
  findings.saved = run("DashscopeDownload " .. emoji .. " " .. dir .. "/out.mp4", "saved: ")
  findings.not_saved = run("DashscopeDownload " .. emoji .. " " .. dir .. "/out.mp4", "not saved")
  findings.saved_again = run("DashscopeDownload! " .. emoji .. " " .. dir .. "/out.mp4", "saved: ")
  -- a task kept PENDING (the server's durations, set by the spec for liveportrait)
  local pending = task_of(run("DashscopeLivePortrait https://example.com/f.png https://example.com/a.wav", "PENDING"))
  findings.canceled = run("DashscopeCancel " .. pending, "canceled")
  findings.misuse = run("DashscopeLivePortrait https://example.com/f.png https://example.com/a.wav video-fsp=24", "unknown field")
  findings.bad_value = run("DashscopeLivePortrait https://example.com/f.png https://example.com/a.wav video-fps=60", "video_fps")
  findings.complete = {
    file = vim.fn.getcompletion("DashscopeLivePortrait " .. dir .. "/sp", "cmdline"),
    enum = vim.fn.getcompletion("DashscopeLivePortrait a b template-id=c", "cmdline"),
    field = vim.fn.getcompletion("DashscopeVideoRetalk a b video-e", "cmdline"),
    task = vim.fn.getcompletion("DashscopeCancel " .. pending:sub(1, 4), "cmdline"),
    model = vim.fn.getcompletion("DashscopeDetect l", "cmdline"),
  }
  findings.setup_misuse = select(2, pcall(plugin.setup, { clinet = {} }))
end)
finish(not ok and tostring(err) or nil)
]==]

local CALLBACK_RAISES = [==[
-- Runs inside `nvim --headless`: a callback that raises is reported through on_error and the task
-- is followed to its end all the same; prints JSON and cquits unless so.
local uv = vim.loop
package.path = os.getenv("DS_BUILD") .. "/?.lua;" .. package.path
package.cpath = os.getenv("DS_BUILD") .. "/?.so;" .. package.cpath
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

  -- Runs `script` in nvim with the plugin (its files in a directory of their own: a 1 KB image and
  -- an 8 MB audio file): ok, nvim's output, and the findings it wrote.
  local function nvim(script)
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir))
    helper.write_file(dir .. "/test.lua", script)
    helper.write_file(dir .. "/face.png", "\137PNG\r\n\26\n" .. ("p"):rep(1024))
    helper.write_file(dir .. "/speech.wav", "RIFF" .. ("w"):rep(8 * 1000 * 1000 - 4))
    -- Without the caller's LUA_PATH/LUA_CPATH: those are for Lua 5.4.
    local ok, out = run(("cd %s && env -u LUA_PATH -u LUA_CPATH DASHSCOPE_API_KEY=%s "
      .. "DASHSCOPE_HTTP_BASE_URL=%s DS_NVIM_OUT=%s/findings.json DS_BUILD='%s' DS_DIR=%s "
      .. "DS_IMAGE=%s/face.png DS_AUDIO=%s/speech.wav timeout 90 nvim --headless --clean "
      .. "--cmd 'set rtp^=%s/examples/nvim' -c 'luafile %s/test.lua' </dev/null"):format(
      dir, helper.KEY, helper.BASE_URL, dir, lib, dir, dir, dir, pwd, dir))
    local findings = helper.json.decode(read(dir .. "/findings.json") or "{}")
    findings.saved_bytes = #(helper.read_file(dir .. "/out.mp4") or "")
    os.execute("rm -rf " .. dir)
    return ok, out, findings
  end

  it("runs a whole job, 8 MB upload and 2 s answers included, while a 10 ms timer never waits 30 ms", function()
    helper.reset { latency = 2, durations = { pending = 0.3, running = 0.7 } }
    local ok, out, findings = nvim(WHOLE_JOB)
    assert.is_true(ok, tostring(findings.error or "") .. "\n" .. out)
    assert.is_nil(findings.error)
    print(("\nnvim: a job with 2 s answers and an 8 MB upload took %.2f s; the command returned in %.1f ms; "
      .. "%d ticks of 10 ms, longest gap %.1f ms; %d drives"):format(findings.wait, findings.returned_ms,
      findings.ticks, findings.max_gap_ms, findings.drives))

    local notes = findings.notes
    assert.truthy(notes[1]:find("^dashscope: task %S+ PENDING$"), notes[1])
    assert.truthy(notes[#notes]:find("^dashscope: task %S+ video: http://127%.0%.0%.1:%d+/results/"), notes[#notes])
    assert.are.equal(8 * 1000 * 1000, helper.control("GET", "/uploads")[2].size) -- the audio, whole
    assert.is_true(findings.returned_ms < 30, findings.returned_ms .. " ms in the command")
    assert.is_true(findings.wait >= 6, "the job took " .. findings.wait .. " s") -- policy, submit, a query: 2 s each
    assert.is_true(findings.ticks >= 0.7 * findings.wait / 0.010,
      ("%d ticks of 10 ms in %.3f s"):format(findings.ticks, findings.wait))
    assert.is_true(findings.max_gap_ms <= 30, ("a gap of %.1f ms between ticks"):format(findings.max_gap_ms))
    -- No busy polling: the loop drove the client a few times per status query, no more.
    local queries = #helper.requests("/tasks/")
    assert.is_true(findings.drives <= 8 * (queries + 1),
      ("%d drives of the client for %d status queries"):format(findings.drives, queries))

    local health = table.concat(findings.health, "\n")
    print(health)
    for _, line in ipairs {
      "OK: lua%-dashscope " .. helper.dashscope.VERSION:gsub("%.", "%%.") .. ": " .. lib:gsub("%p", "%%%0") .. "/dashscope%.lua",
      "OK: C core: .-%(libcurl/[%d.]+%)",
      "OK: JSON: Neovim's vim%.json",
      "OK: API key found %(%$DASHSCOPE_API_KEY%)",
      "OK: service reachable at http://127%.0%.0%.1:%d+/api/v1, the key accepted",
      "INFO: Neovim %d+%.%d+%.%d+, LuaJIT",
    } do
      assert.truthy(health:find(line), line .. "\n" .. health)
    end
    assert.is_nil(health:find(helper.KEY, 1, true))
  end)

  it("offers every model, detect, status, cancel, list and download as commands, with completion", function()
    helper.reset { durations = helper.FAST.durations, concurrency = 0,
                   durations_by_model = { liveportrait = { pending = 30 } } }
    local ok, out, f = nvim(COMMANDS)
    assert.is_true(ok, tostring(f.error or "") .. "\n" .. out)
    assert.truthy(f.detect:find("liveportrait_detect: pass", 1, true), f.detect)
    assert.are.equal("liveportrait_detect: pass", f.detect_buffer[1])
    assert.truthy(f.status:find(" SUCCEEDED$"), f.status)
    assert.truthy(f.tasks_buffer[2]:find("emoji%-v1%s+SUCCEEDED%s+saved: ") or f.tasks_buffer[2]:find("emoji%-v1%s+SUCCEEDED%s+http"),
      table.concat(f.tasks_buffer, "\n"))
    assert.truthy(f.list_buffer[1]:find("^page 1 of %d+, %d+ tasks$"), f.list_buffer[1])
    assert.truthy(f.list_buffer[2]:find("emoji-v1", 1, true), table.concat(f.list_buffer, "\n"))
    assert.truthy(f.saved:find(" saved: /.-/out%.mp4$"), f.saved)
    assert.truthy(f.not_saved:find("FileExists", 1, true), f.not_saved)
    assert.truthy(f.saved_again:find(" saved: ", 1, true), f.saved_again)
    assert.is_true(f.saved_bytes > 0)
    -- the tasks buffer showed the download's progress, then where the video was saved
    assert.truthy(f.shown[1]:find("^saving"), table.concat(f.shown, " "))
    -- two downloads: the one refused (the file exists) fails before a byte
    assert.are.same({ "saving", "saved:", "saving", "saved:" }, f.shown)
    assert.truthy(f.canceled:find(" canceled$"), f.canceled)
    assert.truthy(f.misuse:find("unknown field 'video-fsp' (did you mean 'video-fps'?)", 1, true), f.misuse)
    assert.truthy(f.bad_value:find("field 'video_fps' must be an integer from 15 to 30 (got 60)", 1, true), f.bad_value)
    assert.truthy(f.complete.file[1]:find("/speech%.wav$"), f.complete.file[1])
    assert.are.same({ "template-id=calm" }, f.complete.enum)
    assert.are.same({ "video-extension=" }, f.complete.field)
    assert.are.equal(1, #f.complete.task)
    assert.are.same({ "liveportrait" }, f.complete.model)
    assert.truthy(tostring(f.setup_misuse):find("unknown option 'clinet'", 1, true), tostring(f.setup_misuse))
  end)

  it("hands a callback's error to on_error and follows the task to its end all the same", function()
    helper.reset()
    local ok, out, findings = nvim(CALLBACK_RAISES)
    assert.is_true(ok, out)
    assert.are.equal("SUCCEEDED", findings.done)
    assert.truthy(findings.errors[1]:find("raised at ", 1, true), findings.errors[1])
  end)
end)
