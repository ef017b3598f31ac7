-- Many tasks on one client: waiting for all, any, each as it ends; callbacks driven by step();
-- the quotas kept; polls spent where news is likely.
local helper = require("spec.support.helper")

local IMAGE, AUDIO = "https://example.com/f.png", "https://example.com/a.wav"

local function lp(client, extra)
  return assert(client:liveportrait { image_url = IMAGE, audio_url = AUDIO .. (extra or "") })
end


describe("a client with many tasks", function()
  local client
  before_each(function()
    helper.reset { concurrency = 0, durations = { running = 0.2 } }
    client = helper.client()
  end)
  after_each(function() client:close() end)

  it("waits for all, with results in the order given and errors in place", function()
    local tasks = { lp(client), lp(client, "?__fail__"), lp(client) }
    local results, errs = client:wait_all(tasks)
    assert.are.equal(3, results.n)
    assert.are.equal(tasks[1].id, results[1].task_id)
    assert.is_nil(results[2])
    assert.are.equal("InvalidFile.Content", errs[2].code)
    assert.are.equal(tasks[3].id, results[3].task_id)
    assert.is_nil(errs[1])
  end)

  it("returns the first task to end from wait_any", function()
    local slow = lp(client, "?__duration=1.5__")
    local fast = lp(client, "?__duration=0.1__")
    local t, result, err = client:wait_any { slow, fast }
    assert.are.equal(fast, t)
    assert.are.equal("SUCCEEDED", result.status)
    assert.is_nil(err)
    assert.is_false(slow:ended())
  end)

  it("iterates tasks as they end, each once", function()
    -- Under valgrind (beside CI's fuzz harnesses, on the other core) a step can take a tenth of a
    -- second: the ends are spread four times wider there, the order asked for is the same.
    local x = helper.UNDER_VALGRIND and 4 or 1
    local function after(s) return ("?__duration=%g__"):format(s * x) end
    local tasks = { lp(client, after(0.6)), lp(client, after(0.05)), lp(client, after(0.3)) }
    local order = {}
    for t, result in client:each_done(tasks) do
      order[#order + 1] = t
      assert.are.equal("SUCCEEDED", result.status)
    end
    assert.are.same({ tasks[2], tasks[3], tasks[1] }, order)
  end)

  it("reports the tasks left at the deadline with WaitTimeout, and goes on afterwards", function()
    local tasks = { lp(client, "?__duration=0.05__"), lp(client, "?__duration=5__") }
    local seen = {}
    for t, _, err in client:each_done(tasks, { timeout = 0.5 }) do
      seen[#seen + 1] = { t, err and err.code }
    end
    assert.are.same({ { tasks[1], nil }, { tasks[2], "WaitTimeout" } }, seen)
  end)

  it("refuses what is not a task of this client", function()
    local other = helper.client()
    local foreign = other:task("abc")
    assert.truthy(helper.raises(function() client:wait_all { foreign } end):find("not a task of this client", 1, true))
    assert.truthy(helper.raises(function() client:wait_all "x" end):find("expects an array of tasks", 1, true))
    assert.truthy(helper.raises(function() client:each_done({}, { timeot = 1 }) end):find("did you mean 'timeout'", 1, true))
    other:close()
  end)

  it("runs watch callbacks from step, which never blocks", function()
    local t = lp(client)
    local statuses, finished = {}, nil
    client:watch(t, {
      on_status = function(_, s) statuses[#statuses + 1] = s end,
      on_done = function(_, result, err) finished = { result, err } end,
    })
    assert.is_true(client:busy())
    local deadline = os.time() + 10
    while not finished do
      assert.truthy(os.time() < deadline)
      local delay = client:step()
      assert.truthy(delay >= 0)
      client._transport:wait(math.min(delay, 0.05))
    end
    assert.are.equal("SUCCEEDED", finished[1].status)
    assert.are.equal("SUCCEEDED", statuses[#statuses])
    assert.is_false(client:busy())
  end)

  it("keeps polling tasks submitted earlier while later ones wait for their submit quota", function()
    local c = helper.client { rate_limits = { submit = { liveportrait = 5 } } }
    local first = lp(c)
    local tasks = { first }
    for _ = 1, 6 do tasks[#tasks + 1] = lp(c) end -- 5 per second: the 6th waits about 1 s
    -- first ended during the later submits, and was seen ending without anybody waiting on it
    assert.are.equal("SUCCEEDED", first:status())
    c:wait_all(tasks)
    c:close()
  end)
end)

describe("the scheduler", function()
  it("keeps every quota of the service, as the server counts", function()
    helper.reset { concurrency = 0, rate_limits = true, durations = { running = 0.3 } }
    local c = helper.client { rate_limits = true, poll_interval = 0.01, max_poll_interval = 0.02 }
    local tasks = {}
    for i = 1, 12 do tasks[i] = lp(c) end
    local results = c:wait_all(tasks)
    for i = 1, 12 do assert.are.equal("SUCCEEDED", results[i].status) end
    local stats = helper.stats()
    assert.truthy(stats.max_per_second.liveportrait <= 5, helper.json.encode(stats.max_per_second))
    assert.truthy(stats.max_per_second.tasks <= 20, helper.json.encode(stats.max_per_second))
    for _, r in ipairs(helper.log()) do
      assert.are_not.equal(429, r.answered)
    end
    c:close()
  end)

  it("backs off on a 429 and waits for Retry-After before the next query", function()
    helper.reset { durations = { running = 0.3 } }
    local c = helper.client { retry_max_delay = 2 } -- Retry-After is honoured up to this cap
    local t = lp(c)
    helper.faults { { match = "query", kind = "status", status = 429, code = "Throttling.RateQuota",
                      message = "Requests rate limit exceeded, please try again later.", retry_after = "1" } }
    assert(t:wait())
    local queries = helper.requests("/tasks/")
    assert.are.equal(429, queries[1].answered)
    assert.truthy(queries[2].time - queries[1].time >= 0.95, "waited " .. (queries[2].time - queries[1].time))
    c:close()
  end)

  it("asks only the head of a queue while the run time is unknown, then once per task", function()
    helper.reset { concurrency = 1, durations = { running = 0.4 } }
    -- max_poll_interval above the whole run, so that it never asks a queued task by itself
    -- its own User-Agent: only this client's requests are counted (the server is the suite's)
    local c = helper.client { poll_interval = 0.05, max_poll_interval = 5, user_agent = "spec-head-of-queue" }
    local tasks = {}
    for i = 1, 5 do tasks[i] = lp(c) end
    local results = c:wait_all(tasks)
    for i = 1, 5 do assert.are.equal("SUCCEEDED", results[i].status) end
    local mine, others = {}, 0
    for _, r in ipairs(helper.log()) do
      if (r.headers["user-agent"] or ""):find("spec-head-of-queue", 1, true) then
        mine[#mine + 1] = ("%.2f %s"):format(r.time, r.path)
      else
        others = others + 1
      end
    end
    local per_job = #mine / 5
    -- the floor is 2 (one submit, one result query); learning the first run time costs a few more
    -- the ratio depends on timing, which valgrind stretches many times over
    if not helper.UNDER_VALGRIND then
      assert.truthy(per_job <= 3.5, per_job .. " requests per job (and " .. others
        .. " from elsewhere):\n" .. table.concat(mine, "\n"))
    end
    c:close()
  end)

  it("learns that a model runs in parallel and asks each task once near its end", function()
    helper.reset { concurrency = 0, durations = { running = 0.5 } }
    local c = helper.client { poll_interval = 0.25, max_poll_interval = 1 }
    local tasks = {}
    for i = 1, 20 do tasks[i] = lp(c) end
    c:wait_all(tasks)
    local per_job = helper.stats().requests / 20
    -- the ratio depends on timing, which valgrind stretches many times over
    if not helper.UNDER_VALGRIND then
      assert.truthy(per_job <= 2.3, per_job .. " requests per job")
    end
    c:close()
  end)

  it("asks the task list which of many due tasks ended, then fetches only those", function()
    helper.reset { concurrency = 0, durations = { running = 0.15 } }
    local c = helper.client { poll_interval = 0.05, max_poll_interval = 0.4 }
    local tasks = { lp(c, "?__duration=1.2__") }
    for i = 2, 10 do tasks[i] = lp(c, i % 2 == 0 and "" or "?__duration=0.8__") end
    local results = c:wait_all(tasks)
    for i = 1, 10 do assert.are.equal("SUCCEEDED", results[i].status) end
    local lists = helper.requests("/tasks?model_name=liveportrait")
    assert.truthy(#lists >= 1, "no task list was asked")
    assert.truthy(lists[1].path:find("start_time=%d%d%d%d%d%d%d%d%d%d%d%d%d%d"), lists[1].path)
    -- every task is fetched for its result once it is known to have ended
    local per_job = helper.stats().requests / 10
    -- the ratio depends on timing, which valgrind stretches many times over
    if not helper.UNDER_VALGRIND then
      assert.truthy(per_job <= 3.5, per_job .. " requests per job")
    end
    c:close()
  end)

  it("shares a few connections among many tasks", function()
    helper.reset { concurrency = 0, durations = { running = 0.2 } }
    local c = helper.client { max_connections = 3 }
    local tasks = {}
    for i = 1, 30 do tasks[i] = lp(c) end
    c:wait_all(tasks)
    assert.truthy(helper.stats().connections <= 3, helper.stats().connections .. " connections")
    c:close()
  end)
end)
