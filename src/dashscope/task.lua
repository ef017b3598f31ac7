-- Task handles: one async job of the service (protocol.md §4, §5). A task knows its id, model and
-- last status; it is polled on the client's schedule while somebody waits on it, and turns the
-- final answer into the result table of API.md. Waiting loops live in client.lua (they may yield).
local errors = require("dashscope.errors")
local http = require("dashscope.http")
local check = require("dashscope.check")

local Task = { __name = "dashscope.Task" }
Task.__index = Task

local TERMINAL = { SUCCEEDED = true, FAILED = true, CANCELED = true, UNKNOWN = true }

-- Where each known model puts its video (protocol.md §4); other models: both places are tried.
local RESULT_PATH = {}

local task = { Task = Task, TERMINAL = TERMINAL }

--- Registers where `model`'s SUCCEEDED answer carries the video URL ("output.results.video_url").
function task.result_path(model, path)
  RESULT_PATH[model] = path
end

local function dig(t, path)
  for part in path:gmatch("[^.]+") do
    if type(t) ~= "table" then return nil end
    t = t[part]
  end
  return t
end

local function video_url(body, model)
  local path = RESULT_PATH[model]
  if path then
    return dig(body, path)
  end
  return dig(body, "output.video_url") or dig(body, "output.results.video_url")
end

function task.new(client, id, model, request_id, status)
  return setmetatable({
    id = id, model = model, request_id = request_id,
    _client = client, _status = status or "PENDING",
    _polls = 0, _interval = client._settings.poll_interval,
    _next_poll = status and client:_now() + client._settings.poll_interval or 0,
    _watchers = 0,
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

-- Applies one query answer (or its failure) to the task.
function Task:_apply(body, err)
  if err then
    self._last_error = err
    if not err.retryable then
      self._fatal = err
    end
    return
  end
  self._last_error = nil
  self._status = body.output.task_status
  if TERMINAL[self._status] then
    self._result = make_result(self, body)
  end
end

-- Schedules the next status query: the SDK's schedule by default (protocol.md §12.1), starting
-- at poll_interval and doubling every third query up to max_poll_interval.
function Task:_schedule(now)
  local s = self._client._settings
  self._polls = self._polls + 1
  if self._polls % 3 == 0 then
    self._interval = math.min(self._interval * 2, s.max_poll_interval)
  end
  self._next_poll = now + self._interval
end

--- Starts one status query (non-blocking). `on_done(body, err)` runs when it has finished.
function Task:_query(on_done)
  self._inflight = true
  return http.start(self._client, {
    method = "GET", path = "/tasks/" .. self.id, kind = "query", expect = query_shape,
    on_done = function(body, err)
      self._inflight = false
      self:_apply(body, err)
      self:_schedule(self._client:_now())
      if on_done then on_done(body, err) end
    end,
  })
end

function Task:_end_error()
  local r, status = self._result, self._status
  if status == "SUCCEEDED" then
    return nil
  end
  local e = { task_id = self.id, request_id = r and r.request_id }
  if status == "FAILED" then
    e.code = r and r.code or "TaskFailed"
    e.message = r and r.message or "the task failed"
  elseif status == "CANCELED" then
    e.code, e.message = "TaskCanceled", "the task was canceled"
  elseif status == "UNKNOWN" then
    e.code, e.message = "TaskUnknown", "the service does not know this task (unknown id, or older than 24 h)"
  end
  return errors.new(e)
end

--- One status query now: the status, or nil and err.
function Task:poll()
  local call = self:_query()
  self._client:_run(function() return call.done end)
  if call.err then
    return nil, call.err
  end
  return self._status
end

local WAIT_OPTIONS = {
  { name = "timeout", type = "number", min = 0, doc = "seconds (default: the client's wait_timeout)" },
  { name = "on_status", type = "function", doc = "function(task, status) called on each change of status" },
  { name = "sleep", type = "function", doc = "function(seconds) used instead of blocking, e.g. ngx.sleep" },
}
task.WAIT_OPTIONS = WAIT_OPTIONS

--- Waits until the task ends: the result for SUCCEEDED, else nil and err.
function Task:wait(opts)
  local o = check.fields(WAIT_OPTIONS, opts or {}, "task:wait", 2)
  local client = self._client
  local deadline = client:_now() + (o.timeout or client._settings.wait_timeout)
  local seen, raised = nil, nil
  local function changed()
    if self._status ~= seen then
      seen = self._status
      if o.on_status then
        -- pcall only around the callback: a pcall around the loop would stop a sleep that yields
        -- on Lua 5.1. The error is raised again once the task is no longer watched.
        local ok, e = pcall(o.on_status, self, seen)
        if not ok then
          raised = { e }
          return true
        end
      end
    end
    return self:ended() or self._fatal ~= nil
  end
  self._fatal = nil
  client:_watch(self)
  local finished = client:_run(changed, deadline, o.sleep)
  client:_unwatch(self)
  if raised then
    error(raised[1], 0)
  end
  if self._fatal then
    return nil, self._fatal
  end
  if not finished then
    local last = self._last_error and (" (last query: " .. tostring(self._last_error) .. ")") or ""
    return nil, errors.new({
      code = "WaitTimeout", task_id = self.id, retryable = true,
      message = string.format("task still %s after waiting %g s%s", self._status,
        o.timeout or client._settings.wait_timeout, last),
    })
  end
  local err = self:_end_error()
  if err then
    return nil, err
  end
  return self._result
end

--- Cancels a task that is still PENDING: true, or nil and err.
function Task:cancel()
  local call = http.start(self._client, {
    method = "POST", path = "/tasks/" .. self.id .. "/cancel", kind = "query",
  })
  self._client:_run(function() return call.done end)
  if call.err then
    call.err.task_id = self.id
    return nil, call.err
  end
  self._status = "CANCELED"
  self._result = { task_id = self.id, model = self.model, status = "CANCELED",
                   request_id = call.body_value.request_id, output = {} }
  return true
end

return task
