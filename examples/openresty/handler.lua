-- The locations of examples/openresty/nginx.conf: POST or GET /job submits a LivePortrait or a
-- VideoRetalk job and answers 202 at once; GET /job/<task_id> answers where the job stands; GET /ping
-- answers at once.
--
-- Every argument comes from the network, so the handler trusts none of it: the URL arguments must
-- be remote http(s):// URLs, checked here before the client is called (a bare path such as
-- /etc/passwd would otherwise name a file of this server); anything the client still refuses
-- (it raises on misuse) becomes a 400 too, with the message's Lua position cut off. Nothing this
-- file answers carries the API key.
--
-- One dashscope client per worker, made on the first request that needs it (ngx.sleep, its
-- `sleep`, works only inside a request). Every wait of the client yields the request through
-- ngx.sleep, so the worker goes on serving other requests (/ping) meanwhile. The service's quotas
-- are per account, so the workers' clients share them through the shared dict QUOTA_DICT
-- (nginx.conf's lua_shared_dict): together they never send more than the account may.
local dashscope = require("dashscope")
local cjson = require("cjson.safe")

local handler = {}

local MAX_URL = 2048          -- bytes of one URL argument
local MAX_WAIT = 60           -- seconds GET /job/<id>?wait=N may hold its request
local MAX_KNOWN = 1024        -- tasks this worker submitted and remembers (for GET /job/<id>)
local QUOTA_DICT = "dashscope" -- the lua_shared_dict the workers share the account's quotas through

local client                  -- this worker's
local known, known_order = {}, {} -- task id -> task handle, and the ids oldest first

-- The key as the workers see it (nginx.conf passes DASHSCOPE_API_KEY through), only to make sure
-- no text this file answers carries it, whatever produced that text.
local KEY = os.getenv("DASHSCOPE_API_KEY")

local function scrub(s)
  if type(s) ~= "string" then return s end
  if KEY and #KEY >= 8 then
    local from = 1
    while true do
      local i, j = s:find(KEY, from, true)
      if not i then break end
      s = s:sub(1, i - 1) .. "<api-key>" .. s:sub(j + 1)
      from = i + #"<api-key>"
    end
  end
  return s
end

local function reply(status, body, headers)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  ngx.header["Cache-Control"] = "no-store" -- result URLs are signed: nothing here is to be cached
  for name, value in pairs(headers or {}) do ngx.header[name] = value end
  ngx.say(cjson.encode(body))
end

local function refuse(parameter, message)
  return reply(400, { error = { code = "InvalidParameter", parameter = parameter, message = message } })
end

-- An error value of the client as JSON (its fields never carry the key; scrubbed once more anyway).
local function error_body(err)
  return { error = { code = scrub(err.code), message = scrub(err.message), status = err.status,
                     request_id = scrub(err.request_id), task_id = scrub(err.task_id),
                     retryable = err.retryable } }
end

-- Why `v` is not a URL the service may fetch for us, or nil when it is one. Only http:// and
-- https://: a bare path, file:// or ~ names a file of this server, and oss:// names a file uploaded
-- by this account (someone else's upload, for a caller who learned its name).
local function not_remote(v)
  if #v > MAX_URL then
    return "must be at most " .. MAX_URL .. " bytes"
  end
  if v:find("[%c%s]") then
    return "must not contain spaces or control characters"
  end
  local scheme, rest = v:match("^(%a[%w+.%-]*)://(.*)$")
  scheme = scheme and scheme:lower()
  if scheme ~= "http" and scheme ~= "https" then
    return "must be an http:// or https:// URL (local files and other schemes are refused)"
  end
  local authority = rest:match("^[^/?#]*")
  if authority == "" then
    return "must name a host"
  end
  if authority:find("@", 1, true) then
    return "must not carry a user name or password"
  end
  return nil
end

-- The client's warnings (the quota store failed, or came back) go to the error log: the jobs go on
-- meanwhile under each worker's own limits, and a 429 from the service is still waited out.
local function warn(message, info)
  local code = type(info) == "table" and info.code or "?"
  ngx.log(ngx.WARN, "dashscope: ", scrub(tostring(message)), " (", scrub(tostring(code)), ")")
end

-- Where this worker's client keeps its quotas: the shared dict, or (false) in the worker alone,
-- said once in the error log, when nginx.conf declares no such dict.
local function quota_store()
  local dict = ngx.shared[QUOTA_DICT]
  if dict then return dict end
  ngx.log(ngx.WARN, "dashscope: no lua_shared_dict ", QUOTA_DICT, " in nginx.conf: each worker keeps the ",
          "service's quotas alone, so the workers together may exceed them (the service answers 429, waited out)")
  return false
end

-- This worker's client, or nil after answering 500 (no API key, most likely: the reason goes to the
-- error log, not to the caller).
local function get_client()
  if client then return client end
  local ok, c = pcall(dashscope.new, { sleep = ngx.sleep, quota = quota_store(), on_warning = warn })
  if not ok then
    ngx.log(ngx.ERR, "dashscope.new: ", scrub(tostring(c)))
    reply(500, { error = { code = "ServerMisconfigured",
                           message = "the service client could not be made (see the server's error log)" } })
    return nil
  end
  client = c
  return client
end

local function remember(task)
  if known[task.id] then return end
  known[task.id] = task
  known_order[#known_order + 1] = task.id
  if #known_order > MAX_KNOWN then
    known[table.remove(known_order, 1)] = nil
  end
end

-- What /job takes for each model (its `model` argument, default liveportrait): the client's method,
-- then each argument in the order it is checked, with how it is read ("url": a remote URL;
-- "boolean", "integer"; "text": checked by the client) and whether it is required. The optional
-- ones are fields of the client's contract (models.lua) this service lets its callers choose.
local JOBS = {
  liveportrait = { method = "liveportrait",
    { "image_url", "url", true }, { "audio_url", "url", true }, { "template_id", "text" } },
  videoretalk = { method = "videoretalk",
    { "video_url", "url", true }, { "audio_url", "url", true }, { "ref_image_url", "url" },
    { "video_extension", "boolean" }, { "query_face_threshold", "integer" } },
}

local BOOLEANS = { ["true"] = true, ["1"] = true, ["false"] = false, ["0"] = false }

-- An argument's value as the client takes it, or nil and why not.
local function read_arg(kind, name, value)
  if kind == "url" then
    local why = not_remote(value)
    if why then return nil, name .. " " .. why end
  elseif kind == "boolean" then
    if BOOLEANS[value] == nil then return nil, name .. " must be true or false" end
    return BOOLEANS[value]
  elseif kind == "integer" then
    if not value:find("^%-?%d+$") or #value > 9 then return nil, name .. " must be an integer" end
    return tonumber(value)
  end
  return value
end

-- What the usage of `job` is, for the messages of a 400.
local function usage(job)
  local required, optional = {}, {}
  for _, arg in ipairs(job) do
    table.insert(arg[3] and required or optional, arg[1])
  end
  return " (give " .. table.concat(required, " and ") .. ", optionally " .. table.concat(optional, ", ") .. ")"
end

-- The job /job's arguments ask for: its JOBS entry and the fields for the client; or nil after
-- answering 400 (nothing is sent).
local function job_fields()
  local args, truncated = ngx.req.get_uri_args(8)
  if truncated then
    return refuse(nil, "too many arguments")
  end
  if args.model ~= nil and (type(args.model) ~= "string" or not JOBS[args.model]) then
    return refuse("model", "model must be liveportrait (the default) or videoretalk, given once")
  end
  local job = JOBS[args.model or "liveportrait"]
  local known_args = { model = true }
  for _, arg in ipairs(job) do known_args[arg[1]] = true end
  for name, value in pairs(args) do
    if not known_args[name] then
      return refuse(name, "unknown argument" .. usage(job))
    end
    if type(value) ~= "string" then
      return refuse(name, "must be given once, with a value")
    end
  end
  local fields = {}
  for _, arg in ipairs(job) do
    local name, value = arg[1], args[arg[1]]
    if value == nil and arg[3] then
      return refuse(name, "is required" .. usage(job))
    end
    if value ~= nil then
      local why
      fields[name], why = read_arg(arg[2], name, value)
      if why then return refuse(name, why) end
    end
  end
  return job, fields
end

--- POST or GET /job?[model=liveportrait&]image_url=https://...&audio_url=https://...[&template_id=calm]
--- or /job?model=videoretalk&video_url=https://...&audio_url=https://...[&ref_image_url=...]: submits
--- the job (waiting its turn in the account's quota, shared by the workers) and answers 202 with its
--- id and where to ask about it (Location: /job/<id>), without waiting for it to run; 400 for a
--- refused argument (nothing is sent), 502 when the service or the network failed (the error says
--- when the job may exist all the same).
function handler.job()
  local method = ngx.req.get_method()
  if method ~= "POST" and method ~= "GET" then
    return reply(405, { error = { code = "MethodNotAllowed", message = "use POST (or GET) /job" } },
                 { Allow = "POST, GET" })
  end
  local job, fields = job_fields()
  if not job then return end
  if not get_client() then return end
  -- The client checks every field again and raises on what its contract refuses, before a byte is
  -- sent (a template_id it does not know, a threshold out of range): a 400 with its message. The
  -- pcall may be yielded across (ngx.sleep while the submit waits): LuaJIT allows it.
  local ok, task, err = pcall(client[job.method], client, fields)
  if not ok then
    local message = scrub(tostring(task))
    ngx.log(ngx.INFO, "refused: ", message)
    -- "…/handler.lua:123: liveportrait: field ..." -> "liveportrait: field ..."; one line, short
    message = message:gsub("^[^\n]-:%d+: ", ""):match("^[^\n]*"):sub(1, 300)
    local field = message:match("field '([%w_]+)'")
    return reply(400, { error = { code = "InvalidParameter", parameter = field, message = message } })
  end
  if not task then
    return reply(502, error_body(err))
  end
  remember(task)
  local location = "/job/" .. task.id
  return reply(202, { task_id = task.id, status = task:status(), status_url = location,
                      request_id = task.request_id }, { Location = location })
end

-- What GET /job/<id> answers about a task: 200 with its status (and result once it has one), 404
-- when the service does not know the id.
local function describe(task)
  local status = task:status()
  local body = { task_id = task.id, status = status }
  if not task:ended() then
    return reply(200, body)
  end
  local result, err = task:outcome()
  local r = result or task:result()
  if r then
    body.video_url, body.usage = r.video_url, r.usage
    body.submit_time, body.scheduled_time, body.end_time = r.submit_time, r.scheduled_time, r.end_time
  end
  if err then
    body.error = error_body(err).error
  end
  return reply(status == "UNKNOWN" and 404 or 200, body)
end

--- GET /job/<task_id>[?wait=seconds]: the task's current status, and its result once it has ended.
--- A task this worker submitted and saw end is answered from memory; otherwise one status query
--- (with wait=N, up to 60 s: until the task ends or N seconds pass, yielding through ngx.sleep).
--- 400 for a malformed id or wait, 502 when the query failed.
function handler.status()
  if ngx.req.get_method() ~= "GET" and ngx.req.get_method() ~= "HEAD" then
    return reply(405, { error = { code = "MethodNotAllowed", message = "use GET /job/<task_id>" } },
                 { Allow = "GET, HEAD" })
  end
  local id = ngx.var.uri:match("^/job/(.*)$") or ""
  if #id == 0 or #id > 64 or not id:find("^[%w%-_]+$") then
    return refuse("task_id", "must be a task id: 1 to 64 letters, digits, '-' or '_'")
  end
  local args = ngx.req.get_uri_args(4)
  local wait = 0
  if args.wait ~= nil then
    wait = type(args.wait) == "string" and tonumber(args.wait)
    if not wait or wait ~= wait or wait < 0 or wait > MAX_WAIT then
      return refuse("wait", "must be a number of seconds from 0 to " .. MAX_WAIT)
    end
  end
  if not get_client() then return end
  -- another worker's task (or an older one): its model is not known here, and need not be
  local task = known[id] or client:task(id)
  if task:ended() then
    return describe(task)
  end
  local _, err
  if wait > 0 then
    _, err = task:wait { timeout = wait }
    if err and err.code == "WaitTimeout" then err = nil end
    if err and task:ended() then err = nil end -- FAILED, CANCELED, UNKNOWN: described below
  else
    _, err = task:poll()
  end
  if err then
    return reply(502, error_body(err))
  end
  return describe(task)
end

--- GET /ping: answers at once (shows the worker is free while jobs wait).
function handler.ping()
  ngx.say('{"pong":true}')
end

return handler
