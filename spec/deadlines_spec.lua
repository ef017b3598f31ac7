-- Deadlines that hold against a server that stalls or asks for patience (issue 9, findings 3, 4
-- and 7): call_timeout bounds a request in flight, Retry-After is honoured only up to
-- retry_max_delay and never past the call's deadline, and a task's lying timestamps cannot stop
-- the polling of the other tasks of its model; max_poll_interval caps the gap between two queries.
local helper = require("spec.support.helper")
local core = require("dashscope.core")

local FAST = { durations = { pending = 0, pre_processing = 0, running = 0.2, post_processing = 0 },
               concurrency = 0 }

local fields = helper.liveportrait_fields

-- Seconds a call may take past its bound on a loaded machine (valgrind stretches everything).
local MARGIN = helper.UNDER_VALGRIND and 15 or 2

local function elapsed(fn)
  local t0 = core.now()
  local a, b = fn()
  return core.now() - t0, a, b
end

describe("call_timeout", function()
  before_each(function() helper.reset(FAST) end)

  it("bounds a submit the server accepts and never answers: Timeout within the deadline, task may exist", function()
    local client = helper.client { call_timeout = 3 }
    helper.faults { { match = "submit", kind = "hang", delay = 30 } }
    local took, t, err = elapsed(function() return client:liveportrait(fields(1)) end)
    assert.is_nil(t)
    assert.are.equal("Timeout", err.code)
    assert.truthy(tostring(err):find("may or may not have been created", 1, true), tostring(err))
    assert.is_true(took >= 2.5 and took < 3 + MARGIN, "took " .. took .. " s")
    client:close()
  end)

  it("bounds a status query the server never answers", function()
    local client = helper.client { call_timeout = 3, timeout = 60 }
    local t = assert(client:liveportrait(fields(1)))
    helper.faults { { match = "query", kind = "hang", delay = 30, count = 10 } }
    local took, status, err = elapsed(function() return t:poll() end)
    assert.is_nil(status)
    assert.are.equal("Timeout", err.code)
    assert.is_true(took < 3 + MARGIN, "took " .. took .. " s")
    client:close()
  end)
end)

describe("Retry-After", function()
  before_each(function() helper.reset(FAST) end)

  it("of a day on a status query pauses the queries no longer than retry_max_delay: the task is still followed", function()
    local client = helper.client { retry_max_delay = 1 }
    local t = assert(client:liveportrait(fields(1)))
    helper.faults { { match = "query", kind = "status", status = 429, retry_after = 86400 } }
    local took, result, err = elapsed(function() return t:wait { timeout = 10 } end)
    assert.is_table(result, tostring(err))
    assert.are.equal("SUCCEEDED", result.status)
    assert.is_true(took < 1 + MARGIN + 1, "took " .. took .. " s")
    assert.are.equal(1, helper.stats().faults_applied.status)
    client:close()
  end)

  it("of a day on a status query, with default settings: wait { timeout = 10 } still returns the result", function()
    local client = helper.dashscope.new { api_key = helper.KEY, base_url = helper.BASE_URL }
    local t = assert(client:liveportrait(fields(1)))
    helper.faults { { match = "query", kind = "status", status = 429, retry_after = 86400 } }
    local result, err = t:wait { timeout = 10 }
    assert.is_table(result, tostring(err))
    assert.are.equal(1, helper.stats().faults_applied.status)
    client:close()
  end)

  it("of a day on a query does not freeze the other tasks' queries past the cap", function()
    local client = helper.client { retry_max_delay = 1 }
    local tasks = {}
    for i = 1, 3 do tasks[i] = assert(client:liveportrait(fields(i))) end
    helper.faults { { match = "query", kind = "status", status = 429, retry_after = 86400 } }
    local results, errs = client:wait_all(tasks, { timeout = 10 })
    for i = 1, 3 do assert.is_table(results[i], tostring(errs[i])) end
    client:close()
  end)

  it("of a day on a submit waits retry_max_delay, then the job is created once", function()
    local client = helper.client { retry_max_delay = 1 }
    helper.faults { { match = "submit", kind = "status", status = 429, retry_after = 86400 } }
    local took, t, err = elapsed(function() return client:liveportrait(fields(1)) end)
    assert.is_table(t, tostring(err))
    assert.is_true(took < 1 + MARGIN, "took " .. took .. " s")
    assert.are.equal(1, helper.stats().submits)
    client:close()
  end)

  it("of a day on a submit is never waited past call_timeout", function()
    local client = helper.client { retry_max_delay = 20, call_timeout = 3 }
    helper.faults { { match = "submit", kind = "status", status = 429, retry_after = 86400, count = 100 } }
    local took, t, err = elapsed(function() return client:liveportrait(fields(1)) end)
    assert.is_nil(t)
    assert.are.equal(429, err.status)
    assert.is_true(took < 3 + MARGIN, "took " .. took .. " s")
    assert.are.equal(0, helper.stats().submits)
    client:close()
  end)
end)

-- The server log's times of the requests that asked about `id` (its query, or a list page of
-- its model), in order.
local function asked_times(log, id, model)
  local times = {}
  for _, r in ipairs(log) do
    if r.path:find("/tasks/" .. id, 1, true)
       or (r.path:find("/tasks?", 1, true) and r.path:find("model_name=" .. model, 1, true)) then
      times[#times + 1] = r.time
    end
  end
  return times
end

describe("lying timestamps", function()
  local MAX = 1

  before_each(function()
    helper.reset { durations = { pending = 0, pre_processing = 0, running = 1.5, post_processing = 0 },
                   concurrency = 0 }
  end)

  local function run(lie)
    local client = helper.client { poll_interval = 0.1, max_poll_interval = MAX }
    local liar = assert(client:liveportrait {
      image_url = "https://example.com/__lie=" .. lie .. "__.png", audio_url = "https://example.com/__duration=0.1__.wav" })
    local honest = {}
    for i = 1, 4 do honest[i] = assert(client:liveportrait(fields(i))) end
    local started = core.now()
    assert.is_table(liar:wait { timeout = 10 })
    local results, errs = client:wait_all(honest, { timeout = 20 })
    local took = core.now() - started
    for i = 1, 4 do
      assert.is_table(results[i], tostring(errs[i]))
      assert.are.equal("SUCCEEDED", results[i].status)
    end
    assert.is_true(took < 1.5 + MAX + MARGIN, "the honest tasks took " .. took .. " s")
    -- No tracked task was left longer than max_poll_interval without a question (+ a margin for
    -- a loaded machine), from its first query to its end.
    local log = helper.log()
    for _, t in ipairs(honest) do
      local times = asked_times(log, t.id, "liveportrait")
      assert.is_true(#times > 0)
      for i = 2, #times do
        assert.is_true(times[i] - times[i - 1] <= MAX + (helper.UNDER_VALGRIND and 5 or 0.5),
          ("task %s: %.2f s between two queries"):format(t.id, times[i] - times[i - 1]))
      end
    end
    client:close()
  end

  it("a task whose answers claim a ten-year run time does not stall the other tasks of its model", function()
    run("run")
  end)

  it("a task whose answers claim a submit_time in year 9999 does not stall the other tasks of its model", function()
    run("submit")
  end)

  it("a task whose answers claim a scheduled_time in year 9999 does not stall the other tasks of its model", function()
    run("scheduled")
  end)
end)
