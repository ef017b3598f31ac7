-- The engine of one client: everything that moves its calls and tasks forward, with one owner.
-- It holds the call queue (calls.lua), the quotas (limiter.lua), the lanes of tracked tasks and
-- their plans (planner.lua), the service's clock (servicetime.lua), the user callbacks queued
-- for delivery, the after-run hooks (an event loop's re-sync: uv.lua), and the step and run loops.
-- One non-blocking step (engine:step, client:step) does all the work; every wait is a loop around
-- it in Lua, so a `sleep` function may yield (LuaJIT cannot yield across a C call), and an event
-- loop can drive the same step from socket and timer callbacks instead.
--
-- Other files talk to it through the methods below and never write its fields. It reads a task
-- (model, ended, _fatal) and never writes one; polls.lua asks tasks through their own methods.
-- It does not know the client that holds it.
local core = require("dashscope.core")
local errors = require("dashscope.errors")
local calls = require("dashscope.calls")
local limiter = require("dashscope.limiter")
local quota = require("dashscope.quota")
local planner = require("dashscope.planner")
local polls = require("dashscope.polls")
local servicetime = require("dashscope.servicetime")

local engine = {}

local Engine = {}
Engine.__index = Engine

--- The engine of a client with checked `settings`, over its `transport`, sending `user_agent`.
function engine.new(transport, settings, user_agent)
  local self = setmetatable({
    transport = transport, settings = settings,
    calls = calls.new(transport, settings, user_agent),
    quota = nil,  -- the store shared with other processes (quota.lua), when the option names one
    limits = nil, -- the limiters: { tasks = , submit = { [model] = } }
    lanes = {},  -- model -> its lane (planner.lua)
    live = {},   -- the tracked tasks
    dirty = {},  -- lanes to replan at the next step
    clock = servicetime.clock(),
    events = {}, -- user callbacks queued for delivery
    after_run = {}, -- key -> function run when a blocking call returns
    closed = false,
  }, Engine)
  -- the store's warnings are callbacks like any other
  self.quota = quota.new(settings, function(message, info)
    self:emit(settings.on_warning or engine.warn, message, info)
  end)
  local limits = settings.rate_limits
  local submit = {}
  for model, rate in pairs(limits and limits.submit or {}) do
    submit[model] = limiter.new(rate, self.quota, "submit:" .. model)
  end
  self.limits = { tasks = limiter.new(limits and limits.tasks, self.quota, "tasks"), submit = submit }
  return self
end

--- Where a warning goes when the client has no on_warning: a line on stderr.
function engine.warn(message)
  io.stderr:write("dashscope: warning: ", message, "\n")
end

--- The client's clock (seconds, monotonic).
function Engine:now() -- luacheck: ignore 212 (a method: one clock for every file)
  return core.now()
end

--- The quota `name` ("tasks": queries, lists and cancels; "submit": `model`'s submits), or nil
--- when none is kept.
function Engine:limiter(name, model)
  if name == "submit" then return self.limits.submit[model] end
  return self.limits[name]
end

--- Queues `call` (calls.lua): non-blocking; its on_done runs from a step. On a closed client it
--- ends at once with an Aborted error (closed by a callback while a blocking call was on its way).
function Engine:start(call)
  if self.closed then
    return calls.refuse(call, errors.closed())
  end
  return self.calls:start(call, core.now())
end

--- Runs one call to its end (through retries and quota waits): its body, or nil and err.
function Engine:call(call)
  self:start(call)
  self:run(function() return call.done end)
  return call.body_value, call.err
end

--- Stops the attempt of `call` on the wire (it finishes, or is retried, at the next step).
function Engine:cancel(call)
  self.calls:cancel(call)
end

local function lane_of(self, t)
  local name = t.model or "?"
  local lane = self.lanes[name]
  if lane then return lane end
  lane = planner.lane(name)
  self.lanes[name] = lane
  return lane
end

--- Starts tracking a task: from now on a step asks about it on its lane's schedule. `submitted`
--- (the client's clock) for a task this client has just submitted.
function Engine:track(t, submitted)
  if self.live[t] or t:ended() then return end
  self.live[t] = true
  local lane = lane_of(self, t)
  lane:add(t, submitted)
  self.dirty[lane] = true
end

--- Stops tracking a task.
function Engine:untrack(t)
  if not self.live[t] then return end
  self.live[t] = nil
  local lane = lane_of(self, t)
  lane:remove(t)
  self.dirty[lane] = true
end

--- A status query about `t` goes out now (task.lua's _query).
function Engine:querying(t)
  lane_of(self, t):querying(t, core.now())
end

--- Counts `t` as asked at `at` by a task list that placed it (polls.lua).
function Engine:asked(t, at)
  lane_of(self, t):asked(t, at)
end

--- After each answer about `t` (body nil for a cancel or a task list; err for a failed query):
--- its lane learns and replans it; a task that ended (or failed for good) is no longer tracked.
function Engine:answered(t, body, err)
  local lane = lane_of(self, t)
  local out = body and body.output
  lane:answered(t, out, err ~= nil, t:ended(), self.clock, core.now(), out and core.wallclock())
  if t:ended() or t._fatal then
    self:untrack(t)
  end
  self.dirty[lane] = true
end

--- Where `t` stands as its plan knows it: { elapsed, position, expected_end } (task:progress).
function Engine:progress_of(t)
  local lane = self.lanes[t.model or "?"]
  if not lane then return {} end
  return lane:progress(t, core.now(), t:ended())
end

--- Queues a user callback; a step runs the queue once its own work is done, so a callback that
--- raises leaves the client consistent.
function Engine:emit(fn, ...)
  self.events[#self.events + 1] = { fn = fn, n = select("#", ...), ... }
end

-- Runs the queued callbacks in order. One that closes the client (client:close()) ends the
-- delivery: close drops what is still queued.
local function deliver(self)
  local events = self.events
  while #events > 0 and not self.closed do
    local e = table.remove(events, 1)
    e.fn((table.unpack or unpack)(e, 1, e.n))
  end
end

--- Registers (or, with fn nil, removes) the hook `key` runs when a blocking call returns: sockets
--- may have closed and opened, and tasks may have been added, outside any event loop's view.
function Engine:on_after_run(key, fn)
  self.after_run[key] = fn
end

-- Sends the asks that are due in every lane: returns the earliest next ask (or `soonest` when
-- that is earlier) and whether any was sent.
local function ask_due(self, now, soonest)
  local started = false
  for lane in pairs(self.dirty) do
    lane:plan(now, self.settings)
    self.dirty[lane] = nil
  end
  -- A lane with a task due now also takes the ones due within a moment: asked together, they
  -- can share one task list. Lanes with nothing due are not looked into. No more lone queries
  -- start than the calls have room for (Calls:room); a lane left with tasks due is stepped again
  -- when calls finish, not by its clock (which says now: the loop would spin).
  local ahead, room = now + 0.25 * self.settings.poll_interval, self.calls:room()
  for _, lane in pairs(self.lanes) do
    if lane.next_due and lane.next_due <= now then
      local due, alone = lane:take_due(ahead, math.max(0, room))
      if #due > 0 then
        room = room - alone
        polls.ask(self, lane, due)
        started = true
      end
      lane:update_due()
    end
    local at = lane.next_due
    if at and at > now and (not soonest or at < soonest) then
      soonest = at
    end
  end
  return soonest, started
end

--- One non-blocking step: advances every transfer in flight, finishes calls, sends the status
--- queries that are due, delivers the callbacks. Returns the seconds until it next has work (0:
--- call again now).
function Engine:step()
  local transport = self.transport
  local _, curl_timeout, soonest, started, asked
  -- Until nothing new starts: a transfer started here may finish within the next perform, and
  -- must be seen before this step says how long nobody needs to look.
  local shared = self.quota
  repeat
    _, curl_timeout = transport:perform()
    local now = core.now()
    local store_at = shared and shared:step(now) -- before the calls: its answers wake them
    soonest, started = self.calls:advance(now)
    soonest, asked = ask_due(self, now, soonest)
    if store_at and (not soonest or store_at < soonest) then soonest = store_at end
  until not (started or asked)
  deliver(self)
  if self.closed then return 0 end -- a callback closed the client: nothing more to do
  local delay = soonest and math.max(0, soonest - core.now()) or 3600
  if curl_timeout then
    delay = math.min(delay, curl_timeout)
  elseif transport:pending() > 0 then
    delay = math.min(delay, 1) -- libcurl is waiting on sockets: a socket wakes the wait anyway
  end
  if #self.events > 0 then delay = 0 end
  return delay
end

-- The loop of run, without the hooks.
local function loop(self, finished, deadline, sleep)
  sleep = sleep or self.settings.sleep
  local transport = self.transport
  while not finished() do
    if self.closed then -- by a callback (client:close()): the calls it ended say Aborted
      return false
    end
    local delay = self:step()
    if finished() or self.closed then
      break
    end
    local now = core.now()
    if deadline and now >= deadline then
      return false
    end
    if deadline then
      delay = math.min(delay, deadline - now)
    end
    local store_fd, store_events
    if self.quota then store_fd, store_events = self.quota:socket() end
    if sleep then
      -- A sleep function cannot watch sockets: look again soon while transfers are in flight,
      -- and sooner while the quota store is to answer (a reservation holds a call back).
      if transport:pending() > 0 then
        delay = math.min(delay, 0.01)
      end
      if self.quota and self.quota:awaiting() then
        delay = math.min(delay, 0.002)
      end
      sleep(delay)
    else
      transport:wait(delay, store_fd, store_events)
    end
  end
  return true
end

--- Steps until `finished()` is true or `deadline` (clock seconds) passes: true, or false on the
--- deadline. Waits through `sleep` (or the client's) when given, else blocks in libcurl. Then
--- runs the after-run hooks (also once closed: a driver then finds no socket and no work).
function Engine:run(finished, deadline, sleep)
  local done = loop(self, finished, deadline, sleep)
  for _, fn in pairs(self.after_run) do fn() end
  return done
end

--- The sockets libcurl wants watched now, { [fd] = "r" | "w" | "rw" } (none once closed).
function Engine:sockets()
  if self.closed then return {} end
  local sockets = self.transport:sockets()
  if self.quota then
    local fd, events = self.quota:socket()
    if fd then sockets[fd] = events end
  end
  return sockets
end

--- `fd` is readable and/or writable: lets libcurl (or the quota store, for its socket) act on it
--- (the caller steps next).
function Engine:socket_action(fd, readable, writable)
  if self.quota and self.quota:socket() == fd then
    self.quota:action(readable and true or false, writable and true or false)
    return
  end
  self.transport:socket_action(fd, readable and true or false, writable and true or false)
end

--- What the quota store is ({ kind, up, state, url }; kind "local" when there is none).
function Engine:quota_store()
  if not self.quota then return { kind = "local", up = true } end
  return self.quota:describe()
end

--- True while any task is tracked or any call is in flight or waiting to be sent.
function Engine:busy()
  return next(self.live) ~= nil or self.calls:busy() or #self.events > 0
end

--- Closes: every call not finished ends with an Aborted error (after the transport closed: an
--- on_done may look at the client, and must find it closed), queued callbacks are dropped and
--- nothing is tracked any more. Idempotent.
function Engine:close()
  if self.closed then return end
  self.closed = true
  if self.quota then self.quota:close() end
  local dropped = self.calls:drop()
  self.transport:close()
  calls.abort(dropped)
  self.events, self.live, self.dirty = {}, {}, {}
end

return engine
