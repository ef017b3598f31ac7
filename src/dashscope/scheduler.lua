-- The client's scheduler: the methods that move every task and call of a client forward, and the
-- loops that wait. One non-blocking step (client:step) does all the work; every wait is a loop
-- around it in Lua, so a `sleep` function may yield (LuaJIT cannot yield across a C call), and an
-- event loop can drive the same step from socket and timer callbacks instead (client:sockets,
-- client:socket_ready). Which task to ask about, and when, is schedule.lua's business; the quotas
-- are limiter.lua's. Client methods: copied into the Client class by client.lua.
local core = require("dashscope.core")
local check = require("dashscope.check")
local errors = require("dashscope.errors")
local http = require("dashscope.http")
local limiter = require("dashscope.limiter")
local schedule = require("dashscope.schedule")
local task = require("dashscope.task")

local S = {}

--- Sets up the scheduler's state on a new client.
function S._init_scheduler(self, settings)
  local limits = settings.rate_limits
  self._limits = { tasks = limiter.new(limits and limits.tasks), submit = {} }
  for model, rate in pairs(limits and limits.submit or {}) do
    self._limits.submit[model] = limiter.new(rate)
  end
  self._lanes, self._live, self._dirty = {}, {}, {}
  self._clock = {}
  self._events = {}
  self._after_run = {} -- functions run when a blocking call returns (dashscope.uv re-syncs there)
end

function S:_now() -- luacheck: ignore 212 (a method, so that a test may replace the clock)
  return core.now()
end

local function lane_of(self, t)
  local name = t.model or "?"
  local lane = self._lanes[name]
  if not lane then
    lane = schedule.lane(name)
    self._lanes[name] = lane
  end
  return lane
end

--- Starts tracking a task: from now on step() asks about it on its lane's schedule.
function S:_track(t)
  if self._live[t] or t:ended() then return end
  self._live[t] = true
  local lane = lane_of(self, t)
  lane:add(t)
  self._dirty[lane] = true
end

function S:_untrack(t)
  if not self._live[t] then return end
  self._live[t] = nil
  local lane = lane_of(self, t)
  lane:remove(t)
  self._dirty[lane] = true
end

--- Called by task.lua after each answer about `t` (body nil for a cancel).
function S:_answered(t, body, err)
  local lane = lane_of(self, t)
  if body and body.output then
    lane:observe(t, body.output, self._clock, self:_now(), core.wallclock())
  end
  lane:touch(t)
  if not err and t._expected_end and t._last_poll and t._last_poll >= t._expected_end then
    lane:learn_slack(t, t:ended())
    t._late = (t._late or 0) + 1
  end
  if t:ended() or t._fatal then
    self:_untrack(t)
  end
  self._dirty[lane] = true
end

