-- The C core under an event loop of the caller's: libcurl's multi_socket interface as the transport
-- shows it (sockets, socket_action, timer_action, timeout), the connection cap, waiting without
-- spinning, and the clocks the bench reads. The loop here is LuaSocket's select() over the raw file
-- descriptors libcurl asks for, as luv or nginx would watch them.
local helper = require("spec.support.helper")
local core = require("dashscope.core")

local has_socket, socket = pcall(require, "socket")

local AUTH = "Authorization: Bearer " .. helper.KEY
local BASE = helper.BASE_URL
local SLOW = helper.UNDER_VALGRIND and 10 or 1 -- time limits scale under valgrind

local function get(transport, path)
  return transport:request { method = "GET", url = BASE .. path, headers = { AUTH },
                             timeout = 10 * SLOW, connect_timeout = 5 * SLOW }
end

local function all_done(requests)
  for _, r in ipairs(requests) do
    if not r:done() then return false end
  end
  return true
end

-- perform/wait, as the Lua layer's own loop does.
local function run_all(transport, requests, limit)
  local deadline = core.now() + (limit or 10) * SLOW
  while not all_done(requests) do
    assert(core.now() < deadline, "transfers did not finish in time")
    local _, timeout = transport:perform()
    if not all_done(requests) then transport:wait(math.min(timeout or 1, 1)) end
  end
end

-- select() takes any object with getfd(): one per descriptor libcurl wants watched.
local function fd_object(fd)
  return { getfd = function() return fd end, dirty = function() return false end, fd = fd }
end

