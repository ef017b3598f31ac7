-- schedule.lua on its own (no server, no clock): the plan of a lane and its heap of next asks.
-- Tasks are plain tables with the fields the plan reads.
local schedule = require("dashscope.schedule")

local S = { poll_interval = 1, max_poll_interval = 10 }

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
    assert.is_nil(tasks[3]._next_poll) -- kind unknown: only the head and one probe are asked
    lane.parallel = true
    lane:plan(0, S)
    assert.is_true(tasks[2]._next_poll > tasks[1]._next_poll) -- parallel: one head, the rest sparse
    lane:remove(tasks[1]) -- the next task becomes the head
    lane:plan(0, S)
    assert.is_true(tasks[2]._next_poll <= 1)
  end)
end)
