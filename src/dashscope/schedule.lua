-- When to ask the service about each task: polls go where news is likely.
--
-- Tasks are grouped in lanes, one per model. A lane learns from the answers it gets:
--   * how long a task of this model runs (end_time - scheduled_time of SUCCEEDED tasks, both in
--     the service's clock, so clock skew cancels out), as a median of the recent ones;
--   * whether the service runs this model's tasks one at a time (protocol.md §10: it queues the
--     rest) or in parallel: a task seen PENDING while another of ours runs means a queue; a task
--     seen running while another of ours runs means parallel;
--   * how the service's clock maps onto ours (the submit answer's arrival against submit_time).
-- With a duration known, each task is asked once, just after its expected end (its own start
-- when seen, else its submit for a parallel lane, else its predecessor's expected end in a queue),
-- then again on a short, growing step if it was not done yet. Without one, only the lane's head
-- (and one probe behind it, until the lane's kind is known) is asked, on a geometric schedule from
-- poll_interval to max_poll_interval; the tasks queued behind wait for news.
local schedule = {}

local Lane = {}
Lane.__index = Lane

local RUNNING = { ["PRE-PROCESSING"] = true, RUNNING = true, ["POST-PROCESSING"] = true }
local GROWTH = 1.5     -- geometric schedule factor while the duration is unknown
local SPARSE = 3       -- the same for tasks behind the head of a parallel lane
local KEEP = 16        -- durations remembered per lane

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
    base = os.time { year = tonumber(y), month = tonumber(mo), day = tonumber(d),
                     hour = tonumber(h), min = 0, sec = 0, isdst = false } or false
    if hours_kept > 64 then hours, hours_kept = {}, 0 end
    hours[day_hour], hours_kept = base, hours_kept + 1
  end
  if not base then return nil end
  return base + tonumber(mi) * 60 + tonumber(s) + (frac ~= "" and tonumber(frac) / 10 ^ #frac or 0)
end

function schedule.lane(model)
  -- durations: run times; waits: submit to start when nothing was queued ahead; slack: how
  -- long after the expected end a task is asked (grows when asked too early, shrinks otherwise)
  return setmetatable({ model = model, durations = {}, waits = {}, live = {}, parallel = nil,
                        slack = nil }, Lane)
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
end

function Lane:remove(task)
  for i, t in ipairs(self.live) do
    if t == task then
      table.remove(self.live, i)
      return
    end
  end
end

-- Is another live task of the lane, besides `task`, known to be running?
local function other_running(lane, task)
  for _, t in ipairs(lane.live) do
    if t ~= task and RUNNING[t._status] then return true end
  end
  return false
end

--- Learns from one query answer's output for `task` (its status already applied).
--- `clock` is the client's clock mapping { offset = local - service }.
function Lane:observe(task, out, clock)
  local submit = schedule.parse_time(out.submit_time)
  if submit and task._submitted_local then
    local offset = task._submitted_local - submit
    if not clock.offset or offset < clock.offset then clock.offset = offset end
  end
  local started = schedule.parse_time(out.scheduled_time)
  if started and clock.offset then
    task._started_local = started + clock.offset
  end
  local status = out.task_status
  if self.parallel == nil then
    if RUNNING[status] and other_running(self, task) then
      self.parallel = true
    elseif status == "PENDING" and other_running(self, task) then
      self.parallel = false
    end
  end
  local ended = schedule.parse_time(out.end_time)
  if ended and clock.offset then
    self.last_end_local = math.max(self.last_end_local or 0, ended + clock.offset)
  end
  if status == "SUCCEEDED" and started and ended and ended >= started then
    remember(self.durations, ended - started)
    self.durations_median = nil
    if submit and started >= submit and self.parallel then
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

--- Sets `_next_poll` (local clock) for every live task of the lane; nil means "not now: wait for
--- news". `s` holds poll_interval and max_poll_interval.
function Lane:plan(now, s)
  local d = self:duration()
  local wait = self:start_delay()
  local previous_end = self.last_end_local -- in a queue: (expected) end of the task before
  for rank, t in ipairs(self.live) do
    if t._inflight then
      -- its answer will replan
    elseif d then
      local start = t._started_local
      if not start then
        start = (t._submitted_local or now) + wait
        if self.parallel == false and previous_end and previous_end > start then
          start = previous_end
        end
      end
      local due = start + d + (self.slack or margin(d))
      previous_end = start + d
      t._expected_end = start + d
      if not t._submitted_local and not t._last_poll then
        due = now -- a task resumed by id: first see where it is
      elseif t._last_poll and t._last_poll >= start + d then
        -- asked at or after the expected end and not done: a short step that grows
        local step = math.max(0.05, 0.05 * d) * 2 ^ math.max(0, (t._late or 1) - 1)
        due = t._last_poll + math.min(step, s.max_poll_interval)
      end
      t._next_poll = due
    else
      -- Tasks of one model run about as long as each other: the head teaches the run time for
      -- all the others, and one probe behind it tells a queue from parallel runs. In a queue the
      -- rest cannot end before the head; running in parallel they are asked sparsely (a short
      -- input may end first).
      local heads = self.parallel == nil and 2 or 1
      local interval
      if rank <= heads or (t._last_poll == nil and t._submitted_local == nil) then
        -- the more tasks wait for the lesson, the more often it is worth asking
        interval = s.poll_interval * GROWTH ^ (t._polls or 0)
        interval = math.min(interval, s.max_poll_interval) / math.max(1, math.sqrt(#self.live / 10))
      elseif self.parallel then
        interval = s.poll_interval * 2 * SPARSE ^ (t._polls or 0)
      end
      t._next_poll = interval and
        (t._last_poll or t._submitted_local or (now - interval)) + math.min(interval, s.max_poll_interval)
    end
  end
  self:update_due()
end

--- Recomputes `next_due`, the earliest time any of the lane's tasks wants asking (nil: none), so
--- that a step looks inside only the lanes that have something due.
function Lane:update_due()
  local next_due
  for _, t in ipairs(self.live) do
    local due = not t._inflight and t._next_poll
    if due and (not next_due or due < next_due) then next_due = due end
  end
  self.next_due = next_due
end

schedule.RUNNING = RUNNING

return schedule
