-- When to ask the service about each task: polls go where news is likely.
--
-- Tasks are grouped in lanes, one per model. A lane learns from the answers it gets:
--   * how long a task of this model runs (end_time - scheduled_time of SUCCEEDED tasks, both in
--     the service's clock, so clock skew cancels out), as a median of the recent ones;
--   * whether the service runs this model's tasks one at a time (docs/protocol.md §10: it queues the
--     rest) or in parallel: a task seen PENDING while another of ours runs means a queue; a task
--     seen running while another of ours runs means parallel (in query answers, or all at once in a
--     task list's page);
--   * how the service's clock maps onto ours (servicetime.lua, from the submit answers).
-- (The figures are kept by runtimes.lua; the times a plan gives are nextask.lua's pure functions.)
-- With a duration known, each task is asked once, just after its expected end (its own start
-- when seen, else its submit for a parallel lane, else its predecessor's expected end in a queue),
-- then again on a short, growing step if it was not done yet. Without one, only the lane's head
-- (and one probe behind it, until queue or parallel is known) is asked, on a geometric schedule from
-- poll_interval to max_poll_interval whose steps are held to a small lag (nextask.lua); the tasks
-- queued behind wait for news.
--
-- Planning costs what changed, not what is in flight: in a parallel lane with a known run time a
-- task's next ask depends only on itself and the lane's figures, so an answer replans its own task
-- (all of them only when the figures have moved), and each lane keeps its next asks in a binary
-- heap (heap.lua), so finding the due tasks does not walk the lane either. Queues and lanes still
-- learning their run time are replanned whole (their asks depend on rank; they are asked rarely).
--
-- Whatever a lane planned, no tracked task goes longer than max_poll_interval without a question,
-- and the service's times are believed only when they are possible (a run longer than the time
-- since we submitted, a time days away from our clock, an end in the future): one task that lies
-- cannot stall the others of its model.
--
-- Each task's poll plan is a record this file owns (Lane:plan_of): when it was submitted and
-- last asked, how often, its expected end and next ask. Nobody else writes it; a task itself
-- keeps only what its user sees (task.lua). Lanes read a task's status, never write it.
local heap = require("dashscope.heap")
local nextask = require("dashscope.nextask")
local runtimes = require("dashscope.runtimes")
local servicetime = require("dashscope.servicetime")
local RUNNING = require("dashscope.status").RUNNING

local planner = {}

local Lane = {}
Lane.__index = Lane

local DAY = 86400      -- no run (or wait to start) is believed longer than this

function planner.lane(model)
  -- learned: the lane's figures (runtimes.lua). live: tracked tasks in submit order (may hold
  -- removed ones until compacted; members says which are in; by_id finds them); touched: tasks to
  -- replan; heap: { at, task } entries of next asks, some stale; plans: task -> its poll plan
  -- (weak: a task nobody holds takes its plan along); submitted: task -> its submit time, all
  -- that is kept of the plan of a task no longer tracked (its progress's elapsed).
  return setmetatable({ model = model, learned = runtimes.new(), live = {}, members = {}, by_id = {},
                        removed = 0, touched = {}, heap = {},
                        plans = setmetatable({}, { __mode = "k" }),
                        submitted = setmetatable({}, { __mode = "k" }) }, Lane)
end

--- The poll plan of `task` (made on first use): { submitted_local, last_poll, polls, next_poll,
--- expected_end, started_local, late, capped, fetch, inflight, heaped, offset_learned,
--- tracked_since }, times on the client's clock.
function Lane:plan_of(task)
  local p = self.plans[task]
  if not p then
    p = { polls = 0 }
    self.plans[task] = p
  end
  return p
end

-- Is heap entry `e` still the task's next ask? Stale once its task is asked, replanned or gone.
local function fresh(lane, e)
  local p = lane.plans[e.task]
  return lane.members[e.task] and not p.inflight and p.next_poll == e.at
end

-- Puts the task's next ask in the heap unless an entry already holds it.
local function enqueue(lane, t, p)
  local at = p.next_poll
  if at and p.heaped ~= at then
    heap.push(lane.heap, at, t)
    p.heaped = at
  end
end

local function pop(lane)
  local e = heap.pop(lane.heap)
  local p = lane.plans[e.task]
  if p and p.heaped == e.at then p.heaped = nil end
  return e
end

--- Starts planning `task`'s asks; `submitted` (client clock) for a task this client submitted.
function Lane:add(task, submitted)
  local p = self:plan_of(task)
  p.submitted_local = p.submitted_local or submitted or self.submitted[task]
  self.submitted[task] = nil
  self.live[#self.live + 1] = task
  self.members[task] = true
  if task.id then self.by_id[task.id] = task end
  self.count = (self.count or 0) + 1
  self.touched[task] = true
end

-- Removed tasks leave `live` in bulk (compact): removing one by one would cost a scan each. The
-- plan goes at once but for its submit time: 10,000 ended tasks held by a caller would otherwise
-- keep 3 MB of plans.
function Lane:remove(task)
  if not self.members[task] then return end
  local p = self.plans[task]
  self.plans[task] = nil
  self.submitted[task] = p and p.submitted_local
  self.members[task] = nil
  if task.id then self.by_id[task.id] = nil end
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
  if self.learned.parallel ~= false or task._status ~= "PENDING" then return nil end
  local n = 0
  for _, t in ipairs(self.live) do
    if self.members[t] and t._status == "PENDING" then
      n = n + 1
      if t == task then return n end
    end
  end
  return nil
end

--- What the plan knows of `task` at `now`: elapsed (since this client submitted it), position
--- and expected_end (seconds from now) while it is tracked and has not ended.
function Lane:progress(task, now, ended)
  local p, out = self.plans[task], {}
  local submitted = p and p.submitted_local or self.submitted[task]
  if submitted then out.elapsed = now - submitted end
  if not p then return out end
  if not ended then
    if self.members[task] then out.position = self:position(task) end
    if p.expected_end then out.expected_end = math.max(0, p.expected_end - now) end
  end
  return out
end

--- Marks `task` for replanning at the next plan (its own state changed).
function Lane:touch(task)
  self.touched[task] = true
end

--- Counts `task` as asked about at `at` (a query, or a task list that placed it).
function Lane:asked(task, at)
  local p = self:plan_of(task)
  p.polls = p.polls + 1
  p.last_poll = at
end

--- A query about `task` goes out at `at`: asked, and in flight until its answer.
function Lane:querying(task, at)
  local p = self.plans[task] or self:plan_of(task)
  p.polls, p.last_poll, p.inflight = p.polls + 1, at, true
end

-- Is another live task of the lane, besides `task`, known to be running?
local function other_running(lane, task)
  for _, t in ipairs(lane.live) do
    if t ~= task and lane.members[t] and RUNNING[t._status] then return true end
  end
  return false
end

-- Is `d` seconds a possible run (or wait) of a task planned by `p`, now? Never more than a day;
-- for a task we submitted, never more than the time since the submit (plus the answer's latency).
local function possible(p, d, now)
  if d < 0 or d > DAY then return false end
  return not p.submitted_local or d <= now - p.submitted_local + servicetime.LATENCY
end

--- Learns from one query answer's output for `task` (its status already applied). `clock` is the
--- client's servicetime clock; `now` the client's clock, `wall` the wall clock at the answer.
function Lane:observe(task, out, clock, now, wall)
  local p = self:plan_of(task)
  local submit = servicetime.plausible(out.submit_time, wall)
  if submit and p.submitted_local and not p.offset_learned then
    p.offset_learned = true -- one sample per task: a task asked often does not outvote others
    clock:learn(p.submitted_local - submit)
  end
  local started = servicetime.plausible(out.scheduled_time, wall)
  if started and clock.offset then
    p.started_local = math.min(started + clock.offset, now) -- it cannot start in the future
  end
  local status, learned = out.task_status, self.learned
  if learned.parallel == nil and (RUNNING[status] or status == "PENDING") and other_running(self, task) then
    learned:learn_parallel(RUNNING[status] == true)
  end
  local ended = servicetime.plausible(out.end_time, wall)
  if ended and clock.offset then
    learned:learn_end(math.min(ended + clock.offset, now))
  end
  if status == "SUCCEEDED" and started and ended and possible(p, ended - started, now) then
    local waited = submit and started >= submit and possible(p, started - submit, now)
    learned:learn_run(ended - started, waited and started - submit or nil)
  end
end

--- After a task list set its tasks' statuses from one snapshot: one PENDING while another runs
--- means a queue, two running mean parallel (query answers, read one by one, can hide it).
function Lane:learn_from_list()
  if self.learned.parallel ~= nil then return end
  local running, pending = 0, 0
  for _, t in ipairs(self.live) do
    local member = self.members[t]
    if member and RUNNING[t._status] then running = running + 1 end
    if member and t._status == "PENDING" then pending = pending + 1 end
  end
  if running >= 2 or (running == 1 and pending >= 1) then self.learned:learn_parallel(running >= 2) end
end

--- After an answer about `task` (`out` its output, or nil for a cancel or a task list; `failed`
--- when the query failed; `ended` when the task has): learns from it, and replans the task.
function Lane:answered(task, out, failed, ended, clock, now, wall)
  local p = self:plan_of(task)
  p.inflight = false
  if out then self:observe(task, out, clock, now, wall) end
  self:touch(task)
  if not failed and p.expected_end and p.last_poll and p.last_poll >= p.expected_end then
    if not p.late then self.learned:tune_slack(ended) end -- asked at its expected end, the first time
    p.late = (p.late or 0) + 1
  end
end

-- Plans one task (rank: its place, for a lane still learning; true when not known) and queues
-- its ask; in a queue `previous_end` is the expected end of the task before; `anchor`, an ask of
-- the lane planned anyway, where its capped ask may go (nextask.cap). Returns this one's end.
local function plan_one(self, t, rank, now, s, d, wait, previous_end, anchor)
  local p = self.plans[t]
  local due
  if d then
    due, p.expected_end = nextask.known(p, self.learned, now, s, d, wait, previous_end)
    previous_end = p.expected_end
  else
    due = nextask.unknown(p, self.learned.parallel, self.count, rank == true and math.huge or rank, now, s)
  end
  if not (p.last_poll or p.submitted_local or p.tracked_since) then p.tracked_since = now end
  p.next_poll, p.capped = nextask.cap(due, p.last_poll or p.submitted_local or p.tracked_since, s, anchor)
  enqueue(self, t, p)
  return previous_end
end

--- Sets `next_poll` (local clock) for the lane's tasks that need it; nil means "not now: wait for
--- news". `s` holds poll_interval and max_poll_interval. A task sent for its result (`fetch`)
--- keeps the ask it was given; one in flight is replanned by its answer.
function Lane:plan(now, s)
  local learned = self.learned
  local d, wait, parallel = learned:duration(), learned:start_delay(), learned.parallel
  -- known: each task on its own; queue: each after the one before; unknown: by rank (heads)
  local mode = not d and "unknown" or parallel == false and "queue" or "known"
  local whole = mode == "queue" or mode ~= self.planned_mode or parallel ~= self.planned_parallel
    or (mode == "known" and nextask.drifted(self.planned, learned, d, wait))
  if whole then
    self:plan_all(now, s, d, wait)
    self.planned_mode, self.planned_parallel = mode, parallel
    self.planned = d and { d = d, wait = wait, slack = learned:slack_for(d) } or nil
  else
    local touched = self.touched
    if mode == "unknown" then -- the heads' asks depend on how many wait behind them
      local heads, rank = parallel == nil and 2 or 1, 0
      for _, t in ipairs(self.live) do
        if self.members[t] then
          rank = rank + 1
          if rank > heads then break end
          touched[t] = rank
        end
      end
    end
    for t, rank in pairs(touched) do
      local p = self.plans[t]
      if self.members[t] and not p.inflight and not p.fetch then
        plan_one(self, t, rank, now, s, d, wait)
      end
    end
  end
  if next(self.touched) then self.touched = {} end
  self:update_due()
end

-- Plans every task of the lane, in order, into a new heap.
function Lane:plan_all(now, s, d, wait)
  if self.removed > 0 then self:compact() end
  self.heap = {}
  local previous_end = self.learned.last_end_local -- in a queue: (expected) end of the task before
  local anchor -- the first ask planned for its own sake (not capped): the head's, in a queue
  for rank, t in ipairs(self.live) do
    local p = self.plans[t]
    p.heaped = nil
    if p.inflight then -- luacheck: ignore 542
      -- its answer will replan
    elseif p.fetch then
      p.next_poll = p.next_poll or now
      enqueue(self, t, p)
    else
      previous_end = plan_one(self, t, rank, now, s, d, wait, previous_end, anchor)
      if not anchor and not p.capped then anchor = p.next_poll end
    end
  end
end

--- Sets when `t` is asked next, outside a plan (a task list said it ended, or did not place it:
--- `fetch` it, by a query of its own, at `at`).
function Lane:ask_at(t, at)
  local p = self:plan_of(t)
  p.fetch, p.inflight = true, false
  p.next_poll = at
  if self.members[t] then enqueue(self, t, p) end
  self:update_due()
end

--- Recomputes `next_due`, the earliest time any of the lane's tasks wants asking (nil: none), so
--- that a step looks inside only the lanes that have something due.
function Lane:update_due()
  local h = self.heap
  while h[1] and not fresh(self, h[1]) do pop(self) end
  self.next_due = h[1] and h[1].at
end

-- Is a task with plan `p` queried on its own when due (see split_due)? `known`: the lane knows
-- its run time.
local function alone(p, known)
  return p.fetch or (known and not p.late and not p.capped)
end

--- Takes out the tasks due by `ahead` (their asks leave the heap), stopping before the one that
--- would make more than `most` queried on their own (tasks a list may place are not counted):
--- the caller asks them all. Returns them and how many go alone.
function Lane:take_due(ahead, most)
  local h, due, alone_n = self.heap, {}, 0
  local known = self.learned:duration() ~= nil
  while h[1] and h[1].at <= ahead do
    local e, t = h[1], h[1].task
    local take = fresh(self, e) and not due[t]
    if take and alone(self.plans[t], known) then
      if alone_n >= (most or math.huge) then break end
      alone_n = alone_n + 1
    end
    pop(self)
    if take then
      due[t] = true
      due[#due + 1] = t
    end
  end
  for _, t in ipairs(due) do due[t] = nil end
  return due, alone_n
end

--- Sorts the due tasks: those to query one by one (the tasks a list said ended, and those asked at
--- their expected end for the first time: most have ended, so their query is the result fetch),
--- and those whose end is anybody's guess (run time unknown, or late) or asked early for
--- max_poll_interval's sake (capped), which a task list may place together. Returns both, and
--- how many of the second are capped.
function Lane:split_due(due)
  local one_by_one, listable, capped = {}, {}, 0
  local known = self.learned:duration() ~= nil
  for _, t in ipairs(due) do
    local p = self.plans[t]
    if alone(p, known) then
      p.fetch = nil
      one_by_one[#one_by_one + 1] = t
    else
      listable[#listable + 1] = t
      if p.capped then capped = capped + 1 end
    end
  end
  return one_by_one, listable, capped
end

--- The earliest local submit time among `tasks`, or nil when one was not submitted by this client
--- (a task list is read from a time on: it cannot place those).
function Lane:submitted_since(tasks)
  local from = math.huge
  for _, t in ipairs(tasks) do
    local submitted = self.plans[t].submitted_local
    if not submitted then return nil end
    from = math.min(from, submitted)
  end
  return from
end

--- The tracked task with this id that a task list may place now (not asked by other means at the
--- moment), or nil.
function Lane:placeable(id)
  local t = self.by_id[id]
  local p = t and self.plans[t]
  return p and not p.inflight and not p.fetch and t or nil
end

--- Marks `tasks` as asked through a task list now in flight (not asked again meanwhile).
function Lane:listing(tasks)
  for _, t in ipairs(tasks) do self.plans[t].inflight = true end
end

return planner
