-- The public module (what `require "dashscope"` returns) and the client: options, one model
-- method per contract in models.lua, submit, and the scheduler loop. The loops that may wait live
-- here, in Lua, so that a `sleep` function such as ngx.sleep can yield (LuaJIT cannot yield across
-- a C call). Mechanism (HTTP, the multi handle, the clock) is in the C core.
local core = require("dashscope.core")
local check = require("dashscope.check")
local errors = require("dashscope.errors")
local config = require("dashscope.config")
local models = require("dashscope.models")
local json = require("dashscope.json")
local http = require("dashscope.http")
local detect = require("dashscope.detect")
local files = require("dashscope.files")
local task = require("dashscope.task")
local scheduler = require("dashscope.scheduler")
local listing = require("dashscope.listing")
local localfile = require("dashscope.localfile")
local misuse = require("dashscope.misuse")

-- The public module. Besides the functions below, the contracts as data, for tools (the CLI, an
-- editor's completion): models, the client options and their defaults, the task-list filter; and
-- the two helpers the checker words its messages with.
local dashscope = {
  VERSION = core.VERSION,
  models = models,
  options = config.OPTIONS,
  defaults = config.DEFAULTS,
  task_filter = listing.TASK_FILTER,
  is_misuse = misuse.is,
  nearest = check.nearest,
  range_text = check.range_text,
  _core = core,
}

local Client = { __name = "dashscope.Client" }
Client.__index = Client
for _, methods in ipairs { scheduler, listing } do
  for name, method in pairs(methods) do
    if type(method) == "function" then Client[name] = method end
  end
end

local function lua_version()
  if type(jit) == "table" and jit.version then
    return jit.version
  end
  return _VERSION
end

--- dashscope.file(path): a local file for a url field (or client:submit's input), checked now: a
--- readable, non-empty regular file, opened without blocking. Raises otherwise. See files.lua.
function dashscope.file(path)
  return localfile.new(path, "dashscope.file")
end

--- dashscope.new(opts): a client. Raises on a bad option or when no API key is found.
function dashscope.new(opts)
  local settings = config.settings(opts)
  local self = setmetatable({
    base_url = settings.base_url,
    _settings = settings,
    _transport = core.new_transport { max_connections = settings.max_connections },
  }, Client)
  self:_init_scheduler(settings)
  local ua = string.format("lua-dashscope/%s (%s; %s)", core.VERSION, lua_version(), core.curl_version)
  if settings.user_agent then
    ua = ua .. " " .. settings.user_agent
  end
  self._user_agent = ua
  local key = settings.api_key
  settings.api_key = nil -- from here on only the transport, in C, holds it (http.init)
  http.init(self, settings, key)
  return self
end

function Client:__tostring()
  return string.format("dashscope.Client (%s)", self.base_url)
end

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
  local calls = {}
  for call in pairs(self._calls or {}) do
    calls[#calls + 1] = { call = call, sent = call.request ~= nil }
  end
  http.close(self)
  self._transport:close()
  -- Ended after the transport closed: an on_done (the upload of several files, a task's query)
  -- may look at the client, and must find it closed.
  for _, c in ipairs(calls) do
    local call = c.call
    if not call.done then
      local err = errors.closed { sent = c.sent and call.kind == "submit" }
      err.attempts = call.attempts
      call.done, call.err = true, err
      if call.on_done then call.on_done(nil, err) end
    end
  end
  self._events, self._live, self._dirty = {}, {}, {}
end
Client.__close = Client.close

local SUBMIT_PATH = "/services/aigc/image2video/video-synthesis"

local function submit_shape(body)
  if type(body.output) ~= "table" or type(body.output.task_id) ~= "string"
     or not body.output.task_id:find("^[%w%-_]+$") then
    return nil, "no output.task_id"
  end
  return true
end

-- Sends one checked job asynchronously (within the model's submit quota); a task handle, or nil
-- and err.
function Client:_submit(model, input, parameters)
  local uploaded, uerr = files.resolve(self, model, input) -- local files become oss:// URLs
  if uploaded == nil then
    return nil, uerr
  end
  local headers = { "X-DashScope-Async: enable", files.oss_header(input) }
  local t
  local _, err = self:_call {
    method = "POST", path = SUBMIT_PATH, kind = "submit", headers = headers, expect = submit_shape,
    body = json.encode({ model = model, input = input, parameters = parameters }),
    limiter = self._limits.submit[model],
    on_done = function(body)
      if not body then return end
      -- Followed from the answer on, whoever waits for it later, and known before the call
      -- returns (so the after-run hooks, an event loop's re-sync, see it).
      t = task.new(self, body.output.task_id, model, type(body.request_id) == "string" and body.request_id or nil,
        body.output.task_status, core.now())
      self:_track(t)
    end,
  }
  if not t then
    return nil, err
  end
  return t
end

-- One method per model, made from its contract: check the flat table, place each field, then
-- submit (after the model's detector, when it wants what that finds), or for a detector, detect.
for method, contract in pairs(models) do
  if contract.synchronous then
    Client[method] = function(self, fields)
      checkself(self, method)
      return detect.run(self, contract, check.fields(contract.fields, fields, method, 2).input)
    end
  else
    task.result_path(contract.model, contract.result or "output.video_url")
    Client[method] = function(self, fields)
      checkself(self, method)
      local placed = check.fields(contract.fields, fields, method, 2)
      local input = placed.input or {}
      if contract.detect then
        local ok, err = detect.fill(self, contract, input, method, 2)
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
    check.fail("upload", "model must be a model name string", 2)
  end
  local file = localfile.is(path) and path or localfile.new(path, "upload")
  local ok, err = files.upload(self, model, { file })
  if not ok then
    return nil, err
  end
  return file.urls[model]
end

--- client:submit(model, input, parameters): any async video-synthesis model, sent as given.
function Client:submit(model, input, parameters)
  checkself(self, "submit")
  if type(model) ~= "string" or model == "" then
    check.fail("submit", "model must be a non-empty string (got " .. (model == "" and '""' or type(model)) .. ")", 2)
  end
  if type(input) ~= "table" then
    check.fail("submit", "input must be a table (got " .. type(input) .. ")", 2)
  end
  if parameters ~= nil and type(parameters) ~= "table" then
    check.fail("submit", "parameters must be a table or nil (got " .. type(parameters) .. ")", 2)
  end
  -- a dashscope.file at input's top level is uploaded (files.resolve); anywhere else it raises
  local sent_as_is = {}
  for k, v in pairs(input) do
    if not localfile.is(v) then sent_as_is[k] = v end
  end
  check.jsonable(sent_as_is, "input", "submit", 2)
  check.jsonable(parameters or {}, "parameters", "submit", 2)
  return self:_submit(model, input, parameters or {})
end

--- client:task(id, model): a handle for a task submitted earlier or elsewhere.
function Client:task(id, model)
  checkself(self, "task")
  if type(id) ~= "string" or not id:find("^[%w%-_]+$") then
    check.fail("task", "id must be a task id string (letters, digits, '-' and '_')", 2)
  end
  if model ~= nil and type(model) ~= "string" then
    check.fail("task", "model must be a string or nil", 2)
  end
  return task.new(self, id, model, nil, nil)
end

return dashscope
