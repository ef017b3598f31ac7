-- When to ask the service about each task: polls go where news is likely.
--
-- Tasks are grouped in lanes, one per model. A lane learns from the answers it gets:
--   * how long a task of this model runs (end_time - scheduled_time of SUCCEEDED tasks, both in
--     the service's clock, so clock skew cancels out), as a median of the recent ones;
--   * whether the service runs this model's tasks one at a time (docs/protocol.md §10: it queues the
--     rest) or in parallel: a task seen PENDING while another of ours runs means a queue; a task
--     seen running while another of ours runs means parallel;
--   * how the service's clock maps onto ours (the submit answer's arrival against submit_time).
-- With a duration known, each task is asked once, just after its expected end (its own start
-- when seen, else its submit for a parallel lane, else its predecessor's expected end in a queue),
-- then again on a short, growing step if it was not done yet. Without one, only the lane's head
-- (and one probe behind it, until the lane's kind is known) is asked, on a geometric schedule from
-- poll_interval to max_poll_interval; the tasks queued behind wait for news.
--
-- Planning costs what changed, not what is in flight: in a parallel lane with a known run time a
-- task's next ask depends only on itself and the lane's figures, so an answer replans its own task
-- (all of them only when the figures have moved), and each lane keeps its next asks in a binary
-- heap, so finding the due tasks does not walk the lane either. Queues and lanes still learning
-- their run time are replanned whole (their asks depend on rank; they are asked rarely).
--
-- Whatever a lane planned, no tracked task goes longer than max_poll_interval without a question,
-- and the service's times are believed only when they are possible (a run longer than the time
-- since we submitted, a time days away from our clock, an end in the future): one task that lies
-- cannot stall the others of its model.
local schedule = {}

local Lane = {}
Lane.__index = Lane

local RUNNING = require("dashscope.status").RUNNING
local GROWTH = 1.5     -- geometric schedule factor while the duration is unknown
local SPARSE = 3       -- the same for tasks behind the head of a parallel lane
local KEEP = 16        -- durations remembered per lane
local DAY = 86400      -- no run (or wait to start) is believed longer than this
local SKEW = 3 * DAY   -- a service time this far from our wall clock is a lie (time zones: < 1 day)
local LATENCY = 60     -- how much later than the service's time an answer may reach us, at most

--- "2025-12-26 11:33:03.146" -> seconds on a fixed scale (differences are what matter).
local hours = {} -- "YYYY-MM-DD HH" -> os.time of that hour: os.time is the costly part
local hours_kept = 0

function schedule.parse_time(text)
  if type(text) ~= "string" then return nil end
  local day_hour, mi, s, frac = text:match("^(%d+%-%d+%-%d+[ T]%d+):(%d+):(%d+)%.?(%d*)")
  if not day_hour then return nil end
  local base = hours[day_hour]
  if base == nil then
    local y, mo, d, h = day_hour:match("^(%d+)%-(%d+)%-(%d+)[ T](%d+)$")
    -- pcall: a year os.time cannot take raises (a fuzzer's find); such a time is no time
    local ok, at = pcall(os.time, { year = tonumber(y), month = tonumber(mo), day = tonumber(d),
                                    hour = tonumber(h), min = 0, sec = 0, isdst = false })
    base = ok and at or false
    if hours_kept > 64 then hours, hours_kept = {}, 0 end
    hours[day_hour], hours_kept = base, hours_kept + 1
  end
  if not base then return nil end
  return base + tonumber(mi) * 60 + tonumber(s) + (frac ~= "" and tonumber(frac) / 10 ^ #frac or 0)
end

function schedule.lane(model)
  -- durations: run times; waits: submit to start when nothing was queued ahead; slack: how
  -- long after the expected end a task is asked (grows when asked too early, shrinks otherwise).
  -- live: tracked tasks in submit order (may hold removed ones until compacted; members says
  -- which are in); touched: tasks to replan; heap: { at, task } entries of next asks, some stale.
  return setmetatable({ model = model, durations = {}, waits = {}, live = {}, members = {},
                        removed = 0, touched = {}, heap = {}, parallel = nil, slack = nil }, Lane)
end

-- The heap of next asks: a binary min-heap on `at`. An entry is stale once its task is asked,
-- replanned or gone (see fresh); stale entries are dropped as they reach the top.
local function heap_push(heap, at, t)
  local i = #heap + 1
  heap[i] = { at = at, task = t }
  while i > 1 do
    local parent = math.floor(i / 2)
    if heap[parent].at <= at then break end
    heap[i], heap[parent] = heap[parent], heap[i]
    i = parent
  end
  t._heaped = at
end

local function heap_pop(heap)
  local n = #heap
  local top, last = heap[1], heap[n]
  heap[n] = nil
  n = n - 1
  if n == 0 then return top end
  heap[1] = last
  local i = 1
  while true do
    local l, r, m = 2 * i, 2 * i + 1, i
    if l <= n and heap[l].at < heap[m].at then m = l end
    if r <= n and heap[r].at < heap[m].at then m = r end
    if m == i then break end
    heap[i], heap[m] = heap[m], heap[i]
    i = m
  end
  return top
end

local function fresh(lane, e)
  local t = e.task
  return lane.members[t] and not t._inflight and t._next_poll == e.at
end

-- Puts t's next ask (t._next_poll) in the heap unless an entry already holds it.
local function enqueue(lane, t)
  local at = t._next_poll
  if at and t._heaped ~= at then heap_push(lane.heap, at, t) end
end

local function median(list)
  local n = #list
  if n == 0 then return nil end
  local sorted = {}
  for i, d in ipairs(list) do sorted[i] = d end
  table.sort(sorted)
  return sorted[math.floor((n + 1) / 2)]
end

local function remember(list, value)
  list[#list + 1] = value
  if #list > KEEP then table.remove(list, 1) end
end

--- The typical run time of this lane's tasks, or nil before the first has succeeded.
function Lane:duration()
  if self.durations_median == nil then self.durations_median = median(self.durations) or false end
  return self.durations_median or nil
end

-- The typical delay from submit to start in a parallel lane (0 until one is seen).
function Lane:start_delay()
  if self.waits_median == nil then self.waits_median = median(self.waits) or 0 end
  return self.waits_median
end

function Lane:add(task)
  self.live[#self.live + 1] = task
  self.members[task] = true
  self.count = (self.count or 0) + 1
  self.touched[task] = true
end

-- Removed tasks leave `live` in bulk (compact): removing one by one would cost a scan each.
function Lane:remove(task)
  if not self.members[task] then return end
  self.members[task] = nil
  self.count = self.count - 1
  self.removed = self.removed + 1
  if self.removed > 32 and self.removed > self.count then self:compact() end
end

function Lane:compact()
  local live, members, n = self.live, self.members, 0
  for i = 1, #live do
    local t = live[i]
    live[i] = nil
    if members[t] then
      n = n + 1
      live[n] = t
    end
  end
  self.removed = 0
end

--- `task`'s place among the lane's tasks waiting in the service's queue (1 = next to run), or nil
--- when the lane is not known to be a queue or the task is not waiting.
function Lane:position(task)
  if self.parallel ~= false or task._status ~= "PENDING" then return nil end
  local n = 0
  for _, t in ipairs(self.live) do
    if self.members[t] and t._status == "PENDING" then
      n = n + 1
      if t == task then return n end
    end
  end
  return nil
end

--- Marks `task` for replanning at the next plan (its own state changed).
function Lane:touch(task)
  self.touched[task] = true
end

-- Is another live task of the lane, besides `task`, known to be running?
local function other_running(lane, task)
  for _, t in ipairs(lane.live) do
    if t ~= task and lane.members[t] and RUNNING[t._status] then return true end
  end
  return false
end

-- A service time (schedule.parse_time's scale) near enough to `wall` (our wall clock, epoch
-- seconds) to be true, or nil. parse_time reads the service's zone as ours, so a true time is off
-- by less than a day.
local function plausible(t, wall)
  if t and math.abs(t - wall) <= SKEW then return t end
  return nil
end

-- Learns the offset (local - service) from one submit: the submit answer came after submit_time,
-- so each task gives an upper bound and the least is the best. The least of the recent ones that
-- are not far below their median: one lying submit_time cannot drag the clock away.
local function learn_offset(clock, offset)
  local seen = clock.offsets or {}
  clock.offsets = seen
  remember(seen, offset)
  local mid = median(seen)
  local best
  for _, o in ipairs(seen) do
    if o >= mid - LATENCY and (not best or o < best) then best = o end
  end
  clock.offset = best
end

-- Is `d` seconds a possible run (or wait) of `task`, now? Never more than a day; for a task we
-- submitted, never more than the time since the submit (plus the submit answer's latency).
local function possible(task, d, now)
  if d < 0 or d > DAY then return false end
  return not task._submitted_local or d <= now - task._submitted_local + LATENCY
end

--- Learns from one query answer's output for `task` (its status already applied).
--- `clock` is the client's clock mapping { offset = local - service }; `now` the client's clock,
--- `wall` the wall clock (epoch seconds) at the answer.
function Lane:observe(task, out, clock, now, wall)
  local submit = plausible(schedule.parse_time(out.submit_time), wall)
  if submit and task._submitted_local and not task._offset_learned then
    task._offset_learned = true -- one sample per task: a task asked often does not outvote others
    learn_offset(clock, task._submitted_local - submit)
  end
  local started = plausible(schedule.parse_time(out.scheduled_time), wall)
  if started and clock.offset then
    task._started_local = math.min(started + clock.offset, now) -- it cannot start in the future
  end
  local status = out.task_status
  if self.parallel == nil then
    if RUNNING[status] and other_running(self, task) then
      self.parallel = true
    elseif status == "PENDING" and other_running(self, task) then
      self.parallel = false
    end
  end
  local ended = plausible(schedule.parse_time(out.end_time), wall)
  if ended and clock.offset then
    self.last_end_local = math.max(self.last_end_local or 0, math.min(ended + clock.offset, now))
  end
  if status == "SUCCEEDED" and started and ended and possible(task, ended - started, now) then
    remember(self.durations, ended - started)
    self.durations_median = nil
    if submit and started >= submit and possible(task, started - submit, now) and self.parallel then
      remember(self.waits, started - submit)
      self.waits_median = nil
    end
  end
end

local function margin(duration)
  return 0.02 + 0.01 * duration
end

--- After asking `task` at its expected end: tunes how long after the expected end tasks are
--- asked, so that few are asked too early (a second query) and none much too late (lag).
function Lane:learn_slack(task, ended)
  local d = self:duration()
  if not d or task._late then return end
  local slack = self.slack or margin(d)
  if ended then
    self.slack = math.max(margin(d), slack * 0.97)
  else
    self.slack = math.min(slack * 1.5 + 0.005, 0.1 * d + 0.1)
  end
end

-- Plans one task with a known run time d: its next ask just after its expected end (or a growing
-- step once asked then and not done). Returns its expected end (the next one's start in a queue).
local function plan_known(self, t, now, s, d, wait, previous_end)
  local start = t._started_local
  if not start then
    start = (t._submitted_local or now) + wait
    if self.parallel == false and previous_end and previous_end > start then
      start = previous_end
    end
  end
  local due = start + d + (self.slack or margin(d))
  t._expected_end = start + d
  if not t._submitted_local and not t._last_poll then
    due = now -- a task resumed by id: first see where it is
  elseif t._last_poll and t._last_poll >= start + d then
    -- asked at or after the expected end and not done: a short step that grows
    local step = math.max(0.05, 0.05 * d) * 2 ^ math.max(0, (t._late or 1) - 1)
    due = t._last_poll + math.min(step, s.max_poll_interval)
  end
  t._next_poll = due
  return start + d
end

-- Plans one task of a lane still learning its run time (rank: its place in the lane).
-- Tasks of one model run about as long as each other: the head teaches the run time for all the
-- others, and one probe behind it tells a queue from parallel runs. In a queue the rest cannot end
-- before the head; running in parallel they are asked sparsely (a short input may end first).
local function plan_unknown(self, t, rank, now, s)
  local heads = self.parallel == nil and 2 or 1
  local interval
  if rank <= heads or (t._last_poll == nil and t._submitted_local == nil) then
    -- the more tasks wait for the lesson, the more often it is worth asking
    interval = s.poll_interval * GROWTH ^ (t._polls or 0)
    interval = math.min(interval, s.max_poll_interval) / math.max(1, math.sqrt(self.count / 10))
  elseif self.parallel then
    interval = s.poll_interval * 2 * SPARSE ^ (t._polls or 0)
  end
  t._next_poll = interval and
    (t._last_poll or t._submitted_local or (now - interval)) + math.min(interval, s.max_poll_interval)
end

-- max_poll_interval is the longest a tracked task goes without a question, whatever its lane
-- planned (a run time learned wrong, a queue waiting for news): the ask is brought forward, and
-- marked `_capped` (such an ask is not expected to find the task ended: the scheduler may ask it
-- through a task list with others). Capped asks are rounded down to a grid of a quarter of
-- max_poll_interval, so that tasks submitted close together fall due together and share a list.
local function cap(t, now, s)
  local since = t._last_poll or t._submitted_local or t._tracked_since
  if not since then
    t._tracked_since = now
    since = now
  end
  t._capped = nil
  if not t._next_poll or t._next_poll > since + s.max_poll_interval then
    local grid = s.max_poll_interval / 4
    t._next_poll = math.floor((since + s.max_poll_interval) / grid) * grid
    t._capped = true
  end
end

-- Has the lane's picture moved since its last whole plan, enough that every task's ask moves?
-- Small drifts are let be: an ask planned with a run time 2 % off, or a slack a quarter off, is
-- still close to the task's end, and replanning every task on each answer costs O(tasks).
local function drifted(self, d, wait)
  local p = self.planned
  if not p then return true end
  local tol = 0.02 * d + 0.005
  local slack, pslack = self.slack or margin(d), p.slack
  return math.abs(d - p.d) > tol or math.abs(wait - p.wait) > tol
    or math.abs(slack - pslack) > 0.25 * pslack + 0.002
end

--- Sets `_next_poll` (local clock) for the lane's tasks that need it; nil means "not now: wait for
--- news". `s` holds poll_interval and max_poll_interval. A task sent for its result
--- (`_fetch`) keeps the ask it was given; one in flight is replanned by its answer.
function Lane:plan(now, s)
  local d = self:duration()
  local wait = self:start_delay()
  -- known: each task on its own; queue: each after the one before; unknown: by rank (heads)
  local mode = not d and "unknown" or self.parallel == false and "queue" or "known"
  local whole = mode == "queue" or mode ~= self.planned_mode or self.parallel ~= self.planned_parallel
    or (mode == "known" and drifted(self, d, wait))
  if whole then
    self:plan_all(now, s, d, wait)
    self.planned_mode, self.planned_parallel = mode, self.parallel
    self.planned = d and { d = d, wait = wait, slack = self.slack or margin(d) } or nil
  else
    local touched = self.touched
    if mode == "unknown" then -- the heads' asks depend on how many wait behind them
      local heads, rank = self.parallel == nil and 2 or 1, 0
      for _, t in ipairs(self.live) do
        if self.members[t] then
          rank = rank + 1
          if rank > heads then break end
          touched[t] = rank
        end
      end
    end
    for t, rank in pairs(touched) do
      if self.members[t] and not t._inflight and not t._fetch then
        if mode == "known" then
          plan_known(self, t, now, s, d, wait)
        else
          plan_unknown(self, t, rank == true and math.huge or rank, now, s)
        end
        cap(t, now, s)
        enqueue(self, t)
      end
    end
  end
  self.touched = {}
  self:update_due()
end

-- Plans every task of the lane, in order, into a new heap.
function Lane:plan_all(now, s, d, wait)
  if self.removed > 0 then self:compact() end
  self.heap = {}
  local previous_end = self.last_end_local -- in a queue: (expected) end of the task before
  for rank, t in ipairs(self.live) do
    t._heaped = nil
    if t._inflight then -- luacheck: ignore 542
      -- its answer will replan
    elseif t._fetch then
      t._next_poll = t._next_poll or now
      enqueue(self, t)
    elseif d then
      previous_end = plan_known(self, t, now, s, d, wait, previous_end)
      cap(t, now, s)
      enqueue(self, t)
    else
      plan_unknown(self, t, rank, now, s)
      cap(t, now, s)
      enqueue(self, t)
    end
  end
end

--- Sets when `t` is asked next, outside a plan (a task list said it ended: fetch it now).
function Lane:ask_at(t, at)
  t._next_poll = at
  if self.members[t] then enqueue(self, t) end
  self:update_due()
end

--- Recomputes `next_due`, the earliest time any of the lane's tasks wants asking (nil: none), so
--- that a step looks inside only the lanes that have something due.
function Lane:update_due()
  local heap = self.heap
  while heap[1] and not fresh(self, heap[1]) do
    local e = heap_pop(heap)
    if e.task._heaped == e.at then e.task._heaped = nil end
  end
  self.next_due = heap[1] and heap[1].at
end

--- Takes out the tasks due by `ahead` (their asks leave the heap): the caller asks them all.
function Lane:take_due(ahead)
  local heap, due = self.heap, {}
  while heap[1] and heap[1].at <= ahead do
    local e = heap_pop(heap)
    local t = e.task
    if t._heaped == e.at then t._heaped = nil end
    if fresh(self, e) and not due[t] then
      due[t] = true
      due[#due + 1] = t
    end
  end
  for _, t in ipairs(due) do due[t] = nil end
  return due
end

return schedule
