-- The Lua half of fuzz/response_fuzz.c: puts one answer of the network (status, headers, body)
-- through every path of the Lua layer that reads such answers, and checks what comes out.
--
-- Each input gets fresh clients whose transport is a stand-in (Transport below, the interface of
-- the C "dashscope.Transport" that calls.lua and engine.lua use): every request it is given is
-- done at once and answers with the input's response. Everything above it is the real code: the
-- calls, their classification (http.classify, http.classify_storage), the shape checks, the task
-- state and result mapping (task.lua), the engine's bookkeeping (engine.lua, planner.lua), the task
-- list (listing.lua, polls.lua), the detectors (detect.lua), uploads (files.lua) and downloads
-- (download.lua). Only the key scrubbing of error messages runs in C (a real transport's scrub).
-- Retries and quotas are off (max_retries = 0, rate_limits = false), so a call ends on its first
-- answer; an answer may still make the client wait (a 429 pauses the quota its call used, for its
-- Retry-After). A wait for a call held back ends that call here: the harness does not sleep.
--
-- What the harness reports (it raises; response_fuzz.c aborts with the traceback):
--   * any error raised by the code under test (hostile answers must give nil, err);
--   * a client that waits for nothing: nothing in flight and no call held back;
--   * a broken promise of docs/reference.md: an err that is not an error value, or whose code or message is
--     not a string; a task status that is not a string.
require("dashscope")
local core = require("dashscope.core")
local client_class = require("dashscope.client")
local config = require("dashscope.config")
local errors = require("dashscope.errors")
local http = require("dashscope.http")
local json = require("dashscope.json")
local polls = require("dashscope.polls")
local servicetime = require("dashscope.servicetime")

local KEY = "sk-fuzz-0123456789"
local BASE = "http://127.0.0.1:9/api/v1"
local ROOT = package.path:match("^(.-)/src/%?%.lua;") or "."
local MAX_REQUESTS = 200

-- A file to upload, and a path to download to.
local UPLOAD = ROOT .. "/build/fuzz/upload.png"
local DOWNLOAD = ROOT .. "/build/fuzz/download.mp4"
do
  local f = assert(io.open(UPLOAD, "wb"))
  f:write("\137PNG fuzz")
  f:close()
end

-- The scrubbing function the real code gets from the client's transport.
local scrubber = core.new_transport {}
scrubber:set_credential("Authorization: Bearer " .. KEY, KEY)
local function scrub(text)
  return scrubber:scrub(text)
end

local answer -- the input's response: { status, headers, body }

local function response()
  local headers = {}
  for k, v in pairs(answer.headers) do headers[k] = v end
  -- written: what request.c counts into an output file (a download's 2xx body goes there)
  return { status = answer.status, headers = headers, body = answer.body, time = 0.001, new_connection = false,
           written = #answer.body }
end

-- ---- the stand-in transport (methods keep the C ones' `self`, used or not)
-- luacheck: push ignore 212

local Request = {}
Request.__index = Request
function Request:response() return response(), nil end
function Request:done() return true end
function Request:progress() return #answer.body, #answer.body, 0, 0 end
function Request:cancel() end
function Request:close() end

local Transport = {}
Transport.__index = Transport

local function transport()
  return setmetatable({ queue = {}, requests = 0 }, Transport)
end

-- What Transport:wait raises when the client waits for a call held back (legitimately): the call
-- is abandoned, not a finding.
local WAITED = setmetatable({}, { __tostring = function() return "harness: the client waited" end })

function Transport:request(spec)
  self.requests = self.requests + 1
  if self.requests > MAX_REQUESTS then
    error("harness: more than " .. MAX_REQUESTS .. " requests for one input", 2)
  end
  -- a download's 2xx body lands in its output descriptor (request.c): counted as `written` in the
  -- response, not written here (a descriptor number is not a path)
  local r = setmetatable({ spec = spec }, Request)
  self.queue[#self.queue + 1] = r
  return r
end
function Transport:settled()
  local done = self.queue
  self.queue = {}
  return done
end
function Transport:perform() return 0, nil end
function Transport:pending() return 0 end
function Transport:wait(seconds)
  if #self.queue == 0 and next(self.engine.calls.waiting) == nil then
    error(("harness: the client waits %s s with nothing in flight and no call held back"):format(
      tostring(seconds)), 2)
  end
  error(WAITED, 0)
end
function Transport:sockets() return {} end
function Transport:socket_action() end
function Transport:timer_action() end
function Transport:timeout() return nil end
function Transport:stats() return { started = self.requests, connections = 0 } end
function Transport:close() end
function Transport:set_credential() end
-- luacheck: pop

-- A client whose requests the stand-in answers.
local function client()
  local stand_in = transport()
  local c = client_class.new(config.settings { api_key = KEY, base_url = BASE, max_retries = 0,
    rate_limits = false, poll_interval = 0.01, max_poll_interval = 0.02 }, stand_in)
  stand_in.engine = c._engine
  return c
end

-- Calls fn(...): what it returns, or nothing when it ended in a wait (see WAITED). Any other error
-- goes on, with the traceback of where it was raised.
local function attempt(fn, ...)
  local out = table.pack(xpcall(fn, function(e)
    if e == WAITED then return e end
    return debug.traceback(tostring(e), 2)
  end, ...))
  if out[1] then return table.unpack(out, 2, out.n) end
  if out[2] ~= WAITED then error(out[2], 0) end
end

-- ---- what must hold of everything the code under test returns

local function check_err(err, where)
  if err == nil then return end
  if not errors.is(err) then
    error(where .. ": err is not an error value: " .. tostring(err), 2)
  end
  if type(err.code) ~= "string" then
    error(where .. ": err.code is a " .. type(err.code) .. " (docs/reference.md: a string)", 2)
  end
  if type(err.message) ~= "string" then
    error(where .. ": err.message is a " .. type(err.message) .. " (docs/reference.md: human text)", 2)
  end
  assert(type(tostring(err)) == "string")
end

local function check_task(t, where)
  if t == nil then return end
  local status = t:status()
  if type(status) ~= "string" then
    error(where .. ": task:status() is a " .. type(status) .. " (docs/reference.md: a string)", 2)
  end
  tostring(t)
  t:ended()
  t:progress()
  local result = t:result()
  if result ~= nil and type(result) ~= "table" then
    error(where .. ": task:result() is a " .. type(result), 2)
  end
  check_err(select(2, t:outcome()), where .. " (outcome)")
end

-- ---- the scenarios: who asks. Each call gets a client of its own, so that a pause one answer
-- asks for (429) does not hold back the next call.

local TASK_MODELS = { "liveportrait", "videoretalk", "emoji-v1", false }

local scenarios = {}

-- q: a status query (task:poll) for tasks of each model, then what a user reads of them; a
-- SUCCEEDED one is also downloaded (the download answered by the same response).
function scenarios.q()
  for i, model in ipairs(TASK_MODELS) do
    local c = client()
    local t = c:task("fuzz-task-" .. i, model or nil)
    local status, err = attempt(t.poll, t)
    check_err(err, "task:poll")
    if status ~= nil and type(status) ~= "string" then
      error("task:poll returned a " .. type(status) .. " status", 0)
    end
    check_task(t, "task:poll")
    if t:status() == "SUCCEEDED" and t:ended() then
      os.remove(DOWNLOAD)
      local path, derr = attempt(t.download, t, DOWNLOAD, { overwrite = true })
      check_err(derr, "task:download")
      if path ~= nil and path ~= DOWNLOAD then error("task:download returned " .. tostring(path), 0) end
    end
    c:close()
  end
end

-- s: a submit of each async model (emoji-v1 runs its detector first: the same answer), then one
-- status query of the task it made.
local JOBS = {
  { "liveportrait", { image_url = "https://example.com/f.png", audio_url = "https://example.com/a.wav" } },
  { "videoretalk", { video_url = "https://example.com/v.mp4", audio_url = "https://example.com/a.wav" } },
  { "emoji", { image_url = "https://example.com/f.png", driven_id = "mengwa_kaixin" } },
}
function scenarios.s()
  for _, job in ipairs(JOBS) do
    local c = client()
    local fields = {}
    for k, v in pairs(job[2]) do fields[k] = v end
    local t, err = attempt(c[job[1]], c, fields)
    check_err(err, "client:" .. job[1])
    if t ~= nil then
      check_task(t, "client:" .. job[1])
      local _, perr = attempt(t.poll, t)
      check_err(perr, "task:poll after submit")
      check_task(t, "task:poll after submit")
    end
    c:close()
  end
end

-- d: both detectors.
function scenarios.d()
  for _, method in ipairs { "liveportrait_detect", "emoji_detect" } do
    local c = client()
    local r, err = attempt(c[method], c, { image_url = "https://example.com/f.png" })
    check_err(err, "client:" .. method)
    if r ~= nil and type(r) ~= "table" then error("client:" .. method .. " returned a " .. type(r), 0) end
    c:close()
  end
end

-- l: the task list, a page (client:tasks) and every page in turn (client:each_task, 50 items at
-- most: a service may send pages forever), then the scheduler's own use of it: four tasks due at
-- once are placed by one list, then those it says ended are fetched.
function scenarios.l()
  local c = client()
  local page, err = attempt(c.tasks, c, { model = "liveportrait" })
  check_err(err, "client:tasks")
  if page ~= nil and type(page) ~= "table" then error("client:tasks returned a " .. type(page), 0) end
  c:close()
  c = client()
  attempt(function()
    local n = 0
    for item, ierr in c:each_task {} do
      if item == false then check_err(ierr, "client:each_task") break end
      n = n + 1
      if n >= 50 then break end
    end
  end)
  c:close()
  c = client()
  local due = {}
  for i = 1, 4 do
    local t = c:task(i == 1 and "fuzz-task-1" or "50e2ccea-abc4-43d7-a0dc-00000000000" .. i, "liveportrait")
    c._engine:track(t, core.now() - 1)
    due[i] = t
  end
  c._engine.clock:learn(0)
  attempt(function()
    polls.ask(c._engine, c._engine.lanes["liveportrait"], due) -- four due, none with a known run: one list
    for _ = 1, 4 do c:step() end
  end)
  for _, t in ipairs(due) do check_task(t, "task list") end
  c:close()
end

-- u: the storage hosts: an upload (the policy asked of the service, then the file posted to the
-- policy's host), and both kinds of storage exchange classified as http.lua does.
function scenarios.u()
  local c = client()
  local url, err = attempt(c.upload, c, "liveportrait", UPLOAD)
  check_err(err, "client:upload")
  if url ~= nil and type(url) ~= "string" then error("client:upload returned a " .. type(url), 0) end
  c:close()
  for _, kind in ipairs { "upload", "download" } do
    local resp, serr = http.classify_storage(kind, response(), nil, nil, scrub)
    check_err(serr, "http.classify_storage")
    if resp == nil and serr == nil then error("http.classify_storage returned nothing", 0) end
  end
end

-- c: a cancel.
function scenarios.c()
  local c = client()
  local t = c:task("fuzz-task-1", "liveportrait")
  local ok, err = attempt(t.cancel, t)
  check_err(err, "task:cancel")
  if ok ~= nil and ok ~= true then error("task:cancel returned " .. tostring(ok), 0) end
  check_task(t, "task:cancel")
  c:close()
end

-- j: the decoders alone: json.decode, http.classify for every kind with no shape, Retry-After,
-- and the service's time stamps.
function scenarios.j()
  local value, why = json.decode(answer.body)
  if value == nil and type(why) ~= "string" then error("json.decode gave no reason", 0) end
  for _, kind in ipairs { "query", "submit", "detect" } do
    local body, err = http.classify(kind, response(), nil, nil, scrub)
    check_err(err, "http.classify " .. kind)
    if body == nil and err == nil then error("http.classify returned nothing", 0) end
  end
  http.retry_after(answer.headers["retry-after"])
  servicetime.parse(answer.body)
end

local ORDER = { "q", "s", "d", "l", "u", "c", "j" }

--- Runs one input: `scenario` (one byte: a letter above, "x" for all of them in turn, any other
--- byte one of them), and the response every request gets.
return function(scenario, status, headers, body)
  answer = { status = status, headers = headers, body = body }
  if scenario == "x" then
    for _, name in ipairs(ORDER) do scenarios[name]() end
  else
    (scenarios[scenario] or scenarios[ORDER[scenario:byte() % #ORDER + 1]])()
  end
end
