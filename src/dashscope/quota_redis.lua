-- The quota store of processes on any number of hosts: a Redis server, given as
-- `quota = "redis://[[user]:password@]host[:port][/db][?prefix=name]"` (or DASHSCOPE_QUOTA_STORE).
-- A reservation (quota.lua's rule) is one script run on the server (EVALSHA), atomic there, on the
-- server's own clock, so the hosts' clocks need not agree: it answers how long to wait, in
-- microseconds. The connection is hiredis's (dashscope.hiredis), non-blocking: its socket is
-- watched with libcurl's (engine.lua), and nothing here ever waits for it. This file owns the
-- connection and the reservations on their way; whether the store is used is quota.lua's.
local core = require("dashscope.core")

local quota_redis = {}

local Store = {}
Store.__index = Store

-- The reservation, on the server (quota.lua's rule). Times are integer microseconds (exact in its
-- Lua's doubles); the list under KEYS[1] holds the ARGV[1] latest arrival times, in order;
-- ARGV[2] is the window, ARGV[3] the lead.
quota_redis.SCRIPT = [[
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local count, window, lead = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local times = redis.call('LRANGE', KEYS[1], 0, -1)
for i = 1, #times do times[i] = tonumber(times[i]) end
local at = now
if #times >= count and times[#times - count + 1] + window > at then
  at = times[#times - count + 1] + window
end
times[#times + 1] = at + lead
table.sort(times)
local kept = {}
for i = math.max(1, #times - count + 1), #times do kept[#kept + 1] = string.format('%d', times[i]) end
redis.call('DEL', KEYS[1])
redis.call('RPUSH', KEYS[1], unpack(kept))
redis.call('PEXPIRE', KEYS[1], math.floor((times[#times] - now + window) / 1000) + 1000)
return at - now]]
-- Its SHA-1, as SCRIPT LOAD answers (spec/quota_redis_spec.lua checks the two agree).
quota_redis.SHA = "9ec1fcf2aad2e3b7325301aaafb7a1ff94da0545"

-- The longest wait an answer may ask for, in seconds: beyond it the answer is not one of ours.
local MOST_WAIT = 86400

--- The parts of a store URL, or nil and what is wrong with it (check.lua words the misuse).
function quota_redis.parse(text)
  local rest = text:match("^redis://(.*)$")
  if not rest then
    return nil, 'must be a Redis URL "redis://host[:port][/db]" (rediss:// and other schemes are not supported)'
  end
  if text:find("[%z%c%s]") then return nil, "must not contain spaces or control characters" end
  local userinfo, hostport, path, query = rest:match("^([^@/?]*@)([^/?]*)(/?[^?]*)(%??.*)$")
  if not userinfo then userinfo, hostport, path, query = "", rest:match("^([^/?]*)(/?[^?]*)(%??.*)$") end
  local host, port = hostport:match("^%[([%x:.]+)%]:?(%d*)$")
  if not host then host, port = hostport:match("^([%w%-._]+):?(%d*)$") end
  port = tonumber(port ~= "" and port or "6379")
  if not host or not port or port < 1 or port > 65535 then
    return nil, "must name a host and an optional port from 1 to 65535"
  end
  local db = tonumber(path:match("^/(%d+)$") or (path == "" or path == "/") and "0" or nil)
  if not db or db > 1000000 then return nil, "must end with an optional /db, a number" end
  local prefix = "dashscope"
  if query ~= "" then
    prefix = query:match("^%?prefix=([%w_.:%-]+)$")
    if not prefix or #prefix > 64 then
      return nil, "takes only ?prefix=NAME (letters, digits, _ . : -, at most 64)"
    end
  end
  local user, password = userinfo:match("^([^:]*):(.*)@$")
  if userinfo ~= "" and not user then user, password = "", userinfo:sub(1, -2) end
  -- named without the password, for messages
  local shown = ("redis://%s%s%s"):format(userinfo ~= "" and "***@" or "", hostport, path)
  return { host = host, port = port, db = db, prefix = prefix, user = user ~= "" and user or nil,
           password = password, shown = shown }
end

--- A store on the Redis server at `text` (checked). Connects at once, without waiting.
function quota_redis.new(text)
  local parts = assert(quota_redis.parse(text))
  local ok, hiredis = pcall(require, "dashscope.hiredis")
  if not ok then
    -- a rock of its own (rockspec/dashscope-hiredis-*.rockspec), so that the core needs no libhiredis
    error("quota = \"" .. parts.shown .. "\" (or DASHSCOPE_QUOTA_STORE) needs the module dashscope.hiredis: "
      .. "install the rock dashscope-hiredis (it needs libhiredis), or build with make, which builds it ("
      .. tostring(hiredis):match("^[^\n]*") .. ")", 0)
  end
  local self = setmetatable({ kind = "redis", url = parts.shown, parts = parts, hiredis = hiredis,
    conn = nil, set_up = false, pending = {}, why = nil }, Store)
  self:reopen(core.now())
  return self
end

-- Sends `argv`; the answer goes to `entry` (a reservation, or the set-up). False when it could not.
local function send(self, argv, entry, now)
  local id = self.conn and self.conn:send(argv)
  if not id then return false end
  entry.deadline = entry.deadline or now
  self.pending[id] = entry
  return true
end

--- Opens a new connection (the old one, if any, is dropped first) and sends what sets it up:
--- AUTH, SELECT and SCRIPT LOAD, before any reservation.
function Store:reopen(now)
  if self.conn then return end -- a connection is under way
  local parts = self.parts
  local conn, err = self.hiredis.connect(parts.host, parts.port)
  if not conn then
    self.why = err
    return
  end
  self.conn, self.set_up = conn, false
  if parts.password then
    send(self, parts.user and { "AUTH", parts.user, parts.password } or { "AUTH", parts.password },
      { setup = "AUTH" }, now)
  end
  if parts.db ~= 0 then send(self, { "SELECT", parts.db }, { setup = "SELECT" }, now) end
  send(self, { "SCRIPT", "LOAD", quota_redis.SCRIPT }, { setup = "SCRIPT LOAD", last = true }, now)
end

--- Sends a reservation for the quota `name` of `lim` (limiter.lua, told through lim:answered):
--- true, or nil and why.
function Store:reserve(name, count, window, lead, lim, now)
  if not self.conn then return nil, self.why or "not connected" end
  local argv = { "EVALSHA", quota_redis.SHA, 1, self.parts.prefix .. ":" .. name, count,
                 math.floor(window * 1e6), math.floor(lead * 1e6) }
  if not send(self, argv, { lim = lim, argv = argv, deadline = now }, now) then
    return nil, "not connected"
  end
  return true
end

-- What an answer to `entry` means: nil, or why the store failed.
local function settle(self, entry, reply, now)
  if entry.setup then
    if reply.err then return entry.setup .. ": " .. reply.err end
    if entry.last then self.set_up = true end
    return nil
  end
  if reply.err and reply.err:find("^NOSCRIPT") then -- the server's scripts were flushed
    entry.argv[1], entry.argv[2] = "EVAL", quota_redis.SCRIPT
    if send(self, entry.argv, entry, now) then return nil end
  end
  local micro = not reply.err and math.tointeger and math.tointeger(reply.value) or tonumber(reply.value)
  if reply.err or type(micro) ~= "number" or micro < 0 or micro > MOST_WAIT * 1e6 then
    entry.lim:answered(nil, now)
    return reply.err or "an answer that is not a wait"
  end
  entry.lim:answered(micro / 1e6, now)
  return nil
end

--- Reads what arrived: answers go to their limiters. Returns why the store failed (an error, a
--- closed connection, an answer later than `timeout` seconds), or nil, and whether any
--- reservation was answered.
function Store:step(now, timeout)
  local conn = self.conn
  if not conn then return nil, false end
  local answered, failed = false, nil
  for _, reply in ipairs(conn:perform()) do
    local entry = self.pending[reply.id]
    self.pending[reply.id] = nil
    if entry then -- every answer settled, also after a failure: each wakes its limiter
      local why = settle(self, entry, reply, now)
      failed = failed or why
      answered = answered or (entry.lim ~= nil and not reply.err)
    end
  end
  local state, err = conn:state()
  if not failed and state == "closed" then
    if next(self.pending) == nil and self.set_up then
      -- closed while idle (the server's `timeout`, a proxy): connect again, quietly; a store
      -- really gone fails the next reservation, and that is said
      self:drop("idle connection closed")
      self:reopen(now)
    else
      failed = err or "connection closed"
    end
  end
  for _, entry in pairs(self.pending) do
    if not failed and now > entry.deadline + timeout then
      failed = ("no answer within %g s"):format(timeout)
    end
  end
  return failed, answered
end

--- True when connected and set up.
function Store:ready()
  return self.conn ~= nil and self.set_up and self.conn:state() == "connected"
end

--- When the oldest answer awaited is `timeout` seconds late (quota.lua gives up on it then), or nil.
function Store:next_step(timeout)
  local at
  for _, entry in pairs(self.pending) do
    if not at or entry.deadline < at then at = entry.deadline end
  end
  return at and at + timeout
end

--- Closes the connection: every reservation awaited is answered "failed" (the limiters decide
--- alone). Idempotent.
function Store:drop(why)
  local conn, now = self.conn, core.now()
  self.conn, self.set_up, self.why = nil, false, why
  if conn then conn:close() end
  local pending = self.pending
  self.pending = {}
  for _, entry in pairs(pending) do
    if entry.lim then entry.lim:answered(nil, now) end
  end
end

--- The connection's socket and what to watch it for, or nil.
function Store:socket()
  local conn = self.conn
  if not conn then return nil end
  local events = conn:events()
  return events and conn:fd(), events
end

--- An event loop says the socket is ready.
function Store:action(readable, writable)
  if self.conn then self.conn:action(readable, writable) end
end

return quota_redis
