-- Client options: their contract (checked by check.lua like any model), their defaults, and where
-- the environment fills them in (docs/protocol.md §12.2). Reads the environment and the key file; owns
-- no network code.
local core = require("dashscope.core")
local check = require("dashscope.check")
local localfile = require("dashscope.localfile")
local url = require("dashscope.url")

local config = {}

config.DEFAULT_BASE_URL = "https://dashscope.aliyuncs.com/api/v1"

-- Defaults of the poll plans (nextask.lua: 1 s, growing 1.5x per query, the lag held to 1.25 s or
-- an eighth of the run, up to 10 s while a model's run time is unknown) and docs/protocol.md §11's
-- retry policy.
config.DEFAULTS = {
  timeout = 60,
  connect_timeout = 10,
  poll_interval = 1,
  max_poll_interval = 10,
  wait_timeout = 3 * 3600,
  max_retries = 3,
  retry_base_delay = 0.5,
  retry_max_delay = 5, -- also caps a Retry-After: after a 429, queries resume within 5 s
  max_body = 4 * 1024 * 1024,
  max_connections = 6,
  call_timeout = 300,
}

-- The service's quotas per account (docs/protocol.md §10): submits per second per model, and queries,
-- cancels and lists per second together. The client keeps inside them unless told otherwise.
config.RATE_LIMITS = {
  submit = { videoretalk = 1, ["emoji-v1"] = 1, liveportrait = 5,
             ["emoji-detect-v1"] = 1, ["liveportrait-detect"] = 5 },
  tasks = 20,
}

-- The longest any one delay or timeout may be: beyond it a value is a mistake (a unit slip, an
-- infinity) that would freeze a client, not a wish. The C side caps libcurl's timeouts near 24 days.
local DAY = 86400

config.OPTIONS = {
  { name = "api_key", type = "string", secret = true, header = true,
    doc = "the DashScope API key (default: env DASHSCOPE_API_KEY, then the file named by env DASHSCOPE_API_KEY_FILE_PATH, then ~/.dashscope/api_key)" },
  { name = "api_key_file", type = "string",
    doc = "read the API key from this file instead (a readable regular file; surrounding whitespace is trimmed); not with api_key" },
  { name = "base_url", type = "string",
    doc = "service root, an http:// or https:// URL without credentials, query or fragment (default: env DASHSCOPE_HTTP_BASE_URL, else " .. config.DEFAULT_BASE_URL .. ")" },
  { name = "workspace", type = "string", header = true, doc = "sent as X-DashScope-WorkSpace" },
  { name = "timeout", type = "number", min = 0.001, max = DAY, doc = "seconds, per HTTP request, never past what is left of call_timeout (default 60)" },
  { name = "connect_timeout", type = "number", min = 0.001, max = DAY, doc = "seconds, per connection (default 10)" },
  { name = "poll_interval", type = "number", min = 0.001, max = DAY, doc = "seconds before the first status query (default 1)" },
  { name = "max_poll_interval", type = "number", min = 0.001, max = DAY, doc = "longest a tracked task goes without a question (a status query, or a task-list page that places it), whatever the schedule planned (default 10)" },
  { name = "wait_timeout", type = "number", min = 0, max = 7 * DAY, doc = "default deadline of task:wait, seconds (default 3 h)" },
  { name = "max_retries", type = "integer", min = 0, max = 100, doc = "retries of a retryable failure (default 3); a submit or detect answered 429 created nothing and is retried until created or call_timeout" },
  { name = "call_timeout", type = "number", min = 0.001, max = DAY, doc = "seconds one call may take in all, through quota waits, retries and the request in flight (default 300); task:wait has its own wait_timeout" },
  { name = "retry_base_delay", type = "number", min = 0, max = 3600, doc = "back-off base, seconds (default 0.5)" },
  { name = "retry_max_delay", type = "number", min = 0, max = DAY, doc = "back-off cap, and the longest a Retry-After is honoured, seconds (default 5)" },
  { name = "max_body", type = "integer", min = 1024, max = 2147483648, doc = "largest JSON answer accepted, bytes (default 4 MiB)" },
  { name = "max_connections", type = "integer", min = 1, max = 256, doc = "TCP connections the client may open at once (default 6); more requests queue" },
  { name = "rate_limits", type = "rate_limits", doc = "false, or { submit = { [model] = per second }, tasks = per second }, rates from 0.001 to 1000000: the quotas the client keeps (default: the service's, docs/protocol.md §10)" },
  { name = "quota", type = "quota_store", secret = true,
    doc = "share the quotas (rate_limits) with other processes: a shared dict (ngx.shared.NAME) for the workers of one nginx, or a Redis URL \"redis://[:password@]host[:port][/db][?prefix=name]\" for processes on any host; false keeps them in this process (default: env DASHSCOPE_QUOTA_STORE, else false). A store that fails is given up at once and tried again in the background (on_warning says so)" },
  { name = "on_warning", type = "function",
    doc = "function(message, info) called when the quota store fails (info.code \"QuotaStoreDown\") and when it is back (\"QuotaStoreBack\"), once each per outage (default: a line on stderr)" },
  { name = "user_agent", type = "string", header = true, doc = "appended to the User-Agent (no control characters)" },
  { name = "sleep", type = "function", doc = "function(seconds) called instead of blocking, e.g. ngx.sleep; may yield" },
  { name = "ca_file", type = "string", doc = "a PEM file of CA certificates to verify TLS peers with (a private CA); verification itself is always on (no control characters)" },
  { name = "ca_path", type = "string", doc = "a directory of CA certificates (c_rehash layout), as ca_file" },
  { name = "allow_http", type = "boolean", doc = "permit a plain http:// base_url to a host other than loopback (127.0.0.0/8, [::1], localhost): the API key then crosses the network unencrypted (default false)" },
}

-- The base URL `base` (from `origin`, for messages) read by libcurl, as the client will send it:
-- trailing slashes stripped. Raises unless it is http(s), has a host and no credentials, query or
-- fragment, and is plain http:// only to a loopback host (or with allow_http). The value itself is
-- never quoted: a URL with userinfo may hold a password.
local function base_url(base, origin, allow_http)
  local function refuse(text)
    check.fail("dashscope.new", origin .. " " .. text, "base_url")
  end
  if base:find("[%z%c ]") then
    refuse("must not contain CR, LF, NUL, other control characters or spaces")
  end
  base = base:gsub("/+$", "")
  local parts = url.parse(base)
  if not parts or (parts.scheme ~= "http" and parts.scheme ~= "https") or not parts.host
      or not base:lower():find("^https?://[^/]") then
    refuse("must be an http:// or https:// URL")
  end
  if url.userinfo(parts) then
    refuse("must not carry credentials (user:password@ before the host): the key goes in api_key")
  end
  if base:find("[?#]") or parts.query or parts.fragment then
    refuse("must not have a ?query or #fragment: request paths are appended to it")
  end
  if parts.scheme == "http" and not allow_http and not url.loopback(parts.host) then
    refuse("is plain http:// to " .. parts.host .. ", which would send the API key unencrypted: "
      .. "use https://, or set allow_http = true (loopback hosts need neither: 127.0.0.0/8, [::1], localhost)")
  end
  return base
end

-- Strings the C core refuses at a request when they hold control characters (src/request.c):
-- refused here, at new, instead.
local PLAIN_TEXT = { "ca_file", "ca_path", "user_agent" }

local function trim(s)
  return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

-- The key in the file at `path`, or nil. Read only from a regular file, opened without blocking
-- (src/fs.c): a FIFO, a device or a directory there counts as no key file, and never hangs.
local function read_key_file(path)
  if path:find("%z") then
    return nil
  end
  local text = core.file_read(path, 64 * 1024)
  text = text and trim(text)
  if text == nil or text == "" then
    return nil
  end
  return text
end

local function nonempty(s)
  if s ~= nil and s ~= "" then return s end
  return nil
end

--- The API key in the official SDK's order (§12.2) and where it came from (`explicit_from`, an
--- environment variable's name, a file: never the key), or nil.
function config.resolve_key(explicit, getenv, explicit_from)
  if explicit then
    return explicit, explicit_from
  end
  local key = nonempty(getenv("DASHSCOPE_API_KEY"))
  if key then
    return trim(key), "$DASHSCOPE_API_KEY"
  end
  local file = nonempty(getenv("DASHSCOPE_API_KEY_FILE_PATH"))
  if file then
    key = read_key_file(file)
    if key then return key, "$DASHSCOPE_API_KEY_FILE_PATH (" .. file .. ")" end
  end
  local home = nonempty(getenv("HOME"))
  if home then
    key = read_key_file(home .. "/.dashscope/api_key")
    if key then return key, "~/.dashscope/api_key" end
  end
  return nil
end

config.NO_KEY = "no API key found: pass api_key to dashscope.new, set DASHSCOPE_API_KEY, "
  .. "or put the key in the file named by DASHSCOPE_API_KEY_FILE_PATH or in ~/.dashscope/api_key"

-- The key the options give, or the one the environment gives (resolve_key), and where it came
-- from. Raises when none.
local function api_key(given, getenv)
  local explicit, from = given.api_key, "api_key"
  if given.api_key_file then
    from = "api_key_file (" .. given.api_key_file .. ")"
    if explicit then
      check.fail("dashscope.new", "give api_key or api_key_file, not both", "api_key_file", "usage")
    end
    explicit = read_key_file(given.api_key_file)
    if not explicit then
      check.fail("dashscope.new", "field 'api_key_file': cannot read a key from "
        .. localfile.quote(given.api_key_file)
        .. " (it must be a readable regular file holding the key)", "api_key_file")
    end
  end
  local key
  key, from = config.resolve_key(explicit, getenv, from)
  if not key then
    check.fail("dashscope.new", config.NO_KEY, "api_key", "required")
  end
  if not check.header_safe(key) then
    check.fail("dashscope.new", "the API key must not contain CR, LF or NUL", "api_key")
  end
  return key, from
end

--- Checks `opts` and returns the complete settings (defaults and environment applied).
--- Raises on misuse.
function config.settings(opts, getenv)
  getenv = getenv or os.getenv
  local given = check.fields(config.OPTIONS, opts or {}, "dashscope.new")
  local s = {}
  for k, v in pairs(config.DEFAULTS) do s[k] = v end
  for k, v in pairs(given) do s[k] = v end

  s.api_key, s.key_source = api_key(given, getenv)
  s.api_key_file = nil

  local base, origin = given.base_url, "field 'base_url'"
  if not base then
    base, origin = nonempty(getenv("DASHSCOPE_HTTP_BASE_URL")), "env DASHSCOPE_HTTP_BASE_URL"
  end
  base = base or config.DEFAULT_BASE_URL
  s.base_url = base_url(base, origin, s.allow_http)
  for _, name in ipairs(PLAIN_TEXT) do
    if s[name] and s[name]:find("[%z%c]") then
      check.fail("dashscope.new", "field '" .. name .. "' must not contain control characters or NUL", name)
    end
  end

  if s.poll_interval > s.max_poll_interval then
    check.fail("dashscope.new", "poll_interval (" .. s.poll_interval .. ") must not exceed max_poll_interval ("
      .. s.max_poll_interval .. ")", "poll_interval")
  end
  if given.quota == nil then
    local store = nonempty(getenv("DASHSCOPE_QUOTA_STORE"))
    local ok, why = check.quota_store(store or false)
    if ok == nil then
      check.fail("dashscope.new", "env DASHSCOPE_QUOTA_STORE " .. why, "quota")
    end
    s.quota = ok
  end
  if s.rate_limits == nil or s.rate_limits == true then
    s.rate_limits = config.RATE_LIMITS
  end
  s.data_inspection = getenv("DASHSCOPE_DISABLE_DATA_INSPECTION") == "false"
  return s
end

return config
