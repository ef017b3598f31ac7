-- The calls on the wire: a client keeps a few transfers per connection in libcurl and holds the
-- rest as calls (their specs only) until a slot comes free, so that thousands of calls waiting
-- for a connection cost no easy handle or buffer each (bench/README.md, the N10000 row).
local helper = require("spec.support.helper")

describe("the calls on the wire", function()
  before_each(function() helper.reset(helper.FAST) end)

  it("stay bounded with max_connections = 2 while 50 status queries wait, and every query completes", function()
    local client = helper.client { max_connections = 2 }
    helper.faults { { match = "query", kind = "slow", delay = 0.05, count = 50 } }
    local calls, answered = {}, 0
    for i = 1, 50 do
      calls[i] = client:task("wire-" .. i):_query(function(body, err)
        assert.is_nil(err)
        assert.truthy(body)
        answered = answered + 1
      end)
    end
    local queue = client._engine.calls
    local most_waiting = queue.ready_tail - queue.ready_head + 1
    local most_on_wire = client._transport:pending()
    local deadline = os.time() + 20
    while answered < 50 do
      assert.truthy(os.time() < deadline)
      local delay = client:step()
      most_on_wire = math.max(most_on_wire, client._transport:pending())
      client._transport:wait(math.min(delay, 0.01))
    end
    assert.truthy(most_on_wire <= 4, "at most 2 per connection on the wire, saw " .. most_on_wire)
    assert.truthy(most_waiting >= 40, "the others waited as calls, saw " .. most_waiting)
    for _, call in ipairs(calls) do assert.is_true(call.done) end
    assert.are.equal(50, helper.stats().by_kind.query)
    assert.is_false(client:busy())
    client:close()
  end)

  it("end a call still waiting for a slot at its deadline, not when its turn comes", function()
    local client = helper.client { max_connections = 1, call_timeout = 0.5 }
    helper.faults { { match = "query", kind = "slow", delay = 2, count = 2 } } -- the wire stays busy
    local now = require("dashscope.core").now
    local started = now()
    for i = 1, 2 do -- two slow queries with a long deadline of their own hold both slots
      client._engine:start { method = "GET", path = "/tasks/busy-" .. i, purpose = "query", deadline = started + 10 }
    end
    local third = client:task("late"):_query() -- call_timeout 0.5: its deadline comes first
    while not third.done do
      assert.truthy(now() - started < 1.5, "the queued call outlived its deadline")
      client._transport:wait(math.min(client:step(), 0.01))
    end
    assert.are.equal("Timeout", third.err.code)
    assert.truthy(third.err.message:find("waiting for a connection", 1, true), third.err.message)
    client:close()
  end)

  it("hold the tasks that end together in their lanes, not as hundreds of calls", function()
    -- 400 submits and a slow drain take minutes under valgrind; Calls:room is Lua alone
    if helper.UNDER_VALGRIND then return pending("400 tasks: not under valgrind") end
    -- 400 tasks run 0.3 s, submitted at once; their answers come slowly (50 ms each on 2
    -- connections), so nearly all are due while the wire is busy
    helper.reset { concurrency = 0, durations = { pending = 0, pre_processing = 0, running = 0.3, post_processing = 0 } }
    local client = helper.client { max_connections = 2, poll_interval = 0.05, max_poll_interval = 30 }
    local tasks = {}
    for i = 1, 400 do tasks[i] = assert(client:liveportrait(helper.liveportrait_fields(i))) end
    helper.faults { { match = "query", kind = "slow", delay = 0.05, count = 1000 } }
    local queue, most = client._engine.calls, 0
    local done = 0
    for _, t in ipairs(tasks) do client:watch(t, { on_done = function() done = done + 1 end }) end
    local deadline = os.time() + 120
    while done < 400 do
      assert.truthy(os.time() < deadline, done .. " of 400 done")
      most = math.max(most, queue.unfinished)
      client._transport:wait(math.min(client:step(), 0.01))
    end
    assert.truthy(most <= 260, "calls not finished at once: " .. most) -- Calls:room's 256, and a list
    client:close()
  end)
end)

