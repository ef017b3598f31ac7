-- URLs the client connects to, read by libcurl's own parser (core.parse_url, src/url.c), so that
-- what is checked is what libcurl then connects to: the service's base URL (config.lua), the
-- upload host a policy names (files.lua) and a task's result URL (download.lua). Owns the rules;
-- sends nothing.
local core = require("dashscope.core")

local url = {}

--- libcurl's parts of `text` (scheme, host, port, path, query, fragment, user, password,
--- options, zoneid; absent ones nil), or nil and why it is no URL. Never raises on a string.
function url.parse(text)
  if type(text) ~= "string" then
    return nil, "is not a string"
  end
  return core.parse_url(text)
end

--- Whether libcurl's `host` (as url.parse gives it) is this machine: 127.0.0.0/8, [::1] or
--- localhost. libcurl has already normalised IPv4 forms (127.1, 0x7f.0.0.1) and IPv6 ones.
function url.loopback(host)
  if type(host) ~= "string" then
    return false
  end
  host = host:lower()
  if host == "localhost" or host == "[::1]" then
    return true
  end
  local a, b, c, d = host:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  return a == "127" and tonumber(b) <= 255 and tonumber(c) <= 255 and tonumber(d) <= 255
end

--- Why `parts` carry credentials (user, password or login options), or nil when they do not.
--- A URL's userinfo is never ours to send: it can hide the real host from a reader
--- ("http://127.0.0.1:9@elsewhere/") and would go out as Basic authentication.
function url.userinfo(parts)
  if parts.user or parts.password or parts.options then
    return "carries credentials (user:password@ before the host)"
  end
  return nil
end

--- The parts of `text` when it is a URL the client may fetch from a host the service named (an
--- upload host, a result URL): http:// or https://, a host, no credentials. Else nil and why.
function url.remote(text)
  local parts, why = url.parse(text)
  if not parts then
    return nil, why
  end
  if parts.scheme ~= "http" and parts.scheme ~= "https" then
    return nil, "is not an http:// or https:// URL"
  end
  if not parts.host or parts.host == "" then
    return nil, "has no host"
  end
  why = url.userinfo(parts)
  if why then
    return nil, why
  end
  return parts
end

return url
