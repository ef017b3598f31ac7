-- The Client class: every public method of a client, defined here by name (most delegate in a
-- line), and the model methods made from the contracts in models.lua. A client owns its settings,
-- its transport (the C core: connections, and the API key, which never comes back to Lua) and its
-- engine (engine.lua), which moves every call and task; the public module (dashscope.lua) makes
-- clients with client.new.
local core = require("dashscope.core")
local check = require("dashscope.check")
local models = require("dashscope.models")
local json = require("dashscope.json")
local detect = require("dashscope.detect")
local engine = require("dashscope.engine")
local files = require("dashscope.files")
local task = require("dashscope.task")
local waits = require("dashscope.waits")
local listing = require("dashscope.listing")
local localfile = require("dashscope.localfile")
local misuse = require("dashscope.misuse")
local journal = require("dashscope.journal")

local client = {}

local Client = { __name = "dashscope.Client" }
Client.__index = Client

local function lua_version()
  if type(jit) == "table" and jit.version then
    return jit.version
  end
  return _VERSION
end

--- A client for checked `settings` (config.settings). The key leaves Lua here: only the
--- transport, in C, holds it from now on. `transport`: one to use instead of a new one (the
--- stand-in of fuzz/response_driver.lua).
function client.new(settings, transport)
  transport = transport or core.new_transport { max_connections = settings.max_connections }
  local key = settings.api_key
  settings.api_key = nil
  transport:set_credential("Authorization: Bearer " .. key, key)
  local ua = string.format("lua-dashscope/%s (%s; %s)", core.VERSION, lua_version(), core.libcurl_version)
  if settings.user_agent then
    ua = ua .. " " .. settings.user_agent
  end
  return setmetatable({
    base_url = settings.base_url,
    key_source = settings.key_source,
    _settings = settings,
    _transport = transport,
    _engine = engine.new(transport, settings, ua),
  }, Client)
end

function Client:__tostring()
  return string.format("dashscope.Client (%s)", self.base_url)
end

-- Raises unless called with a colon on an open client.
local function checkself(self, method)
  if getmetatable(self) ~= Client then
    misuse.colon(method)
  end
  check.open(self, "client:" .. method)
end

--- Closes the client's connections. Every call in flight ends with an `Aborted` error, so whoever
--- waits for one (a submit, poll, wait, wait_all, download, also from inside a callback of this
--- client, which is where a close usually comes from then) gets nil and that error; queued
--- callbacks are dropped, and nothing is tracked any more. Idempotent. Using the client (or its
--- tasks) afterwards raises.
function Client:close()
  if self._closed then return end
  self._closed = true
  self._engine:close()
end
Client.__close = Client.close

--- One non-blocking step: advances every transfer in flight, finishes calls, sends the status
--- queries that are due, runs the callbacks. Returns the seconds until it next has work.
function Client:step()
  check.open(self, "client:step")
  return self._engine:step()
end

--- For event loops: the sockets libcurl wants watched now, { [fd] = "r" | "w" | "rw" }.
function Client:sockets()
  return self._engine:sockets() -- closed from a callback: none, so a driver drops its handles
end

--- For event loops: `fd` is readable and/or writable. Drives it, then steps; returns the seconds
--- until the client next has work.
function Client:socket_ready(fd, readable, writable)
  self._engine:socket_action(fd, readable, writable)
  local delay = self:step()
  return delay
end

--- Where the client's quotas are kept: { kind = "local" | "shdict" | "redis", up = true while
--- shared ones are in use, state, url (a Redis URL without its password) }.
function Client:quota_store()
  check.open(self, "client:quota_store")
  return self._engine:quota_store()
end

--- True while any task is tracked or any call is in flight or waiting to be sent.
function Client:busy()
  return self._engine:busy()
end

