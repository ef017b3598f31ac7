-- The Lua half of fuzz/url_fuzz.c: puts one input through the URL and option rules and checks
-- what they promise (docs/reference.md, "Client options" and "Base URL"). An input is MODE REST:
--   'o' B REST   an option value: B picks the option (the numeric ones of config.OPTIONS, then a
--                rate of rate_limits); REST is the value: 8 bytes a double (NaN, infinities and
--                all), else the number tonumber reads, else the string itself
--   's' B REST   a string option (workspace, user_agent, api_key, ca_file, ca_path) set to REST
--   'r' REST     a Retry-After header value, through http.retry_after and core.getdate
--   otherwise    the whole input is a URL: core.parse_url, url.remote, and base_url as the field,
--                as DASHSCOPE_HTTP_BASE_URL and with allow_http
-- A broken promise raises (url_fuzz.c aborts with the traceback): a raise where the code must
-- answer, a raise of dashscope.new that is not its misuse message naming the field, an accepted
-- base URL with credentials, a query or fragment, control characters, or plain http:// to a host
-- that is not loopback; an accepted URL of a host the service names that is not http(s) with a
-- host and no credentials; an accepted option value outside its rule.
local dashscope = require("dashscope")
local core = require("dashscope.core")
local config = require("dashscope.config")
local http = require("dashscope.http")
local url = require("dashscope.url")

local PARTS = { scheme = true, user = true, password = true, options = true, host = true, zoneid = true,
                port = true, path = true, query = true, fragment = true }

local function env(vars)
  return function(name) return vars[name] end
end

local function must(cond, what, text)
  if not cond then
    error(what .. " (input " .. string.format("%q", tostring(text)) .. ")", 2)
  end
end

-- What libcurl's parse of `text` promises, whether or not it is a URL we take.
local function parse(text)
  local ok, parts, why = pcall(core.parse_url, text)
  must(ok, "core.parse_url raised: " .. tostring(parts), text)
  if not parts then
    must(type(why) == "string", "core.parse_url gave no reason", text)
    return nil
  end
  for k, v in pairs(parts) do
    must(PARTS[k], "core.parse_url gave an unknown part " .. tostring(k), text)
    if k == "port" then
      must(math.type(v) == "integer" and v >= 0 and v <= 65535, "a port out of range", text)
    else
      must(type(v) == "string", "a part that is not a string: " .. k, text)
    end
  end
  return parts
end