-- An event loop of our own: watch what T:sockets() says, for at most T:timeout(); tell the
-- transport what select() saw with T:socket_action, fire its timer with T:timer_action. Never
-- calls perform or wait. Returns what it saw: calls made and the modes each descriptor was in.
local function event_loop(t, requests, limit)
  local seen = { socket_actions = 0, timer_actions = 0, modes = {}, rounds = 0 }
  local deadline = core.now() + (limit or 10) * SLOW
  while not all_done(requests) do
    assert(core.now() < deadline, "transfers did not finish in time")
    seen.rounds = seen.rounds + 1
    local reads, writes = {}, {}
    for fd, mode in pairs(t:sockets()) do
      assert.truthy(mode == "r" or mode == "w" or mode == "rw", mode)
      seen.modes[mode] = true
      if mode:find("r", 1, true) then reads[#reads + 1] = fd_object(fd) end
      if mode:find("w", 1, true) then writes[#writes + 1] = fd_object(fd) end
    end
    local timeout = t:timeout()
    local readable, writable = socket.select(reads, writes, math.min(timeout or 1, 1))
    local ready = {}
    for _, o in ipairs(readable) do ready[o.fd] = { true, false } end
    for _, o in ipairs(writable) do
      ready[o.fd] = ready[o.fd] or { false, false }
      ready[o.fd][2] = true
    end
    for fd, rw in pairs(ready) do
      local running, next_timeout = t:socket_action(fd, rw[1], rw[2])
      assert.are.equal("number", type(running))
      assert.truthy(next_timeout == nil or next_timeout >= 0)
      seen.socket_actions = seen.socket_actions + 1
    end
    timeout = t:timeout()
    if timeout and timeout <= 0 then
      t:timer_action()
      seen.timer_actions = seen.timer_actions + 1
    end
  end
  return seen
end


describe("the transport under an event loop", function()
  before_each(function() helper.reset() end)

  it("runs 20 requests at once from the sockets and the timer libcurl asks for", function()
    if not has_socket then pending("LuaSocket (lua-socket) is not installed") return end
    local t = core.new_transport()
    assert.are.same({}, t:sockets())
    local requests = {}
    for i = 1, 20 do requests[i] = get(t, "/tasks/loop-" .. i) end
    -- a new transfer asks for a timer at once, and no socket yet
    local due = t:timeout()
    assert.are.equal("number", type(due))
    assert.truthy(due <= 0.01, tostring(due))
    local seen = event_loop(t, requests)
    for _, r in ipairs(requests) do
      local resp = assert(r:response())
      assert.are.equal(200, resp.status)
      assert.truthy(resp.body:find('"UNKNOWN"', 1, true))
      r:close()
    end
    assert.truthy(seen.timer_actions >= 1)
    assert.truthy(seen.socket_actions > 0, "no socket action")
    assert.truthy(seen.modes.r, "no socket was ever watched for reading")
    assert.are.equal(0, t:pending())
    -- connections kept alive for reuse are not watched, and no timer is left running
    assert.are.same({}, t:sockets())
    local left = t:timeout()
    assert.truthy(left == nil or left > 1, tostring(left))
    -- a second wave reuses the idle connections
    local before = t:stats().connections
    local again = {}
    for i = 1, 6 do again[i] = get(t, "/tasks/again-" .. i) end
    event_loop(t, again)
    assert.are.equal(before, t:stats().connections)
    assert.are.equal(26, t:stats().requests)
    t:close()
  end)

  it("lets libcurl look for itself when the loop says neither readable nor writable", function()
    local t = core.new_transport()
    local requests = { get(t, "/tasks/check-1"), get(t, "/tasks/check-2") }
    local deadline = core.now() + 10 * SLOW
    while not all_done(requests) do
      assert(core.now() < deadline, "transfers did not finish in time")
      local timeout = t:timeout()
      if timeout and timeout <= 0 then t:timer_action() end
      t:wait(0.01) -- only a sleep here: this loop cannot tell which socket is ready
      for fd in pairs(t:sockets()) do t:socket_action(fd, false, false) end
    end
    assert.are.equal(200, requests[1]:response().status)
    assert.are.equal(200, requests[2]:response().status)
    t:close()
  end)

  it("ignores a descriptor libcurl does not watch", function()
    local t = core.new_transport()
    local running, timeout = t:socket_action(0, true, false)
    assert.are.equal(0, running)
    assert.is_nil(timeout)
    running = t:timer_action()
    assert.are.equal(0, running)
    t:close()
  end)

  it("refuses wrong arguments and a closed transport", function()
    local t = core.new_transport()
    assert.truthy(helper.raises(function() t:socket_action("x") end):find("#1", 1, true))
    assert.truthy(helper.raises(function() t:socket_action(-1) end):find("file descriptor", 1, true))
    assert.truthy(helper.raises(function() t:socket_action(3, 1, 0) end):find("boolean", 1, true))
    assert.truthy(helper.raises(function() t:wait(-1) end):find("non-negative", 1, true))
    t:close()
    for _, call in ipairs {
      function() t:sockets() end, function() t:socket_action(3, true, false) end,
      function() t:timer_action() end, function() t:timeout() end,
      function() t:perform() end, function() t:wait(0) end,
    } do
      assert.truthy(helper.raises(call):find("closed", 1, true))
    end
  end)
end)

describe("the transport's connection cap", function()
  before_each(function() helper.reset { latency = 0.05 } end)

  it("runs 40 requests over at most max_connections connections; the rest wait inside libcurl", function()
    local t = core.new_transport { max_connections = 3 }
    local requests = {}
    for i = 1, 40 do requests[i] = get(t, "/tasks/capped-" .. i) end
    assert.are.equal(40, t:pending())
    run_all(t, requests, 30)
    for _, r in ipairs(requests) do
      assert.are.equal(200, assert(r:response()).status)
    end
    local stats = helper.stats()
    assert.are.equal(40, stats.requests)
    assert.truthy(stats.connections <= 3, stats.connections .. " connections")
    assert.truthy(t:stats().connections <= 3)
    t:close()
  end)

  it("opens up to 6 connections by default, and max_host_connections caps one host", function()
    local t = core.new_transport()
    local requests = {}
    for i = 1, 20 do requests[i] = get(t, "/tasks/default-" .. i) end
    run_all(t, requests, 30)
    local stats = helper.stats()
    assert.truthy(stats.connections > 3 and stats.connections <= 6, stats.connections .. " connections")
    t:close()

    helper.reset { latency = 0.05 }
    t = core.new_transport { max_connections = 10, max_host_connections = 2 }
    requests = {}
    for i = 1, 10 do requests[i] = get(t, "/tasks/host-" .. i) end
    run_all(t, requests, 30)
    assert.truthy(helper.stats().connections <= 2)
    t:close()
  end)

  it("raises for a bad option, naming it", function()
    assert.truthy(helper.raises(function() core.new_transport { max_connections = 0 } end)
      :find("max_connections", 1, true))
    assert.truthy(helper.raises(function() core.new_transport { max_connections = 2.5 } end)
      :find("positive integer", 1, true))
    assert.truthy(helper.raises(function() core.new_transport { max_host_connections = "4" } end)
      :find("max_host_connections", 1, true))
    assert.truthy(helper.raises(function() core.new_transport { max_conections = 4 } end)
      :find("unknown field 'max_conections'", 1, true))
    assert.truthy(helper.raises(function() core.new_transport(5) end))
    core.new_transport({}):close()
  end)
end)

describe("the transport's waits", function()
  before_each(function() helper.reset() end)

  it("sleeps in wait() when nothing is watched", function()
    local t = core.new_transport()
    local cpu0, t0 = core.rusage(), core.now()
    t:wait(0.2)
    local elapsed = core.now() - t0
    assert.truthy(elapsed >= 0.19, elapsed)
    local cpu1 = core.rusage()
    local used = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    assert.truthy(used < 0.1 * SLOW, used .. " s of CPU in a 0.2 s wait")
    t:close()
  end)

  it("does not spin while a slow answer is awaited", function()
    helper.faults { { match = "query", kind = "slow", delay = 0.5 } }
    local t = core.new_transport()
    local r = get(t, "/tasks/slow")
    local rounds = 0
    local deadline = core.now() + 10 * SLOW
    while not r:done() do
      assert(core.now() < deadline, "the transfer did not finish in time")
      rounds = rounds + 1
      local _, timeout = t:perform()
      if not r:done() then t:wait(math.min(timeout or 1, 1)) end
    end
    assert.are.equal(200, r:response().status)
    assert.truthy(rounds < 50, rounds .. " rounds for one 0.5 s answer")
    t:close()
  end)

  it("returns early from a wait when a socket is ready", function()
    local t = core.new_transport()
    local r = get(t, "/tasks/quick")
    local t0 = core.now()
    while not r:done() do
      assert(core.now() - t0 < 5 * SLOW, "the transfer did not finish in time")
      t:perform()
      if not r:done() then t:wait(5) end
    end
    assert.truthy(core.now() - t0 < 4 * SLOW)
    t:close()
  end)
end)

describe("the core's clocks", function()
  it("tells the wall clock in seconds, as os.time does, with a fraction", function()
    local w = core.wallclock()
    assert.are.equal("number", type(w))
    assert.truthy(math.abs(w - os.time()) < 2)
    local a, b = core.now(), core.now()
    assert.truthy(b >= a)
  end)

  it("tells the process's CPU time and peak memory", function()
    local before = core.rusage()
    assert.are.equal("number", type(before.user))
    assert.are.equal("number", type(before.system))
    assert.truthy(before.user >= 0 and before.system >= 0)
    assert.truthy(before.maxrss > 1000, before.maxrss .. " kB") -- a Lua process is over 1 MB
    if math.type then assert.are.equal("integer", math.type(before.maxrss)) end
    local t0, x = core.now(), 0
    while core.now() - t0 < 0.05 do x = x + 1 end -- burn some CPU
    local after = core.rusage()
    assert.truthy(after.user + after.system > before.user + before.system)
    assert.truthy(after.maxrss >= before.maxrss)
  end)
end)
