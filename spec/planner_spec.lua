-- planner.lua on its own (no server, no clock): the plan of a lane and its heap of next asks.
-- Tasks are plain tables with the status the plan reads; their plans are the lane's (plan_of).
local planner = require("dashscope.planner")
local servicetime = require("dashscope.servicetime")

local S = { poll_interval = 1, max_poll_interval = 60 }

-- A parallel lane that knows its tasks run 10 s, with n tasks submitted 0.1 s apart from 0.
local function known_lane(n)
  local lane = planner.lane("liveportrait")
  lane.learned.parallel = true
  for _ = 1, 16 do lane.learned.durations[#lane.learned.durations + 1] = 10 end
  local tasks = {}
  for i = 1, n do
    tasks[i] = { id = "t" .. i, _status = "RUNNING" }
    lane:add(tasks[i], (i - 1) * 0.1)
  end
  lane:plan(0, S)
  return lane, tasks
end

describe("a lane's plan", function()
  it("asks each task of a parallel lane just after its expected end, in time order", function()
    local lane, tasks = known_lane(50)
    for i, t in ipairs(tasks) do
      local p = lane:plan_of(t)
      assert.is_true(p.next_poll > p.expected_end and p.next_poll < p.expected_end + 0.5, t.id)
      assert.are.near(10 + (i - 1) * 0.1, p.expected_end, 1e-9)
    end
    assert.are.equal(lane:plan_of(tasks[1]).next_poll, lane.next_due)
    local due = lane:take_due(lane:plan_of(tasks[5]).next_poll)
    assert.are.same({ tasks[1], tasks[2], tasks[3], tasks[4], tasks[5] }, due)
    lane:update_due()
    assert.are.equal(lane:plan_of(tasks[6]).next_poll, lane.next_due)
  end)

  it("replans only the tasks it was told about while the lane's figures hold", function()
    local lane, tasks = known_lane(50)
    local before = {}
    for i, t in ipairs(tasks) do before[i] = lane:plan_of(t).next_poll end
    lane:plan_of(tasks[7]).last_poll, lane:plan_of(tasks[7]).late = lane:plan_of(tasks[7]).expected_end + 0.05, 1 -- asked, not done yet
    lane:plan_of(tasks[8]).last_poll = 99 -- changed, but nobody said so: not replanned
    lane:touch(tasks[7])
    lane:plan(20, S)
    for i, t in ipairs(tasks) do
      if i ~= 7 then assert.are.equal(before[i], lane:plan_of(t).next_poll, t.id) end
    end
    assert.is_true(lane:plan_of(tasks[7]).next_poll > before[7])
  end)

  it("replans every task when the run time moves", function()
    local lane, tasks = known_lane(20)
    lane:plan_of(tasks[3]).last_poll = 99 -- only a whole plan sees this
    for i = 1, #lane.learned.durations do lane.learned.durations[i] = 20 end
    lane.learned.durations_median = nil
    lane:plan(0, S)
    assert.are.near(20, lane:plan_of(tasks[1]).expected_end, 1e-9)
    assert.are.near(20 + 19 * 0.1, lane:plan_of(tasks[20]).expected_end, 1e-9)
    assert.is_true(lane:plan_of(tasks[3]).next_poll > 99)
  end)

  it("drops the asks of tasks in flight, replanned or removed, and never hands a task out twice", function()
    local lane, tasks = known_lane(10)
    lane:plan_of(tasks[1]).inflight = true
    lane:remove(tasks[2])
    lane:plan_of(tasks[3]).last_poll, lane:plan_of(tasks[3]).late = 30, 1 -- replanned later: its old ask is stale
    lane:touch(tasks[3])
    lane:plan(0, S)
    lane:ask_at(tasks[4], 0) -- a task list said it ended: fetch it now
    local due = lane:take_due(lane:plan_of(tasks[6]).next_poll)
    assert.are.same({ tasks[4], tasks[5], tasks[6] }, due)
    assert.are.same({}, lane:take_due(lane:plan_of(tasks[6]).next_poll))
  end)

  it("plans a lane still learning its run time by rank: the heads often, the rest sparsely", function()
    local lane = planner.lane("videoretalk")
    local tasks = {}
    for i = 1, 30 do
      tasks[i] = { id = "u" .. i, _status = "PENDING" }
      lane:add(tasks[i], 0)
    end
    lane:plan(0, S)
    assert.is_true(lane:plan_of(tasks[1]).next_poll <= 1 and lane:plan_of(tasks[2]).next_poll <= 1)
    -- kind unknown: only the head and one probe are asked; the rest when max_poll_interval is up
    assert.are.equal(S.max_poll_interval, lane:plan_of(tasks[3]).next_poll)
    lane.learned.parallel = true
    lane:plan(0, S)
    assert.is_true(lane:plan_of(tasks[2]).next_poll > lane:plan_of(tasks[1]).next_poll) -- parallel: one head, the rest sparse
    lane:remove(tasks[1]) -- the next task becomes the head
    lane:plan(0, S)
    assert.is_true(lane:plan_of(tasks[2]).next_poll <= 1)
  end)

  it("finds a lone task of unknown run time soon after its end: within 1.25 s or an eighth of its run", function()
    local S10 = { poll_interval = 1, max_poll_interval = 10 }
    -- the asks of a lone task submitted at 0 that keeps running: when each comes
    local function asks_until(run)
      local lane, t = planner.lane("liveportrait"), { id = "lone", _status = "RUNNING" }
      lane:add(t, 0)
      local at, n = 0, 0
      while at < run do
        lane:plan(at, S10)
        at, n = lane:plan_of(t).next_poll, n + 1
        lane:querying(t, at)
        lane:answered(t, nil, false, false, nil, at, nil)
      end
      return at - run, n
    end
    for _, run in ipairs { 2, 5, 7.3, 10, 20, 60, 300 } do
      local lag = asks_until(run)
      assert.is_true(lag <= math.min(10, math.max(1.25, run / 8)) + 1e-9, run .. " s: lag " .. lag)
    end
    local _, n5 = asks_until(5)
    assert.is_true(n5 <= 6, n5 .. " questions") -- a lone 5 s job: at most 7 requests in all
    local _, n60 = asks_until(60)
    assert.is_true(n60 <= 25, n60 .. " questions for a 60 s job")
  end)

  it("never leaves a task longer than max_poll_interval without a question, whatever it planned", function()
    local lane, tasks = known_lane(3)
    for i = 1, #lane.learned.durations do lane.learned.durations[i] = 10 * 365 * 86400 end -- learned from a liar
    lane.learned.durations_median = nil
    lane:plan_of(tasks[2]).last_poll = 5
    lane:plan(6, { poll_interval = 1, max_poll_interval = 2 })
    assert.are.equal(2, lane:plan_of(tasks[1]).next_poll) -- from its submit
    assert.are.equal(7, lane:plan_of(tasks[2]).next_poll) -- from its last question
    assert.is_true(lane:plan_of(tasks[1]).capped)
    assert.are.equal(lane:plan_of(tasks[1]).next_poll, lane.next_due)
  end)
end)

describe("a lane's lessons from the service's times", function()
  local WALL = os.time()
  local function fmt(t) return os.date("%Y-%m-%d %H:%M:%S.000", t) end

  local function answered(lane, t, clock, status, submit, started, ended, now)
    t._status = status
    lane:observe(t, { task_status = status, submit_time = submit and fmt(submit),
                      scheduled_time = started and fmt(started), end_time = ended and fmt(ended) },
                 clock, now, WALL + now)
  end

  it("believes no run time longer than the time since the submit, nor a day", function()
    local lane, clock = planner.lane("liveportrait"), servicetime.clock()
    local t = { id = "a" }
    lane:add(t, 0)
    answered(lane, t, clock, "SUCCEEDED", WALL, WALL + 1, WALL + 10 * 365 * 86400, 30)
    assert.is_nil(lane.learned:duration())
    answered(lane, t, clock, "SUCCEEDED", WALL, WALL + 1, WALL + 3000, 30) -- longer than 30 s
    assert.is_nil(lane.learned:duration())
    answered(lane, t, clock, "SUCCEEDED", WALL, WALL + 1, WALL + 21, 30)
    assert.are.equal(20, lane.learned:duration())
  end)

  it("learns its clock offset from plausible submit times only, and one liar does not move it", function()
    local lane, clock = planner.lane("liveportrait"), servicetime.clock()
    local liar = { id = "x" }
    lane:add(liar, 1)
    answered(lane, liar, clock, "PENDING", os.time { year = 9999, month = 12, day = 31, hour = 0 }, nil, nil, 2)
    assert.is_nil(clock.offset)
    for i = 1, 3 do
      local t = { id = "h" .. i }
      lane:add(t, 10 + i)
      answered(lane, t, clock, "PENDING", WALL + 10 + i, nil, nil, 20)
    end
    local honest = clock.offset
    assert.are.near(-WALL, honest, 1)
    local close = { id = "y" } -- a day off: possible, but alone
    lane:add(close, 30)
    answered(lane, close, clock, "PENDING", WALL + 30 + 86400, nil, nil, 31)
    assert.are.equal(honest, clock.offset)
  end)
end)
