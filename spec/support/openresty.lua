-- What the specs of examples/openresty share: whether this host can run it, starting and stopping
-- it through its run.sh against the local server, and one request to it with curl. Owns nothing
-- of the example itself (examples/openresty/) and never edits its files: it runs them as a user would.
local helper = require("spec.support.helper")
local hosts = require("spec.support.hosts")

local run, exists, read = hosts.run, hosts.exists, hosts.read

local openresty = {}

--- Why this host cannot run the example, or nil and the LuaJIT build nginx is to load.
function openresty.missing()
  if not run("command -v nginx") then return "nginx is not installed (apt-get install nginx)" end
  local _, modules = run("dpkg -L libnginx-mod-http-lua")
  if not modules:find("/ngx_http_lua_module%.so") and not exists("/usr/lib/nginx/modules/ngx_http_lua_module.so") then
    return "the nginx lua module is not installed (apt-get install libnginx-mod-http-lua)"
  end
  local build, why = hosts.luajit_build()
  if not build then return why end
  return nil, build
end

local free_port = hosts.free_port

-- The form encoding of a query value.
local function encode(s)
  return (s:gsub("[^%w%-._]", function(c) return ("%%%02X"):format(c:byte()) end))
end

--- A query string from { { name, value }, ... }, in that order.
function openresty.query(args)
  local parts = {}
  for _, kv in ipairs(args) do parts[#parts + 1] = kv[1] .. "=" .. encode(kv[2]) end
  return table.concat(parts, "&")
end

--- One request with curl to `url` .. `path`, its headers kept under `scratch` (a directory): status
--- code, body, headers (lower-cased names), seconds; nil and curl's message when curl failed.
function openresty.request(method, url, path, scratch)
  local ok, out = run(("curl -sS -m 10 -X %s -D %s/headers -w '\\n%%{http_code} %%{time_total}' '%s%s'")
    :format(method, scratch, url, path))
  if not ok then return nil, out end
  local body, code, secs = out:match("^(.*)\n(%d+) ([%d.]+)$")
  local headers = {}
  for name, value in (read(scratch .. "/headers") or ""):gmatch("([%w%-]+):%s*([^\r\n]*)") do
    headers[name:lower()] = value
  end
  return tonumber(code), body, headers, tonumber(secs)
end

--- Starts the example through run.sh under `dir` (its prefix is dir/nginx, its output dir/run.log)
--- from `build`, with `env` (extra variables, e.g. "WORKERS=1 JOB_RATE=1000r/s"): its base URL and
--- the pid of its master, once it answers /ping.
function openresty.start(dir, build, env)
  assert(os.execute("mkdir -p " .. dir))
  local port = free_port()
  local url = "http://127.0.0.1:" .. port
  -- nginx in the foreground of a background shell: run.sh execs it, so $! is its master.
  -- Without the caller's LUA_PATH/LUA_CPATH (for Lua 5.4): nginx's LuaJIT would read them.
  local p = assert(io.popen(("env -u LUA_PATH -u LUA_CPATH DASHSCOPE_HTTP_BASE_URL=%s DASHSCOPE_API_KEY=%s PREFIX=%s BUILD=%s "
    .. "%s sh examples/openresty/run.sh %d > %s/run.log 2>&1 & echo $!"):format(
    helper.BASE_URL, helper.KEY, dir .. "/nginx", build, env, port, dir)))
  local master = assert(tonumber(p:read("*l")))
  p:close()
  for _ = 1, 100 do
    if openresty.request("GET", url, "/ping", dir) == 200 then return url, master end
    assert(run("kill -0 " .. master), "nginx exited:\n"
      .. (read(dir .. "/run.log") or "") .. (read(dir .. "/nginx/logs/error.log") or ""))
    os.execute("sleep 0.05")
  end
  openresty.stop(master) -- up but not answering: not left running after the spec
  error("nginx did not answer /ping within 5 s:\n" .. (read(dir .. "/nginx/logs/error.log") or ""))
end

--- Stops the nginx whose master is `master` (SIGTERM, then after 5 s SIGKILL to it and its workers).
function openresty.stop(master)
  os.execute("kill " .. master .. " 2>/dev/null")
  for _ = 1, 50 do
    if not run("kill -0 " .. master) then break end
    os.execute("sleep 0.1")
  end
  os.execute("kill -9 " .. master .. " 2>/dev/null; pkill -9 -P " .. master .. " 2>/dev/null")
end

return openresty