--- Queues a user callback; step() runs the queue once its own work is done, so a callback that
--- raises leaves the client consistent.
function S:_emit(fn, ...)
  self._events[#self._events + 1] = { fn = fn, n = select("#", ...), ... }
end

-- Runs the queued callbacks in order. One that closes the client (client:close()) ends the
-- delivery: close drops what is still queued.
local function deliver(self)
  local events = self._events
  while #events > 0 and not self._closed do
    local e = table.remove(events, 1)
    e.fn((table.unpack or unpack)(e, 1, e.n))
  end
end

--- One non-blocking step: advances every transfer in flight, finishes calls, sends the status
--- queries that are due. Returns the seconds until it next has work (0: call again now).
function S:step()
  check.open(self, "client:step", 2)
  local transport = self._transport
  local curl_timeout, soonest, started
  -- Until nothing new starts: a transfer started here may finish within the next perform, and
  -- must be seen before this step says how long nobody needs to look.
  repeat
    curl_timeout = select(2, transport:perform())
    local now = core.now()
    soonest, started = http.advance(self, now)
    for lane in pairs(self._dirty) do
      lane:plan(now, self._settings)
      self._dirty[lane] = nil
    end
    -- A lane with a task due now also takes the ones due within a moment: asked together, they
    -- can share one task list. Lanes with nothing due are not looked into.
    local ahead = now + 0.25 * self._settings.poll_interval
    for _, lane in pairs(self._lanes) do
      if lane.next_due and lane.next_due <= now then
        self:_ask(lane, lane:take_due(ahead))
        lane:update_due()
        started = true
      end
      if lane.next_due and (not soonest or lane.next_due < soonest) then
        soonest = lane.next_due
      end
    end
  until not started
  deliver(self)
  if self._closed then return 0 end -- a callback closed the client: nothing more to do
  local delay = soonest and math.max(0, soonest - core.now()) or 3600
  if curl_timeout then
    delay = math.min(delay, curl_timeout)
  elseif transport:pending() > 0 then
    delay = math.min(delay, 1) -- libcurl is waiting on sockets: a socket wakes the wait anyway
  end
  if #self._events > 0 then delay = 0 end
  return delay
end

--- Runs step() until `finished()` is true or `deadline` (clock seconds) passes: true, or false on
--- the deadline. Waits through `sleep` (or the client's) when given, else blocks in libcurl.
function S:_run(finished, deadline, sleep)
  local done = self:_loop(finished, deadline, sleep)
  self:_ran() -- also once closed: a driver then finds no socket and no work, and goes idle
  return done
end

--- Runs the after-run hooks: sockets may have closed and opened, and tasks may have been added,
--- while a blocking call ran outside any event loop's view.
function S:_ran()
  for _, fn in pairs(self._after_run) do fn() end
end

-- The loop of _run, without the hooks.
function S:_loop(finished, deadline, sleep)
  sleep = sleep or self._settings.sleep
  local transport = self._transport
  while not finished() do
    if self._closed then -- by a callback (client:close()): the calls it ended say Aborted
      return false
    end
    local delay = self:step()
    if finished() or self._closed then
      break
    end
    local now = core.now()
    if deadline and now >= deadline then
      return false
    end
    if deadline then
      delay = math.min(delay, deadline - now)
    end
    if sleep then
      -- A sleep function cannot watch sockets: look again soon while transfers are in flight.
      if transport:pending() > 0 then
        delay = math.min(delay, 0.01)
      end
      sleep(delay)
    else
      transport:wait(delay)
    end
  end
  return true
end

local LIST_MIN = 4        -- due tasks of one lane from which one task list beats one query each
local LIST_PAGE = 100
local LIST_PAGES = 20      -- pages read for one look at the list, at most

local function list_shape(body)
  if type(body.data) ~= "table" then
    return nil, "no data array"
  end
  return true
end

-- Asks about the due tasks of a lane: one query each, or, when many are due at once, one page of
-- the task list (docs/protocol.md §6) that says which of them ended; only those are then queried
-- for their results, and the others count as asked.
-- The service time from which a task list covers every due task, or nil when a list will not do.
local function list_from(self, lane, due)
  local capped = 0 -- asked early for max_poll_interval's sake: most have not ended, so from two on
  for _, t in ipairs(due) do           -- a list page beats a query each
    if t._capped then capped = capped + 1 end
  end
  if #due < (capped == #due and 2 or LIST_MIN) or lane.model == "?" or not self._clock.offset then
    return nil
  end
  local from = math.huge
  for _, t in ipairs(due) do
    if not t._submitted_local then return nil end
    from = math.min(from, t._submitted_local - self._clock.offset)
  end
  return from
end

function S:_ask(lane, all_due)
  -- Queried one by one: the tasks the list said ended (never listed twice), and the tasks asked at
  -- their expected end for the first time (most have ended: their query is the result fetch).
  -- Listed: those whose end is anybody's guess (run time unknown, or late), and those asked
  -- before their expected end because max_poll_interval has passed since their last question.
  local due = {}
  local known = lane:duration() ~= nil
  for _, t in ipairs(all_due) do
    if t._fetch or (known and not t._late and not t._capped) then
      t._fetch = nil
      t:_query()
    else
      due[#due + 1] = t
    end
  end
  local from = list_from(self, lane, due)
  if not from then
    for _, t in ipairs(due) do t:_query() end
    return
  end
  for _, t in ipairs(due) do t._inflight = true end
  self:_list(lane, due, os.date("%Y%m%d%H%M%S", math.floor(from) - 1))
end

-- Reads pages of the task list (newest first) until every task of `due` is placed, or the pages
-- run out (at most LIST_PAGES), then applies what they said.
function S:_list(lane, due, start_time)
  local listed, unplaced, wanted = {}, #due, {}
  for _, t in ipairs(due) do wanted[t.id] = true end
  local function page(no)
    http.start(self, {
      method = "GET", kind = "query", expect = list_shape, limiter = self._limits.tasks,
      path = string.format("/tasks?model_name=%s&start_time=%s&page_no=%d&page_size=%d",
        lane.model, start_time, no, LIST_PAGE),
      on_done = function(body, err)
        for _, item in ipairs(body and body.data or {}) do
          if type(item) == "table" and type(item.status) == "string" -- an unreadable status: not placed
             and wanted[item.task_id] and not listed[item.task_id] then
            listed[item.task_id] = item.status
            unplaced = unplaced - 1
          end
        end
        local pages = body and tonumber(body.total_page) or 0
        if not err and unplaced > 0 and no < pages and no < LIST_PAGES then
          return page(no + 1)
        end
        self:_listed(lane, due, listed, err)
      end,
    })
  end
  page(1)
end

-- Applies a task list to the due tasks: the ended (or unplaced) are fetched next, the others
-- count as asked.
function S:_listed(lane, due, listed, err)
  local at = core.now()
  for _, t in ipairs(due) do
    t._inflight = false
    local status = listed[t.id]
    if err or not status or task.TERMINAL[status] then
      t._fetch = true -- ended (or not placed): its own query comes next
      lane:ask_at(t, at)
    else
      t:_asked(at)
      t:_heard(status)
      self:_answered(t, nil, nil)
    end
  end
end

-- Runs one call to its end (through retries and quota waits): its body, or nil and err.
function S:_call(call)
  http.start(self, call)
  self:_run(function() return call.done end)
  return call.body_value, call.err
end

local MANY_OPTIONS = {
  { name = "timeout", type = "number", min = 0, doc = "seconds (default: the client's wait_timeout)" },
  { name = "sleep", type = "function", doc = "function(seconds) used instead of blocking, e.g. ngx.sleep" },
}
S.MANY_OPTIONS = MANY_OPTIONS

-- Raises unless `tasks` is an array (1..n, no holes) of tasks of this client; returns n.
-- A task may appear more than once (each_done, wait_all: see there). `level` counts from the
-- method the user called (1, the default: its caller is blamed).
local function check_tasks(self, tasks, what, level)
  level = 2 + (level or 1)
  check.open(self, "client:" .. what, level)
  if getmetatable(tasks) == task.Task then
    check.fail(what, "expects an array of tasks, got one task (pass { task })", level)
  end
  if type(tasks) ~= "table" then
    check.fail(what, "expects an array of tasks, got " .. type(tasks), level)
  end
  local n, count = #tasks, 0
  for k in pairs(tasks) do
    count = count + 1
    if type(k) ~= "number" or k < 1 or k > n or k ~= math.floor(k) then
      check.fail(what, "expects an array of tasks, got a table with the key " .. tostring(k), level)
    end
  end
  if count ~= n then
    check.fail(what, "expects an array of tasks without holes (nil items)", level)
  end
  for i = 1, n do
    local t = tasks[i]
    if type(t) ~= "table" or t._client ~= self then
      check.fail(what, "tasks[" .. i .. "] is not a task of this client", level)
    end
  end
  return n
end

-- The iterator behind each_done, wait_all and wait_any: slot, task, result, err for every slot of
-- `tasks` (a task given twice has two slots), slots of one task together, in the order the tasks
-- end; at the deadline (or once a callback closed the client) the slots left, in the order given,
-- with a WaitTimeout (or Aborted) error. Each task is followed once however often it is given.
-- `tick` (task:wait's on_tick): { every = seconds, fn = function() } called between slices of
-- the wait while nothing has ended.
local function slots(self, tasks, opts, what, tick)
  local n = check_tasks(self, tasks, what, 2)
  local o = check.fields(MANY_OPTIONS, opts or {}, what, 3)
  local given = {} -- the array as given: the loop's body may change the caller's
  for i = 1, n do given[i] = tasks[i] end
  tasks = given
  local timeout = o.timeout or self._settings.wait_timeout
  local deadline = core.now() + timeout
  local slots_of, ended, regs = {}, {}, {} -- task -> its slots; tasks seen ended; task -> watch
  for i = 1, n do
    local t = tasks[i]
    if not slots_of[t] then
      slots_of[t] = {}
      if t:ended() or t._fatal then
        ended[#ended + 1] = t
      else
        regs[t] = t:_watch { on_done = function(tt) ended[#ended + 1] = tt end }
        self:_track(t)
      end
    end
    table.insert(slots_of[t], i)
  end
  local ready, left = {}, n -- ready: slots to hand out, { i, t, result, err }
  local function give(t, result, err)
    for _, i in ipairs(slots_of[t]) do ready[#ready + 1] = { i, t, result, err } end
  end
  -- The deadline passed or the client closed: every slot of a task not seen ended, in order.
  local function give_up()
    local reason = {}
    for i = 1, n do
      local t = tasks[i]
      if regs[t] then
        t:_unwatch(regs[t])
        regs[t] = nil
        if self._closed then
          reason[t] = errors.closed { task_id = t.id }
        else
          local last = t._last_error and (" (last query: " .. tostring(t._last_error) .. ")") or ""
          reason[t] = errors.new {
            code = "WaitTimeout", task_id = t.id, retryable = true,
            message = string.format("task still %s after waiting %g s%s", t._status, timeout, last),
          }
        end
      end
      if reason[t] then ready[#ready + 1] = { i, t, nil, reason[t] } end
    end
  end
  return function()
    if #ready == 0 and left > 0 then
      local next_tick = tick and core.now() + tick.every
      while #ended == 0 and not self._closed do
        local stop = next_tick and math.min(deadline, next_tick) or deadline
        self:_run(function() return #ended > 0 end, stop, o.sleep)
        if #ended > 0 or self._closed or core.now() >= deadline then break end
        tick.fn()
        next_tick = core.now() + tick.every
      end
      local t = table.remove(ended, 1)
      if t then
        regs[t] = nil
        give(t, t:outcome())
      else
        give_up()
      end
    end
    local slot = table.remove(ready, 1)
    if not slot then
      return nil
    end
    left = left - 1
    return slot[1], slot[2], slot[3], slot[4]
  end
end

--- for task, result, err in client:each_done(tasks, opts) do ... end: every task once per place
--- it has in `tasks` (given twice, it comes twice, one after the other), in the order they end; at
--- the deadline the rest come with a WaitTimeout error, in the order given. A callback (or the
--- loop's body) that closes the client ends the loop's wait: the rest come with an Aborted error.
function S:each_done(tasks, opts)
  local next_slot = slots(self, tasks, opts, "each_done")
  return function()
    local _, t, result, err = next_slot()
    return t, result, err
  end
end

-- task:wait's loop: each_done for one task, with its on_tick.
function S:_wait_one(t, opts, tick)
  local _, _, result, err = slots(self, { t }, opts, "wait", tick)()
  return result, err
end

--- Waits for every task: an array of results in the order given (nil where a task did not
--- succeed) and an array of the errors at the same places; a task given twice fills both places.
function S:wait_all(tasks, opts)
  local next_slot = slots(self, tasks, opts, "wait_all")
  local results, errs = { n = #tasks }, { n = #tasks }
  for i, _, result, err in next_slot do
    results[i], errs[i] = result, err
  end
  return results, errs
end

--- Waits for the first task to end: that task, its result (or nil) and its error.
function S:wait_any(tasks, opts)
  local _, t, result, err = slots(self, tasks, opts, "wait_any")()
  return t, result, err
end

--- Follows a task without waiting: callbacks { on_status = fn(task, status), on_done =
--- fn(task, result, err) } run from step() (so from the event loop that drives the client).
function S:watch(t, callbacks)
  check_tasks(self, { t }, "watch")
  check.fields({
    { name = "on_status", type = "function" }, { name = "on_done", type = "function" },
  }, callbacks or {}, "watch", 2)
  t:_watch(callbacks)
  self:_track(t)
  return t
end

--- For event loops: the sockets libcurl wants watched now, { [fd] = "r" | "w" | "rw" }.
function S:sockets()
  if self._closed then return {} end -- closed from a callback: a driver drops its handles
  return self._transport:sockets()
end

--- For event loops: `fd` is readable and/or writable. Drives it, then steps; returns the seconds
--- until the client next has work.
function S:socket_ready(fd, readable, writable)
  self._transport:socket_action(fd, readable and true or false, writable and true or false)
  return self:step()
end

--- True while any task is tracked or any call is in flight or waiting to be sent.
function S:busy()
  return next(self._live) ~= nil or next(self._calls) ~= nil or #self._events > 0
end

return S