--- for task, result, err in client:each_done(tasks, opts) do ... end: every task once per place
--- it has in `tasks` (given twice, it comes twice, one after the other), in the order they end; at
--- the deadline the rest come with a WaitTimeout error, in the order given. A callback (or the
--- loop's body) that closes the client ends the loop's wait: the rest come with an Aborted error.
function Client:each_done(tasks, opts)
  local iterator = waits.each_done(self, tasks, opts)
  return iterator
end

--- Waits for every task: an array of results in the order given (nil where a task did not
--- succeed) and an array of the errors at the same places; a task given twice fills both places.
function Client:wait_all(tasks, opts)
  local results, errs = waits.wait_all(self, tasks, opts)
  return results, errs
end

--- Waits for the first task to end: that task, its result (or nil) and its error.
function Client:wait_any(tasks, opts)
  local t, result, err = waits.wait_any(self, tasks, opts)
  return t, result, err
end

--- Follows a task without waiting: callbacks { on_status = fn(task, status), on_done =
--- fn(task, result, err) } run from step() (so from the event loop that drives the client).
function Client:watch(t, callbacks)
  waits.check_tasks(self, { t }, "watch")
  check.fields({
    { name = "on_status", type = "function" }, { name = "on_done", type = "function" },
  }, callbacks or {}, "watch")
  t:_watch(callbacks)
  self._engine:track(t)
  return t
end

--- client:tasks(filter): one page of the task list: { total, data, page_no, page_size,
--- total_page, request_id }, or nil and err. See listing.lua.
function Client:tasks(filter)
  checkself(self, "tasks")
  local page, err = listing.tasks(self._engine, filter)
  return page, err
end

--- client:each_task(filter): for item, err in client:each_task{...} do ... end, over every page
--- from filter.page_no on. A failure yields false, err and ends the loop.
function Client:each_task(filter)
  checkself(self, "each_task")
  local iterator = listing.each_task(self._engine, filter)
  return iterator
end

--- client:journal(path, opts): jobs kept in a file that survives the process (see journal.lua):
--- the Journal, locked by this process, or nil and err.
function Client:journal(path, opts)
  checkself(self, "journal")
  local j, err = journal.open(self, path, opts)
  return j, err
end

local SUBMIT_PATH = "/services/aigc/image2video/video-synthesis"

local function submit_shape(body)
  if type(body.output) ~= "table" or type(body.output.task_id) ~= "string"
     or not body.output.task_id:find("^[%w%-_]+$") then
    return nil, "no output.task_id"
  end
  return true
end

-- Sends one checked job (within the model's submit quota): a task handle, or nil and err.
function Client:_submit(model, input, parameters)
  local eng = self._engine
  local uploaded, uerr = files.resolve(eng, model, input) -- local files become oss:// URLs
  if uploaded == nil then
    return nil, uerr
  end
  local t
  local _, err = eng:call {
    method = "POST", path = SUBMIT_PATH, purpose = "submit", expect = submit_shape,
    headers = { "X-DashScope-Async: enable", files.oss_header(input) },
    body = json.encode({ model = model, input = input, parameters = parameters }),
    limiter = eng:limiter("submit", model),
    on_done = function(body)
      if not body then return end
      -- Followed from the answer on, whoever waits for it later, and known before the call
      -- returns (so the after-run hooks, an event loop's re-sync, see it).
      t = task.new(self, body.output.task_id, model, type(body.request_id) == "string" and body.request_id or nil,
        body.output.task_status)
      eng:track(t, eng:now())
    end,
  }
  if not t then
    return nil, err
  end
  return t
end

-- The model methods, one per contract of models.lua, made here: client:videoretalk,
-- client:emoji, client:liveportrait (async: check the flat table, place each field, run the
-- model's detector first when it wants what that finds, submit: a task) and the detectors
-- client:liveportrait_detect, client:emoji_detect (synchronous: check, detect: a result table).
for method, contract in pairs(models) do
  if contract.synchronous then
    Client[method] = function(self, fields)
      checkself(self, method)
      return detect.run(self._engine, contract, check.fields(contract.fields, fields, method).input)
    end
  else
    Client[method] = function(self, fields)
      checkself(self, method)
      local placed = check.fields(contract.fields, fields, method)
      local input = placed.input or {}
      if contract.detect then
        local ok, err = detect.fill(self._engine, contract, input, method)
        if not ok then
          return nil, err
        end
      end
      local parameters = placed.parameters or (contract.parameters and {} or nil)
      return self:_submit(contract.model, input, parameters)
    end
  end
end

--- client:upload(model, path): uploads a local file (a path, explicit here, or a dashscope.file)
--- for `model` (temporary, 48 h): its oss:// URL, or nil and err. Model methods do this by
--- themselves for a dashscope.file in a url field.
function Client:upload(model, path)
  checkself(self, "upload")
  if type(model) ~= "string" or not model:find("^[%w%-_.]+$") then
    check.fail("upload", "model must be a model name string")
  end
  local file = localfile.is(path) and path or localfile.new(path, "upload")
  local ok, err = files.upload(self._engine, model, { file })
  if not ok then
    return nil, err
  end
  return files.uploaded(file, model)
end

--- client:submit(model, input, parameters): any async video-synthesis model, sent as given.
function Client:submit(model, input, parameters)
  checkself(self, "submit")
  if type(model) ~= "string" or model == "" then
    check.fail("submit", "model must be a non-empty string (got " .. (model == "" and '""' or type(model)) .. ")")
  end
  if type(input) ~= "table" then
    check.fail("submit", "input must be a table (got " .. type(input) .. ")")
  end
  if parameters ~= nil and type(parameters) ~= "table" then
    check.fail("submit", "parameters must be a table or nil (got " .. type(parameters) .. ")")
  end
  -- a dashscope.file at input's top level is uploaded (files.resolve); anywhere else it raises
  local sent_as_is = {}
  for k, v in pairs(input) do
    if not localfile.is(v) then sent_as_is[k] = v end
  end
  check.jsonable(sent_as_is, "input", "submit")
  check.jsonable(parameters or {}, "parameters", "submit")
  return self:_submit(model, input, parameters or {})
end

--- client:task(id, model): a handle for a task submitted earlier or elsewhere.
function Client:task(id, model)
  checkself(self, "task")
  if type(id) ~= "string" or not id:find("^[%w%-_]+$") then
    check.fail("task", "id must be a task id string (letters, digits, '-' and '_')")
  end
  if model ~= nil and type(model) ~= "string" then
    check.fail("task", "model must be a string or nil")
  end
  return task.new(self, id, model, nil, nil)
end

return client
