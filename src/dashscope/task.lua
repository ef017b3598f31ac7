-- Task handles: one async job of the service (docs/protocol.md §4, §5). A task keeps what its user
-- sees: its id, model, request_id, last status, result, watchers and how it ended. While the
-- client tracks it, the client's engine (engine.lua) asks about it when its plan (planner.lua,
-- which owns the plan) says; this file turns each answer into state, the final answer into the
-- result table of docs/reference.md, and status changes into events for whoever watches. The
-- waits run in waits.lua, the download in download.lua.
local errors = require("dashscope.errors")
local check = require("dashscope.check")
local models = require("dashscope.models")
local download = require("dashscope.download")
local waits = require("dashscope.waits")
local TERMINAL = require("dashscope.status").TERMINAL

local Task = { __name = "dashscope.Task" }
Task.__index = Task

local task = {}

local NONE = {} -- an empty list, never written

local function split(path)
  local parts = {}
  for part in path:gmatch("[^.]+") do parts[#parts + 1] = part end
  return parts
end

-- Where each model of models.lua puts its video in a SUCCEEDED answer (docs/protocol.md §4:
-- its contract's `result`); other models (client:submit): both places are tried.
local RESULT_PATH = {}
for _, contract in pairs(models) do
  if not contract.synchronous then
    RESULT_PATH[contract.model] = split(contract.result or "output.video_url")
  end
end

local function dig(t, parts)
  for _, part in ipairs(parts) do
    if type(t) ~= "table" then return nil end
    t = t[part]
  end
  return t
end

local FLAT, NESTED = split("output.video_url"), split("output.results.video_url")

local function video_url(body, model)
  local parts = RESULT_PATH[model]
  if parts then
    return dig(body, parts)
  end
  return dig(body, FLAT) or dig(body, NESTED)
end

--- A handle for task `id` of `client`.
function task.new(client, id, model, request_id, status)
  return setmetatable({
    id = id, model = model, request_id = request_id,
    -- a submit answer's status is taken only if it is a string (the fuzzer sent a table)
    _client = client, _status = type(status) == "string" and status or "PENDING",
    -- _watchers: made by the first _watch (10,000 tasks nobody watches hold no empty lists)
  }, Task)
end

function Task:__tostring()
  return string.format("dashscope.Task %s (%s, %s)", self.id, self.model or "model unknown", self._status)
end

function Task:status()
  return self._status
end

function Task:ended()
  return TERMINAL[self._status] == true
end

function Task:result()
  return self._result
end

-- The query answer's shape: what we need to read it at all.
local function query_shape(body)
  if type(body.output) ~= "table" then
    return nil, "no output object"
  end
  if type(body.output.task_status) ~= "string" then
    return nil, "no output.task_status"
  end
  return true
end

local function make_result(self, body)
  local out = body.output
  return {
    task_id = out.task_id or self.id,
    model = self.model,
    status = out.task_status,
    video_url = video_url(body, self.model),
    usage = body.usage,
    submit_time = out.submit_time,
    scheduled_time = out.scheduled_time,
    end_time = out.end_time,
    request_id = body.request_id,
    code = out.code,
    message = out.message,
    output = out,
  }
end

--- How the task ended, as far as this client knows (no request): the result for SUCCEEDED, else
--- nil and the error saying why: the service's code and message for FAILED (TaskFailed when it gave
--- none), TaskCanceled, TaskUnknown, or the error that ended following it (a final query
--- failure, Aborted). Nil and no error while the task has not ended. Its strings come from
--- decoded answers and errors.new, both scrubbed of the API key (json.lua, errors.lua).
function Task:outcome()
  if self._fatal then
    return nil, self._fatal
  end
  local r, status = self._result, self._status
  if status == "SUCCEEDED" then
    return r
  end
  if not TERMINAL[status] then
    return nil
  end
  local e = { task_id = self.id, request_id = r and r.request_id }
  if status == "FAILED" then
    e.code = r and type(r.code) == "string" and r.code or "TaskFailed"
    e.message = r and type(r.message) == "string" and r.message or "the task failed"
  elseif status == "CANCELED" then
    e.code, e.message = "TaskCanceled", "the task was canceled"
  else
    e.code, e.message = "TaskUnknown", "the service does not know this task (unknown id, or older than 24 h)"
  end
  return nil, errors.new(e)
end

--- Registers callbacks { on_status = fn(task, status), on_done = fn(task, result, err) }; they run
--- from client:step. Returns the registration (for Task:_unwatch).
function Task:_watch(callbacks)
  local watchers = self._watchers or {}
  watchers[#watchers + 1] = callbacks
  self._watchers = watchers
  return callbacks
end

function Task:_unwatch(callbacks)
  for i, w in ipairs(self._watchers or NONE) do
    if w == callbacks then
      table.remove(self._watchers, i)
      return
    end
  end
end

-- Queues the events of a change of status (and of the end) for delivery by the client.
function Task:_changed()
  local watchers = self._watchers
  if not watchers then return end
  local engine = self._client._engine
  for _, w in ipairs(watchers) do
    if w.on_status then engine:emit(w.on_status, self, self._status) end
  end
  if self:ended() or self._fatal then
    local result, err = self:outcome()
    self._watchers = nil
    for _, w in ipairs(watchers) do
      if w.on_done then engine:emit(w.on_done, self, result, err) end
    end
  end
end

-- A status heard other than from a query answer (a task list, a cancel): set, and told.
function Task:_heard(status)
  if status ~= self._status then
    self._status = status
    self:_changed()
  end
end

-- Applies one query answer (or its failure) to the task; true when the status changed.
function Task:_apply(body, err)
  if err then
    self._last_error = err
    if not err.retryable then
      self._fatal = err
      return true
    end
    return false
  end
  self._last_error = nil
  local before = self._status
  self._status = body.output.task_status
  if TERMINAL[self._status] then
    self._result = make_result(self, body)
  end
  return self._status ~= before
end

-- What every status query shares: a query's call takes it through its metatable (calls.lua
-- reads a call's fields, and writes only its own state on the call itself), so one waiting in
-- the queue costs its path, task and state, not a copy of these and a closure.
local QUERY = { method = "GET", purpose = "query", expect = query_shape }
QUERY.__index = QUERY

function QUERY.on_done(body, err, call)
  local self = call.task
  local changed = self:_apply(body, err)
  self._client._engine:answered(self, body, err)
  if changed then self:_changed() end
  if call.after then call.after(body, err) end
end

--- Starts one status query (non-blocking). `on_done(body, err)` runs when it has finished.
function Task:_query(on_done)
  local engine = self._client._engine
  engine:querying(self)
  return engine:start(setmetatable({
    path = "/tasks/" .. self.id, limiter = engine:limiter("tasks"), task = self, after = on_done,
  }, QUERY))
end

-- Raises when the task's client has been closed: a programming error.
local function open_client(self, method)
  check.open(self._client, "task:" .. method)
end

--- One status query now: the status, or nil and err.
function Task:poll()
  open_client(self, "poll")
  local call = self:_query()
  self._client._engine:run(function() return call.done end)
  if call.err then
    return nil, call.err
  end
  return self._status
end

local WAIT_OPTIONS = {
  { name = "timeout", type = "number", min = 0, doc = "seconds (default: the client's wait_timeout)" },
  { name = "on_status", type = "function", doc = "function(task, status) called on each change of status" },
  { name = "sleep", type = "function", doc = "function(seconds) used instead of blocking, e.g. ngx.sleep" },
  { name = "on_tick", type = "function",
    doc = "function(task, progress) called every `tick` seconds while the task has not ended, with task:progress() (a live display needs no polling)" },
  { name = "tick", type = "number", min = 0.01, max = 3600, doc = "seconds between on_tick calls (default 1)" },
}
task.WAIT_OPTIONS = WAIT_OPTIONS

--- Waits until the task ends: the result for SUCCEEDED, else nil and err.
function Task:wait(opts)
  open_client(self, "wait")
  local o = check.fields(WAIT_OPTIONS, opts or {}, "task:wait")
  local watch
  if o.on_status then
    o.on_status(self, self._status)
    if self._client._closed then -- the callback closed the client
      return nil, errors.closed { task_id = self.id }
    end
    watch = self:_watch { on_status = o.on_status }
  end
  local tick = o.on_tick and { every = o.tick or 1, fn = function() o.on_tick(self, self:progress()) end }
  local result, err = waits.wait_one(self, { timeout = o.timeout, sleep = o.sleep }, tick)
  if watch then self:_unwatch(watch) end
  return result, err
end

--- Streams the video to `path` (complete or absent): the path, or nil and err. See download.lua.
function Task:download(path, opts)
  open_client(self, "download")
  local done, err = download.run(self, path, opts)
  return done, err -- not a tail call: a misuse's position is found by walking the frames
end

--- Where the task stands, as far as this client knows: { status, elapsed (seconds since the
--- submit, when this client submitted it), position (1 = next, among this client's queued
--- tasks of the model, when the service queues them), expected_end (seconds from now, once the
--- model's run time is learned) }.
function Task:progress()
  local p = self._client._engine:progress_of(self)
  p.status = self._status
  return p
end

--- Cancels a task that is still PENDING: true, or nil and err.
function Task:cancel()
  open_client(self, "cancel")
  local engine = self._client._engine
  local body, err = engine:call {
    method = "POST", path = "/tasks/" .. self.id .. "/cancel", purpose = "query", limiter = engine:limiter("tasks"),
  }
  if not body then
    return nil, errors.with(err, { task_id = self.id })
  end
  self._result = { task_id = self.id, model = self.model, status = "CANCELED",
                   request_id = body.request_id, output = {} }
  self:_heard("CANCELED")
  engine:answered(self, nil, nil)
  return true
end

return task
