-- Client options: their contract (checked by check.lua like any model), their defaults, and where
-- the environment fills them in (protocol.md §12.2). Reads the environment and the key file; owns
-- no network code.
local check = require("dashscope.check")

local config = {}

config.DEFAULT_BASE_URL = "https://dashscope.aliyuncs.com/api/v1"

-- Defaults of the scheduler (schedule.lua: 1 s, growing 1.5x per query up to 10 s while a
-- model's run time is unknown) and protocol.md §11's retry policy.
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

-- The service's quotas per account (protocol.md §10): submits per second per model, and queries,
-- cancels and lists per second together. The client keeps inside them unless told otherwise.
config.RATE_LIMITS = {
  submit = { videoretalk = 1, ["emoji-v1"] = 1, liveportrait = 5,
             ["emoji-detect-v1"] = 1, ["liveportrait-detect"] = 5 },
  tasks = 20,
}

config.OPTIONS = {
  { name = "api_key", type = "string", secret = true, header = true,
    doc = "the DashScope API key (default: env DASHSCOPE_API_KEY, then the file named by env DASHSCOPE_API_KEY_FILE_PATH, then ~/.dashscope/api_key)" },
  { name = "base_url", type = "string",
    doc = "service root (default: env DASHSCOPE_HTTP_BASE_URL, else " .. config.DEFAULT_BASE_URL .. ")" },
  { name = "workspace", type = "string", header = true, doc = "sent as X-DashScope-WorkSpace" },
  { name = "timeout", type = "number", min = 0.001, doc = "seconds, per HTTP request (default 60)" },
  { name = "connect_timeout", type = "number", min = 0.001, doc = "seconds, per connection (default 10)" },
  { name = "poll_interval", type = "number", min = 0.001, doc = "seconds before the first status query (default 1)" },
  { name = "max_poll_interval", type = "number", min = 0.001, doc = "longest delay between two status queries (default 10)" },
  { name = "wait_timeout", type = "number", min = 0, doc = "default deadline of task:wait, seconds (default 3 h)" },
  { name = "max_retries", type = "integer", min = 0, max = 100, doc = "retries of a retryable failure (default 3)" },
  { name = "call_timeout", type = "number", min = 0.001, doc = "seconds one call may take in all, through quota waits and retries (default 300); task:wait has its own wait_timeout" },
  { name = "retry_base_delay", type = "number", min = 0, doc = "back-off base, seconds (default 0.5)" },
  { name = "retry_max_delay", type = "number", min = 0, doc = "back-off cap, and the longest a Retry-After is honoured, seconds (default 5)" },
  { name = "max_body", type = "integer", min = 1024, doc = "largest JSON answer accepted, bytes (default 4 MiB)" },
  { name = "max_connections", type = "integer", min = 1, max = 256, doc = "TCP connections the client may open at once (default 6); more requests queue" },
  { name = "rate_limits", type = "rate_limits", doc = "false, or { submit = { [model] = per second }, tasks = per second }: the quotas the client keeps (default: the service's, protocol.md §10)" },
  { name = "user_agent", type = "string", header = true, doc = "appended to the User-Agent" },
  { name = "sleep", type = "function", doc = "function(seconds) called instead of blocking, e.g. ngx.sleep; may yield" },
  { name = "ca_file", type = "string", doc = "a PEM file of CA certificates to verify TLS peers with (a private CA); verification itself is always on" },
  { name = "ca_path", type = "string", doc = "a directory of CA certificates (c_rehash layout), as ca_file" },
  { name = "allow_http", type = "boolean", doc = "permit a plain http:// base_url to a host other than loopback: the API key then crosses the network unencrypted (default false)" },
}

-- Hosts a plain http:// base_url may name without allow_http: the key never leaves the machine.
local function loopback(url)
  local host = url:match("^http://%[([^%]]+)%]") or url:match("^http://([^/:?#]+)")
  host = host and host:lower()
  return host == "localhost" or host == "::1" or (host and host:find("^127%.%d+%.%d+%.%d+$") ~= nil)
end

local function trim(s)
  return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

local function read_key_file(path)
  local f = io.open(path, "rb")
  if not f then
    return nil
  end
  local text = f:read("*a")
  f:close()
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

--- The API key in the official SDK's order (§12.2), or nil and where it was looked for.
function config.resolve_key(explicit, getenv)
  if explicit then
    return explicit
  end
  local key = nonempty(getenv("DASHSCOPE_API_KEY"))
  if key then
    return trim(key)
  end
  local file = nonempty(getenv("DASHSCOPE_API_KEY_FILE_PATH"))
  if file then
    key = read_key_file(file)
    if key then return key end
  end
  local home = nonempty(getenv("HOME"))
  if home then
    key = read_key_file(home .. "/.dashscope/api_key")
    if key then return key end
  end
  return nil
end

config.NO_KEY = "no API key found: pass api_key to dashscope.new, set DASHSCOPE_API_KEY, "
  .. "or put the key in the file named by DASHSCOPE_API_KEY_FILE_PATH or in ~/.dashscope/api_key"

--- Checks `opts` and returns the complete settings (defaults and environment applied).
--- Raises on misuse, `level` relative to the caller.
function config.settings(opts, level, getenv)
  level = (level or 1) + 1
  getenv = getenv or os.getenv
  local given = check.fields(config.OPTIONS, opts or {}, "dashscope.new", level)
  local s = {}
  for k, v in pairs(config.DEFAULTS) do s[k] = v end
  for k, v in pairs(given) do s[k] = v end

  s.api_key = config.resolve_key(given.api_key, getenv)
  if not s.api_key then
    check.fail("dashscope.new", config.NO_KEY, level)
  end
  if s.api_key:find("[%z\r\n]") then
    check.fail("dashscope.new", "the API key must not contain CR, LF or NUL", level)
  end

  local base, origin = given.base_url, "field 'base_url'"
  if not base then
    base, origin = nonempty(getenv("DASHSCOPE_HTTP_BASE_URL")), "env DASHSCOPE_HTTP_BASE_URL"
  end
  base = base or config.DEFAULT_BASE_URL
  if not base:find("^https?://[^/%s]") then
    check.fail("dashscope.new", origin .. " must be an http:// or https:// URL", level)
  end
  if base:find("^http://") and not loopback(base) and not s.allow_http then
    check.fail("dashscope.new", origin .. " is plain http://, which would send the API key unencrypted: "
      .. "use https://, or set allow_http = true (loopback hosts need neither)", level)
  end
  s.base_url = base:gsub("/+$", "")

  if s.poll_interval > s.max_poll_interval then
    check.fail("dashscope.new", "poll_interval (" .. s.poll_interval .. ") must not exceed max_poll_interval ("
      .. s.max_poll_interval .. ")", level)
  end
  if s.rate_limits == nil or s.rate_limits == true then
    s.rate_limits = config.RATE_LIMITS
  end
  s.data_inspection = getenv("DASHSCOPE_DISABLE_DATA_INSPECTION") == "false"
  return s
end

return config
