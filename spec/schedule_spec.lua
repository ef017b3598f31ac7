-- schedule.lua on its own (no server, no clock): the plan of a lane and its heap of next asks.
-- Tasks are plain tables with the fields the plan reads.
local schedule = require("dashscope.schedule")

local S = { poll_interval = 1, max_poll_interval = 60 }

-- A parallel lane that knows its tasks run 10 s, with n tasks submitted 0.1 s apart from 0.
local function known_lane(n)
  local lane = schedule.lane("liveportrait")
  lane.parallel = true
  for _ = 1, 16 do lane.durations[#lane.durations + 1] = 10 end
  local tasks = {}
  for i = 1, n do
    tasks[i] = { id = "t" .. i, _submitted_local = (i - 1) * 0.1, _polls = 0, _status = "RUNNING" }
    lane:add(tasks[i])
  end
  lane:plan(0, S)
  return lane, tasks
end

describe("a lane's plan", function()
  it("asks each task of a parallel lane just after its expected end, in time order", function()
    local lane, tasks = known_lane(50)
    for i, t in ipairs(tasks) do
      assert.is_true(t._next_poll > t._expected_end and t._next_poll < t._expected_end + 0.5, t.id)
      assert.are.near(10 + (i - 1) * 0.1, t._expected_end, 1e-9)
    end
    assert.are.equal(tasks[1]._next_poll, lane.next_due)
    local due = lane:take_due(tasks[5]._next_poll)
    assert.are.same({ tasks[1], tasks[2], tasks[3], tasks[4], tasks[5] }, due)
    lane:update_due()
    assert.are.equal(tasks[6]._next_poll, lane.next_due)
  end)

  it("replans only the tasks it was told about while the lane's figures hold", function()
    local lane, tasks = known_lane(50)
    local before = {}
    for i, t in ipairs(tasks) do before[i] = t._next_poll end
    tasks[7]._last_poll, tasks[7]._late = tasks[7]._expected_end + 0.05, 1 -- asked, not done yet
    tasks[8]._last_poll = 99 -- changed, but nobody said so: not replanned
    lane:touch(tasks[7])
    lane:plan(20, S)
    for i, t in ipairs(tasks) do
      if i ~= 7 then assert.are.equal(before[i], t._next_poll, t.id) end
    end
    assert.is_true(tasks[7]._next_poll > before[7])
  end)

  it("replans every task when the run time moves", function()
    local lane, tasks = known_lane(20)
    tasks[3]._last_poll = 99 -- only a whole plan sees this
    for i = 1, #lane.durations do lane.durations[i] = 20 end
    lane.durations_median = nil
    lane:plan(0, S)
    assert.are.near(20, tasks[1]._expected_end, 1e-9)
    assert.are.near(20 + 19 * 0.1, tasks[20]._expected_end, 1e-9)
    assert.is_true(tasks[3]._next_poll > 99)
  end)

  it("drops the asks of tasks in flight, replanned or removed, and never hands a task out twice", function()
    local lane, tasks = known_lane(10)
    tasks[1]._inflight = true
    lane:remove(tasks[2])
    tasks[3]._last_poll, tasks[3]._late = 30, 1 -- replanned later: its old ask is stale
    lane:touch(tasks[3])
    lane:plan(0, S)
    lane:ask_at(tasks[4], 0) -- a task list said it ended: fetch it now
    local due = lane:take_due(tasks[6]._next_poll)
    assert.are.same({ tasks[4], tasks[5], tasks[6] }, due)
    assert.are.same({}, lane:take_due(tasks[6]._next_poll))
  end)

  it("plans a lane still learning its run time by rank: the heads often, the rest sparsely", function()
    local lane = schedule.lane("videoretalk")
    local tasks = {}
    for i = 1, 30 do
      tasks[i] = { id = "u" .. i, _submitted_local = 0, _polls = 0, _status = "PENDING" }
      lane:add(tasks[i])
    end
    lane:plan(0, S)
    assert.is_true(tasks[1]._next_poll <= 1 and tasks[2]._next_poll <= 1)
    -- kind unknown: only the head and one probe are asked; the rest when max_poll_interval is up
    assert.are.equal(S.max_poll_interval, tasks[3]._next_poll)
    lane.parallel = true
    lane:plan(0, S)
    assert.is_true(tasks[2]._next_poll > tasks[1]._next_poll) -- parallel: one head, the rest sparse
    lane:remove(tasks[1]) -- the next task becomes the head
    lane:plan(0, S)
    assert.is_true(tasks[2]._next_poll <= 1)
  end)

  it("never leaves a task longer than max_poll_interval without a question, whatever it planned", function()
    local lane, tasks = known_lane(3)
    for i = 1, #lane.durations do lane.durations[i] = 10 * 365 * 86400 end -- learned from a liar
    lane.durations_median = nil
    tasks[2]._last_poll = 5
    lane:plan(6, { poll_interval = 1, max_poll_interval = 2 })
    assert.are.equal(2, tasks[1]._next_poll) -- from its submit
    assert.are.equal(7, tasks[2]._next_poll) -- from its last question
    assert.is_true(tasks[1]._capped)
    assert.are.equal(tasks[1]._next_poll, lane.next_due)
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
    local lane, clock = schedule.lane("liveportrait"), {}
    local t = { id = "a", _submitted_local = 0, _polls = 0 }
    lane:add(t)
    answered(lane, t, clock, "SUCCEEDED", WALL, WALL + 1, WALL + 10 * 365 * 86400, 30)
    assert.is_nil(lane:duration())
    answered(lane, t, clock, "SUCCEEDED", WALL, WALL + 1, WALL + 3000, 30) -- longer than 30 s
    assert.is_nil(lane:duration())
    answered(lane, t, clock, "SUCCEEDED", WALL, WALL + 1, WALL + 21, 30)
    assert.are.equal(20, lane:duration())
  end)

  it("learns its clock offset from plausible submit times only, and one liar does not move it", function()
    local lane, clock = schedule.lane("liveportrait"), {}
    local liar = { id = "x", _submitted_local = 1, _polls = 0 }
    lane:add(liar)
    answered(lane, liar, clock, "PENDING", os.time { year = 9999, month = 12, day = 31, hour = 0 }, nil, nil, 2)
    assert.is_nil(clock.offset)
    for i = 1, 3 do
      local t = { id = "h" .. i, _submitted_local = 10 + i, _polls = 0 }
      lane:add(t)
      answered(lane, t, clock, "PENDING", WALL + 10 + i, nil, nil, 20)
    end
    local honest = clock.offset
    assert.are.near(-WALL, honest, 1)
    local close = { id = "y", _submitted_local = 30, _polls = 0 } -- a day off: possible, but alone
    lane:add(close)
    answered(lane, close, clock, "PENDING", WALL + 30 + 86400, nil, nil, 31)
    assert.are.equal(honest, clock.offset)
  end)
end)
