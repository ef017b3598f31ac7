-- A real redis-server for a spec, on a free loopback port, started and stopped by the spec itself:
--
--   local redis = require("spec.support.redis")
--   local server, why = redis.start()   -- nil, why when redis-server is not installed (pend then)
--   server.port, server.url ("redis://127.0.0.1:PORT/0"), server.pid
--   server:stop()      -- stops it (SIGTERM, waited for) and removes its directory; idempotent
--   server:restart()   -- stops it if running, starts a fresh one on the same port
--
-- redis-server runs in the foreground of a background shell, in a temporary directory, with no
-- persistence (--save '' --appendonly no): nothing outlives the spec. start() returns once the
-- server answers PING (redis-cli, from redis-tools, which redis-server depends on).
-- Also redis.hostile(mode): a fake Redis (spec/support/hostile_redis.py) that misbehaves.
local redis = {}

local Server = {}
Server.__index = Server

local hosts = require("spec.support.hosts")
local run = hosts.run

local function installed(program)
  return (run("command -v " .. program))
end

-- A loopback port nobody listens on now (hosts.lua's).
redis.free_port = hosts.free_port

local function alive(pid)
  return (run("kill -0 " .. pid))
end

local function sleep(seconds)
  os.execute("sleep " .. seconds)
end

local function answers(port)
  local ok, out = run("redis-cli -h 127.0.0.1 -p " .. port .. " ping")
  return ok and out:find("PONG", 1, true) ~= nil
end

-- Starts redis-server on self.port: true, or false, why (it exited, or did not answer in 10 s).
function Server:launch()
  assert(os.execute("mkdir -p " .. self.dir))
  local p = assert(io.popen(("cd %s && redis-server --port %d --bind 127.0.0.1 --save '' --appendonly no "
    .. "--daemonize no --dir %s --logfile %s/redis.log </dev/null >/dev/null 2>&1 & echo $!")
    :format(self.dir, self.port, self.dir, self.dir)))
  self.pid = assert(tonumber(p:read("*l")))
  p:close()
  for _ = 1, 200 do
    if answers(self.port) then return true end
    if not alive(self.pid) then
      local f = io.open(self.dir .. "/redis.log")
      local log = f and f:read("*a") or ""
      if f then f:close() end
      self.pid = nil
      return false, "redis-server exited: " .. log
    end
    sleep(0.05)
  end
  return false, "redis-server did not answer PING within 10 s"
end

-- Stops the process (SIGTERM; it saves nothing, so it ends at once), waiting until it is gone.
function Server:kill()
  if not self.pid then return end
  os.execute("kill " .. self.pid .. " 2>/dev/null")
  for _ = 1, 100 do
    if not alive(self.pid) then break end
    sleep(0.05)
  end
  os.execute("kill -9 " .. self.pid .. " 2>/dev/null")
  self.pid = nil
end

function Server:stop()
  self:kill()
  os.execute("rm -rf " .. self.dir)
end

function Server:restart()
  self:kill()
  assert(self:launch())
  return self
end

--- A running redis-server on a free loopback port, or nil, why (redis-server is not installed,
--- or did not start: a port taken in between is tried again, three times).
function redis.start()
  if not installed("redis-server") or not installed("redis-cli") then
    return nil, "redis-server (Debian package redis-server) is not installed"
  end
  local why
  for _ = 1, 3 do
    local dir = os.tmpname()
    os.remove(dir)
    local port = redis.free_port()
    local server = setmetatable({ port = port, url = ("redis://127.0.0.1:%d/0"):format(port), dir = dir }, Server)
    local ok
    ok, why = server:launch()
    if ok then return server end
    server:stop()
  end
  return nil, why
end

--- A fake Redis that misbehaves as `mode` says (see spec/support/hostile_redis.py), or nil, why:
--- { port = n, stop = function, sent = function -> bytes it wrote once its client has gone }.
function redis.hostile(mode)
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. dir))
  local script = debug.getinfo(1, "S").source:match("^@(.*)redis%.lua$") .. "hostile_redis.py"
  local p = assert(io.popen(("python3 %s %s %s/port %s/sent </dev/null >/dev/null 2>&1 & echo $!")
    :format(script, mode, dir, dir)))
  local pid = assert(tonumber(p:read("*l")))
  p:close()
  local port
  for _ = 1, 200 do
    local f = io.open(dir .. "/port")
    port = f and tonumber(f:read("*a"))
    if f then f:close() end
    if port then break end
    sleep(0.05)
  end
  local function read_sent()
    local f = io.open(dir .. "/sent")
    local n = f and tonumber(f:read("*a"))
    if f then f:close() end
    return n
  end
  return {
    port = assert(port, "the hostile server did not start"),
    -- the bytes it wrote before its client closed (waits up to 10 s for it to notice)
    sent = function()
      for _ = 1, 200 do
        local n = read_sent()
        if n then return n end
        sleep(0.05)
      end
    end,
    stop = function()
      os.execute("kill " .. pid .. " 2>/dev/null")
      os.execute("rm -rf " .. dir)
    end,
  }
end

return redis
