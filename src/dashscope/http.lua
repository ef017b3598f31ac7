-- HTTP as pure functions (docs/protocol.md §11): the request a call becomes, what an answer or a
-- failure of the transport means (a decoded body, or an error value and a Retry-After), and how
-- long to wait before a retry. No state: the calls in flight are calls.lua's, the client's
-- settings and transport the engine's. The API key never passes through here: a request to the
-- service asks the transport to add it (`credential`), and error values are scrubbed in C
-- (errors.lua).
--
-- A call's `purpose` says what it is for, which decides what may be retried:
--   "query"    reads (a task, a task list, an upload policy) or cancels: retried on any transient;
--   "submit"   creates and bills a task: retried only when nothing can have been created;
--   "detect"   a synchronous detector: every 200 is billed, so like a submit;
--   "upload"   a file to the upload host (its object name is ours alone: files.lua);
--   "download" a result video from the result host (download.lua).
local core = require("dashscope.core")
local json = require("dashscope.json")
local errors = require("dashscope.errors")

local http = {}

local TRANSIENT = { [429] = true, [500] = true, [502] = true, [503] = true, [504] = true }
local RETRY_STATUS = {
  query = TRANSIENT,
  submit = { [429] = true },
  detect = { [429] = true },
  upload = TRANSIENT,
  download = TRANSIENT,
}

-- What creates (and bills) something: sent once, never resent by libcurl or by us unless it
-- cannot have been received.
local BILLED = { submit = true, detect = true }

local UNSURE = " The request was sent, so the task may or may not have been created:"
  .. " client:tasks() lists recent tasks."

