-- Calls to the service over the client's transport: building the request, classifying what comes
-- back into a decoded body or an error value, and retrying per docs/protocol.md §11. A call is
-- non-blocking: http.start queues it, http.advance (run from client:step) moves every call on.
-- The API key is handed to the client's transport (C memory) at http.init and never kept in Lua:
-- requests to the service ask the transport to add it, and error messages are scrubbed by the
-- transport, so no error, log, tostring or debug hook walking Lua values can show it.
local core = require("dashscope.core")
local json = require("dashscope.json")
local errors = require("dashscope.errors")

local http = {}

local credentials = setmetatable({}, { __mode = "k" })

--- Gives the key of `client` to its transport, and remembers the other headers every request to
--- the service carries.
function http.init(client, settings, key)
  client._transport:set_credential("Authorization: Bearer " .. key, key)
  local transport = client._transport
  local headers = {
    "Accept: application/json",
  }
  if settings.workspace then
    headers[#headers + 1] = "X-DashScope-WorkSpace: " .. settings.workspace
  end
  if settings.data_inspection then
    headers[#headers + 1] = "X-DashScope-DataInspection: enable"
  end
  credentials[client] = { headers = headers, scrub = function(text) return transport:scrub(text) end }
  -- _calls: every call not finished; _sending: request -> call, for those on the wire;
  -- _waiting: calls waiting to be sent (quota, or back-off before a retry)
  client._calls, client._sending, client._waiting = {}, {}, {}
end

-- What each kind of call may retry (docs/protocol.md §11). A "query" reads or cancels; a "submit"
-- creates a billed task, so it is retried only when nothing can have been created.
local TRANSIENT = { [429] = true, [500] = true, [502] = true, [503] = true, [504] = true }
local RETRY_STATUS = {
  query = TRANSIENT,
  submit = { [429] = true },
  detect = { [429] = true }, -- every 200 is billed: like a submit
  upload = TRANSIENT,   -- a file to the upload host: its key is ours alone (see files.lua)
  download = TRANSIENT, -- a result video from the result host
}

local UNSURE = " The request was sent, so the task may or may not have been created:"
  .. " client:tasks() lists recent tasks."

-- Retry-After: delta-seconds, or an HTTP-date read by libcurl's date parser (core.getdate: the
-- IMF-fixdate, RFC 850 and asctime forms HTTP allows). Returns seconds from now, never negative
-- and never more than RETRY_AFTER_MAX (finite, whatever the digits), or nil when the value is
-- neither. Never raises, whatever the server sends: how long the client honours it is decided by
-- its caller.
local RETRY_AFTER_MAX = 2 ^ 31
function http.retry_after(value)
  if type(value) ~= "string" then
    return nil
  end
  local digits = value:match("^%s*(%d+)%s*$")
  local secs
  if digits then
    secs = tonumber(digits)
  else
    local at = core.getdate(value)
    secs = at and at - os.time()
  end
  if not secs then
    return nil
  end
  secs = math.min(math.max(0, secs), RETRY_AFTER_MAX)
  return math.floor(secs)
end

local function failure(kind, terr, scrub)
  local e = {
    code = terr.kind == "timeout" and "Timeout" or terr.kind == "too_large" and "BadResponse"
      or terr.kind == "aborted" and "Aborted" or "NetworkError",
    message = terr.message,
  }
  if terr.kind == "too_large" then -- an answer came, too big to read (a created task's, maybe)
    e.retryable = false
    e.message = "the service's answer could not be read: " .. e.message
  elseif terr.kind == "aborted" then
    e.retryable = false
  elseif kind == "submit" or kind == "detect" then -- billed once received: only if never sent
    e.retryable = not terr.sent
  else
    e.retryable = true
  end
  -- Every failure after the body may have reached the service says so (docs/protocol.md §11)
  if kind == "submit" and terr.sent and terr.kind ~= "aborted" then
    e.message = e.message .. "." .. UNSURE
  end
  return errors.new(e, scrub)
end

local function bad_response(kind, status, why, scrub, request_id)
  local message = "the service's answer could not be read: " .. why
  if kind == "submit" then
    message = message .. "." .. UNSURE
  end
  return errors.new({ code = "BadResponse", message = message, status = status,
                      request_id = request_id, retryable = kind == "query" }, scrub)
end

local function snippet(text)
  text = (text or ""):gsub("%s+", " ")
  if #text > 200 then text = text:sub(1, 197) .. "..." end
  return text
end

-- An answer of an object-storage host (upload, result files): OSS speaks XML, not JSON.
local function storage_error(resp, scrub)
  local function tag(name)
    local v = resp.body:match("<" .. name .. ">([^<]*)</" .. name .. ">")
    return v and v ~= "" and v or nil
  end
  return errors.new({ status = resp.status, code = tag("Code") or "Unknown",
                      message = tag("Message") or snippet(resp.body), request_id = tag("RequestId"),
                      retryable = TRANSIENT[resp.status] or false }, scrub)
end

--- Classifies an exchange with a storage host (kind "upload" or "download"): the response for a
--- 2xx, else (nil, err, retry_after).
function http.classify_storage(kind, resp, terr, _, scrub)
  if not resp then
    return nil, failure(kind, terr, scrub)
  end
  if resp.status >= 200 and resp.status < 300 then
    return resp
  end
  return nil, storage_error(resp, scrub), http.retry_after(resp.headers and resp.headers["retry-after"])
end

--- Turns one finished exchange into (body) or (nil, err, retry_after).
--- `kind` is "query" or "submit"; `expect(body)` returns true or nil, why for a 2xx body's shape;
--- `scrub(text)` hides the key in messages (the transport's, or nil).
function http.classify(kind, resp, terr, expect, scrub)
  if not resp then
    return nil, failure(kind, terr, scrub)
  end
  local body, why = json.decode(resp.body)
  if type(body) ~= "table" and body ~= nil then
    body, why = nil, "not a JSON object"
  end
  local retry_after = http.retry_after(resp.headers and resp.headers["retry-after"])
  if resp.status >= 200 and resp.status < 300 then
    if not body then
      return nil, bad_response(kind, resp.status, why, scrub), retry_after
    end
    local ok, shape = true, nil
    if expect then ok, shape = expect(body) end
    if not ok then
      return nil, bad_response(kind, resp.status, shape or "unexpected shape", scrub,
        type(body.request_id) == "string" and body.request_id or nil), retry_after
    end
    return body
  end
  local e = { status = resp.status, retryable = RETRY_STATUS[kind][resp.status] or false }
  if body then
    e.code = type(body.code) == "string" and body.code or "Unknown"
    local message = body.message or body.msg
    e.message = type(message) == "string" and message or snippet(resp.body)
    e.request_id = type(body.request_id) == "string" and body.request_id or nil
  else
    e.code, e.message = "Unknown", snippet(resp.body)
  end
  if kind == "submit" and resp.status >= 500 then
    e.message = e.message .. UNSURE
  end
  return nil, errors.new(e, scrub), retry_after
end

-- A call goes to the service (`path` under base_url, with the key), or, with `url`, to another
-- host (upload, result files), which never gets the key or any of the service's headers.
local function send(client, call)
  local headers = {}
  if not call.url then
    for i, h in ipairs(credentials[client].headers) do headers[i] = h end
  end
  local to_service = not call.url
  for _, h in ipairs(call.headers or {}) do headers[#headers + 1] = h end
  if call.body then
    headers[#headers + 1] = "Content-Type: application/json"
  end
  local once = call.kind == "submit" or call.kind == "detect"
  if once and call.body then
    -- The body of what creates (and bills) leaves only once the server has said it listens: on a
    -- keep-alive connection the server closed while idle, nothing of it left, so libcurl resends
    -- it on a new connection by itself (request.c's on_seek allows a rewind from byte 0 only).
    headers[#headers + 1] = "Expect: 100-continue"
  end
  local s = client._settings
  -- Each attempt ends by the call's deadline (call_timeout): libcurl's own timeout is the smaller
  -- of the per-request timeout and what is left (advance never sends a call whose time is up).
  local left = math.max(0.001, call.deadline - core.now())
  call.request = client._transport:request {
    method = call.method,
    url = call.url or s.base_url .. call.path,
    headers = headers,
    body = call.body,
    form = call.form,
    output = call.output,
    truncate = call.truncate, max_output = call.max_output, -- downloads (download.lua)
    progress = call.progress,
    timeout = math.min(call.timeout or s.timeout, left),
    connect_timeout = math.min(s.connect_timeout, left),
    max_body = call.max_body or s.max_body,
    user_agent = client._user_agent,
    ca_file = s.ca_file,
    ca_path = s.ca_path,
    credential = to_service, -- the key, added by the transport: the service's host only
    -- libcurl resends a request by itself when a reused connection dies before the answer: never
    -- for what creates (and bills) something, whose first copy may have been received
    once = once,
  }
  client._sending[call.request] = call
  call.attempts = call.attempts + 1
  call.send_at = nil
  client._waiting[call] = nil
end

-- Holds `call` back until `at` (clock seconds).
local function hold(client, call, at)
  call.send_at = at
  client._waiting[call] = true
end

-- Sends `call` now if its limiter lets it, else sets when to try again. True when sent.
local function try_send(client, call, now)
  local wait = call.limiter and call.limiter:delay(now) or 0
  if wait > 0 then
    hold(client, call, now + wait)
    return false
  end
  if call.limiter then
    call.limiter:take(now)
  end
  send(client, call)
  return true
end

--- Queues a call: { method, path or url, body (JSON text) or form, headers (extra), kind, expect,
--- limiter, on_done; for storage hosts classify, output, progress, timeout, max_body }. It goes out
--- as soon as its limiter allows; `on_done(body, err)` runs from client:step when the call has
--- finished (after any retries).
function http.start(client, call)
  call.attempts = 0
  if client._closed then -- by a callback, while a blocking call was on its way: never sent
    call.done, call.err = true, errors.closed()
    if call.on_done then call.on_done(nil, call.err) end
    return call
  end
  call.deadline = call.deadline or core.now() + client._settings.call_timeout
  client._calls[call] = true
  try_send(client, call, core.now())
  return call
end

local function finish(client, call, body, err)
  client._calls[call] = nil
  client._waiting[call] = nil
  call.done, call.body_value, call.err = true, body, err
  if err then
    err.attempts = call.attempts
  end
  if call.on_done then
    call.on_done(body, err)
  end
end

local function backoff(settings, attempt)
  local cap = math.min(settings.retry_max_delay, settings.retry_base_delay * 2 ^ (attempt - 1))
  return math.random() * cap -- full jitter
end

-- How long to wait before retrying `call` after `err`, or nil when it is not retried: the back-off,
-- or the service's Retry-After when longer, up to retry_max_delay (a day-long one would freeze the
-- client), and no retry is planned past the call's deadline. A submit or detect answered 429
-- created nothing, so it is retried until created or its deadline whatever max_retries says:
-- giving up would lose the job (docs/protocol.md §11).
local function retry_delay(settings, call, err, retry_after, now)
  if not (err and err.retryable) then return nil end
  -- Retry-After is a floor, never a reason to hammer: "0" (or a date past) still backs off
  local delay = math.min(math.max(retry_after or 0, backoff(settings, call.attempts)), settings.retry_max_delay)
  local uncreated = err.status == 429 and (call.kind == "submit" or call.kind == "detect")
  if call.attempts > settings.max_retries and not uncreated then return nil end
  if now + delay >= call.deadline then return nil end
  return delay
end

--- Moves every call of `client` on: finished transfers are classified, retried or completed;
--- calls whose time has come are sent when their limiter allows. Returns the earliest time a
--- waiting call wants to go (or nil) and whether a transfer was started.
function http.advance(client, now)
  local scrub = credentials[client].scrub
  local settings = client._settings
  local soonest, started = nil, false
  local finished = {}
  local settled = client._transport:settled() -- what finished since the last step, or nil
  for _, request in ipairs(settled or finished) do
    local call = client._sending[request]
    if call then
      client._sending[request] = nil
      finished[#finished + 1] = call
    end
  end
  for _, call in ipairs(finished) do
    local resp, terr = call.request:response()
    call.request:close()
    call.request = nil
    local body, err, retry_after = (call.classify or http.classify)(call.kind, resp, terr, call.expect, scrub)
    if err and err.status == 429 and call.limiter then -- the quota is spent: everybody waits (capped)
      call.limiter:pause(now, math.min(retry_after or backoff(settings, call.attempts), settings.retry_max_delay))
    end
    local delay = retry_delay(settings, call, err, retry_after, now)
    if delay then
      call.last_err = err
      hold(client, call, now + delay)
    else
      finish(client, call, body, err)
    end
  end
  local expired = {}
  for call in pairs(client._waiting) do
    if now >= call.deadline then -- still held back (quota, back-off) when its time is up
      expired[#expired + 1] = call
    elseif now >= call.send_at then
      started = try_send(client, call, now) or started
    end
    local at = call.send_at and math.min(call.send_at, call.deadline)
    if at and (not soonest or at < soonest) then
      soonest = at
    end
  end
  -- Finished after the walk: their callbacks may start new calls.
  for _, call in ipairs(expired) do
    finish(client, call, nil, call.last_err or errors.new({ code = "Timeout", retryable = true,
      message = string.format("not sent within call_timeout (%g s): still waiting for the quota",
        settings.call_timeout) }, scrub))
  end
  return soonest, started
end

--- Drops every queued call (client:close).
function http.close(client)
  for call in pairs(client._calls or {}) do
    if call.request then call.request:close() end
  end
  client._calls, client._sending, client._waiting = {}, {}, {}
end

return http