-- The authority as the text spells it (after "scheme:" and its slashes, up to / ? #): an
-- independent look at what libcurl was given, to catch credentials it would take silently.
local function authority(text)
  return text:match("^[^:/?#]*:[/\\]*([^/\\?#]*)") or ""
end

local function no_credentials(parts, text, what)
  must(not parts.user and not parts.password and not parts.options, what .. " with credentials", text)
  must(not authority(text):find("@", 1, true), what .. " with an @ in its authority", text)
end

-- A base URL accepted (settings `s`): what the client sends satisfies the rules.
local function check_base(s, allow_http, text)
  local base = s.base_url
  must(not base:find("[%z%c ]"), "an accepted base_url with control characters or spaces", text)
  must(not base:find("/$"), "an accepted base_url with a trailing slash", text)
  local p = parse(base)
  must(p, "an accepted base_url libcurl cannot parse", text)
  must(p.scheme == "http" or p.scheme == "https", "an accepted base_url of scheme " .. tostring(p.scheme), text)
  must(p.host and p.host ~= "", "an accepted base_url without a host", text)
  no_credentials(p, base, "an accepted base_url")
  must(not p.query and not p.fragment, "an accepted base_url with a query or fragment", text)
  local host = p.host:lower()
  if p.scheme == "http" and not allow_http then
    must(host == "localhost" or host == "[::1]" or host:find("^127%.%d+%.%d+%.%d+$"),
      "an accepted plain http:// base_url to " .. host, text)
  end
  -- every request goes to base .. path: the same place, still without credentials
  local q = parse(base .. "/services/aigc/image2video/video-synthesis")
  must(q and q.host == p.host and q.port == p.port and q.scheme == p.scheme, "a path moves the base's host", text)
  must(not q.user and not q.password and not q.query and not q.fragment, "a path adds credentials or a query", text)
end

local function try_base(opts, vars, origin, text)
  vars.DASHSCOPE_API_KEY = "sk-fuzz"
  local ok, s = pcall(config.settings, opts, env(vars))
  if ok then
    check_base(s, opts.allow_http, text)
  else
    must(dashscope.is_misuse(s) and s:find("dashscope.new: " .. origin, 1, true),
      "dashscope.new raised other than a misuse of " .. origin .. ": " .. tostring(s), text)
  end
end

local function url_mode(text)
  parse(text)
  local ok, parts = pcall(url.remote, text)
  must(ok, "url.remote raised: " .. tostring(parts), text)
  if parts then
    must(parts.scheme == "http" or parts.scheme == "https", "url.remote took scheme " .. tostring(parts.scheme), text)
    must(parts.host and parts.host ~= "", "url.remote took no host", text)
    no_credentials(parts, text, "url.remote took a URL")
  end
  ok = pcall(url.loopback, text)
  must(ok, "url.loopback raised", text)
  try_base({ api_key = "sk-fuzz", base_url = text }, {}, "field 'base_url'", text)
  try_base({ api_key = "sk-fuzz", base_url = text, allow_http = true }, {}, "field 'base_url'", text)
  if text ~= "" then
    try_base({}, { DASHSCOPE_HTTP_BASE_URL = text }, "env DASHSCOPE_HTTP_BASE_URL", text)
  end
end

local NUMERIC = {}
for _, rule in ipairs(config.OPTIONS) do
  if rule.type == "number" or rule.type == "integer" then NUMERIC[#NUMERIC + 1] = rule end
end

local function value_of(rest)
  if #rest == 8 then
    return (string.unpack("<d", rest))
  end
  return tonumber(rest) or rest
end

local function rate_ok(x)
  return type(x) == "number" and x == x and x >= 0.001 and x <= 1000000
end

local function option_mode(b, rest)
  local v = value_of(rest)
  local i = b % (#NUMERIC + 2) + 1
  local opts, name = { api_key = "sk-fuzz", base_url = "https://h.example/api/v1" }, "rate_limits"
  local rule = NUMERIC[i]
  if rule then
    name = rule.name
    opts[name] = v
  elseif i == #NUMERIC + 1 then
    opts.rate_limits = { tasks = v }
  else
    opts.rate_limits = { submit = { liveportrait = v } }
  end
  local ok, s = pcall(config.settings, opts, env {})
  if not ok then
    must(dashscope.is_misuse(s) and (s:find("dashscope.new: field '" .. name .. "'", 1, true)
      or s:find("must not exceed max_poll_interval", 1, true)),
      "dashscope.new raised other than a misuse naming " .. name .. ": " .. tostring(s), rest)
    return
  end
  if rule then
    local x = s[name]
    must(type(x) == "number" and x == x and x >= rule.min and x <= rule.max,
      "accepted " .. name .. " = " .. tostring(x) .. " outside its rule", rest)
    if rule.type == "integer" then
      must(x == math.floor(x), "accepted a fractional " .. name, rest)
    end
  else
    local r = s.rate_limits
    must(rate_ok(r.tasks or r.submit.liveportrait), "accepted a rate of " .. tostring(v), rest)
  end
end

local STRINGS = { "workspace", "user_agent", "api_key", "ca_file", "ca_path" }

local function string_mode(b, rest)
  local name = STRINGS[b % #STRINGS + 1]
  local ok, s = pcall(config.settings, { api_key = "sk-fuzz", base_url = "https://h.example/api/v1", [name] = rest },
    env {})
  if not ok then
    must(dashscope.is_misuse(s) and (s:find("dashscope.new: field '" .. name .. "'", 1, true)),
      "dashscope.new raised other than a misuse naming " .. name .. ": " .. tostring(s), rest)
    return
  end
  must(not s[name]:find("[%z\r\n]"), "accepted CR, LF or NUL in " .. name, rest)
  if name ~= "api_key" and name ~= "workspace" then
    must(not s[name]:find("[%z%c]"), "accepted a control character in " .. name, rest)
  end
end

local function retry_after_mode(rest)
  local ok, secs = pcall(http.retry_after, rest)
  must(ok, "http.retry_after raised: " .. tostring(secs), rest)
  must(secs == nil or (type(secs) == "number" and secs >= 0 and secs <= 2 ^ 31), "a Retry-After of " .. tostring(secs), rest)
  local at
  ok, at = pcall(core.getdate, rest)
  must(ok, "core.getdate raised: " .. tostring(at), rest)
  must(at == nil or math.type(at) == "integer", "core.getdate gave " .. tostring(at), rest)
end

return function(input)
  local mode = input:sub(1, 1)
  if mode == "o" and #input >= 2 then
    option_mode(input:byte(2), input:sub(3))
  elseif mode == "s" and #input >= 2 then
    string_mode(input:byte(2), input:sub(3))
  elseif mode == "r" then
    retry_after_mode(input:sub(2))
  else
    url_mode(input)
  end
end