--- The headers every request to the service carries, for the client's `settings`.
function http.service_headers(settings)
  local headers = { "Accept: application/json" }
  if settings.workspace then
    headers[#headers + 1] = "X-DashScope-WorkSpace: " .. settings.workspace
  end
  if settings.data_inspection then
    headers[#headers + 1] = "X-DashScope-DataInspection: enable"
  end
  return headers
end

-- The headers of one attempt of `call`: the service's (none for another host), the call's own,
-- and the body's type.
local function headers_of(call, service)
  if not (call.url or call.headers or call.body) then
    return service -- a query: the service's headers as they are (the transport only reads them)
  end
  local headers = {}
  if not call.url then
    for i, h in ipairs(service) do headers[i] = h end
  end
  for _, h in ipairs(call.headers or {}) do headers[#headers + 1] = h end
  if call.body then
    headers[#headers + 1] = "Content-Type: application/json"
  end
  return headers
end

--- The request spec the transport takes for one attempt of `call` at `now`: to the service
--- (`call.path` under base_url, with `service` headers and the key) or, with `call.url`, to
--- another host, which gets neither the key nor any of the service's headers.
function http.request(call, settings, service, user_agent, now)
  local headers = headers_of(call, service)
  local once = BILLED[call.purpose] or false
  if once and call.body then
    -- The body of what creates (and bills) leaves only once the server has said it listens: on a
    -- keep-alive connection the server closed while idle, nothing of it left, so libcurl resends
    -- it on a new connection by itself (request.c's on_seek allows a rewind from byte 0 only).
    headers[#headers + 1] = "Expect: 100-continue"
  end
  -- Each attempt ends by the call's deadline (call_timeout): libcurl's own timeout is the smaller
  -- of the per-request timeout and what is left (calls.lua never sends a call whose time is up).
  local left = math.max(0.001, call.deadline - now)
  return {
    method = call.method,
    url = call.url or settings.base_url .. call.path,
    headers = headers,
    body = call.body,
    form = call.form,
    output = call.output,
    truncate = call.truncate, max_output = call.max_output, -- downloads (download.lua)
    progress = call.progress,
    timeout = math.min(call.timeout or settings.timeout, left),
    connect_timeout = math.min(settings.connect_timeout, left),
    max_body = call.max_body or settings.max_body,
    user_agent = user_agent,
    ca_file = settings.ca_file,
    ca_path = settings.ca_path,
    credential = not call.url, -- the key, added by the transport: the service's host only
    -- libcurl resends a request by itself when a reused connection dies before the answer: never
    -- for what creates (and bills) something, whose first copy may have been received
    once = once,
  }
end

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

local function retry_after_of(resp)
  return http.retry_after(resp.headers and resp.headers["retry-after"])
end

local FAILURE_CODE = { timeout = "Timeout", too_large = "BadResponse", aborted = "Aborted" }

-- A transfer that got no answer (or one too big to read): the error for a call of `purpose`.
local function failure(purpose, terr)
  local outcome = terr.outcome -- how the transfer failed: "timeout", "too_large", "aborted", ...
  local e = { code = FAILURE_CODE[outcome] or "NetworkError", message = terr.message }
  if outcome == "too_large" then -- an answer came, too big to read (a created task's, maybe)
    e.retryable = false
    e.message = "the service's answer could not be read: " .. e.message
  elseif outcome == "aborted" then
    e.retryable = false
  elseif BILLED[purpose] then -- billed once received: only if never sent
    e.retryable = not terr.sent
  else
    e.retryable = true
  end
  -- Every failure after the body may have reached the service says so (docs/protocol.md §11)
  if purpose == "submit" and terr.sent and outcome ~= "aborted" then
    e.message, e.task_may_exist = e.message .. "." .. UNSURE, true
  end
  return errors.new(e)
end

local function bad_response(purpose, status, why, request_id)
  local message = "the service's answer could not be read: " .. why
  if purpose == "submit" then
    message = message .. "." .. UNSURE
  end
  return errors.new { code = "BadResponse", message = message, status = status, request_id = request_id,
                      retryable = purpose == "query", task_may_exist = purpose == "submit" or nil }
end

local function snippet(text)
  text = (text or ""):gsub("%s+", " ")
  if #text > 200 then text = text:sub(1, 197) .. "..." end
  return text
end

-- An element of an object-storage host's XML answer (OSS speaks XML, not JSON), or nil.
local function xml_tag(body, name)
  local v = body:match("<" .. name .. ">([^<]*)</" .. name .. ">")
  return v and v ~= "" and v or nil
end

--- Classifies an exchange with a storage host (purpose "upload" or "download"): the response for
--- a 2xx, else (nil, err, retry_after).
function http.classify_storage(purpose, resp, terr)
  if not resp then
    return nil, failure(purpose, terr)
  end
  if resp.status >= 200 and resp.status < 300 then
    return resp
  end
  local body = resp.body or ""
  return nil, errors.new { status = resp.status, code = xml_tag(body, "Code") or "Unknown",
                           message = xml_tag(body, "Message") or snippet(body),
                           request_id = xml_tag(body, "RequestId"),
                           retryable = TRANSIENT[resp.status] or false }, retry_after_of(resp)
end

--- Did the storage host refuse `resp` because what signed it is past its time (an upload policy,
--- a result URL)? Both come as 403 AccessDenied, the code of every refusal. A signed URL past its
--- Expires is told by the elements the host adds to that answer alone (<Expires>, <ServerTime>);
--- a POST policy past its expiration gets no such element, and its message ("Invalid according
--- to Policy: Policy expired.", docs/protocol.md §8.5) is the only signal the host gives.
function http.storage_expired(resp)
  if not resp or resp.status ~= 403 then return false end
  local body = resp.body or ""
  if xml_tag(body, "Expires") and xml_tag(body, "ServerTime") then return true end
  local message = xml_tag(body, "Message") or ""
  return message:find("Policy expired", 1, true) ~= nil
end

--- Turns one finished exchange with the service into (body) or (nil, err, retry_after).
--- `purpose` as above; `expect(body)` returns true or nil, why for a 2xx body's shape.
function http.classify(purpose, resp, terr, expect)
  if not resp then
    return nil, failure(purpose, terr)
  end
  local body, why = json.decode(resp.body)
  if type(body) ~= "table" and body ~= nil then
    body, why = nil, "not a JSON object"
  end
  local retry_after = retry_after_of(resp)
  if resp.status >= 200 and resp.status < 300 then
    if not body then
      return nil, bad_response(purpose, resp.status, why), retry_after
    end
    local ok, shape = true, nil
    if expect then ok, shape = expect(body) end
    if not ok then
      return nil, bad_response(purpose, resp.status, shape or "unexpected shape",
        type(body.request_id) == "string" and body.request_id or nil), retry_after
    end
    return body
  end
  local e = { status = resp.status, retryable = RETRY_STATUS[purpose][resp.status] or false }
  if body then
    e.code = type(body.code) == "string" and body.code or "Unknown"
    local message = body.message or body.msg
    e.message = type(message) == "string" and message or snippet(resp.body)
    e.request_id = type(body.request_id) == "string" and body.request_id or nil
  else
    e.code, e.message = "Unknown", snippet(resp.body)
  end
  if purpose == "submit" and resp.status >= 500 then
    e.message, e.task_may_exist = e.message .. UNSURE, true
  end
  return nil, errors.new(e), retry_after
end

--- The back-off before attempt `attempt + 1`: full jitter under an exponential cap.
function http.backoff(settings, attempt)
  local cap = math.min(settings.retry_max_delay, settings.retry_base_delay * 2 ^ (attempt - 1))
  return math.random() * cap
end

-- The time a retry must have left before the call's deadline: one sent with milliseconds to go
-- can only end in a Timeout, which would replace the error it retried (and, for a submit whose
-- body left, put the task in doubt). A tenth of call_timeout, at most a quarter of a second.
local function reserve(settings)
  return math.min(0.25, 0.1 * settings.call_timeout)
end

--- How long to wait before retrying `call` after `err`, or nil when it is not retried: the
--- back-off, or the service's Retry-After when longer, up to retry_max_delay (a day-long one would
--- freeze the client), and no retry is planned past the call's deadline (less a reserve for the
--- retry's own answer). A submit or detect
--- answered 429 created nothing, so it is retried until created or its deadline whatever
--- max_retries says: giving up would lose the job (docs/protocol.md §11).
function http.retry_delay(settings, call, err, retry_after, now)
  if not (err and err.retryable) then return nil end
  -- Retry-After is a floor, never a reason to hammer: "0" (or a date past) still backs off
  local delay = math.min(math.max(retry_after or 0, http.backoff(settings, call.attempts)), settings.retry_max_delay)
  local uncreated = err.status == 429 and BILLED[call.purpose]
  if call.attempts > settings.max_retries and not uncreated then return nil end
  if now + delay + reserve(settings) >= call.deadline then return nil end
  return delay
end

return http
