-- Misuse caught at the door, and a client that stays whole when its user does odd things (issue
-- 9, findings 8 and 12): a task given twice to wait_all / each_done / wait_any, client:close()
-- from inside each kind of callback, an input nested 100,000 levels deep, and tables whose
-- metatable makes them look other than they are (__pairs, __index proxies).
local helper = require("spec.support.helper")

local FAST = helper.FAST
local LONG = { durations = { pending = 0, pre_processing = 0, running = 60, post_processing = 0 },
               concurrency = 0 }

-- The fields of a job that runs a minute (the test server's magic input), whatever the durations.
local function slow_fields(i)
  return { image_url = "https://example.com/__duration=60__/f" .. i .. ".png", audio_url = "https://example.com/a.wav" }
end

local fields = helper.liveportrait_fields

-- Seconds on the client's clock.
local now = require("dashscope.core").now

describe("a task given twice", function()
  before_each(function() helper.reset(FAST) end)

  it("fills both places of wait_all, at once (not at the timeout)", function()
    local client = helper.client()
    local a = assert(client:liveportrait(fields(1)))
    local b = assert(client:liveportrait(fields(2)))
    local started = now()
    local results, errs = client:wait_all({ a, b, a }, { timeout = 60 })
    assert.is_true(now() - started < 30)
    assert.are.equal(3, results.n)
    for i = 1, 3 do
      assert.are.equal("SUCCEEDED", results[i].status)
      assert.is_nil(errs[i])
    end
    assert.are.equal(a.id, results[1].task_id)
    assert.are.equal(b.id, results[2].task_id)
    assert.are.equal(a.id, results[3].task_id)
    assert.is_false(client:busy())
  end)

  it("comes from each_done once per place, and wait_any returns it", function()
    local client = helper.client()
    local a = assert(client:liveportrait(fields(1)))
    local b = assert(client:liveportrait(fields(2)))
    local seen = {}
    for t, result, err in client:each_done({ a, a, b, a }, { timeout = 60 }) do
      assert.is_nil(err)
      assert.are.equal(t.id, result.task_id)
      seen[t] = (seen[t] or 0) + 1
    end
    assert.are.equal(3, seen[a])
    assert.are.equal(1, seen[b])
    local c = assert(client:liveportrait(fields(3)))
    local t, result = client:wait_any({ c, c }, { timeout = 60 })
    assert.are.equal(c, t)
    assert.are.equal("SUCCEEDED", result.status)
  end)

  it("gets its error in every place, and at the deadline a WaitTimeout in every place", function()
    helper.reset { durations = FAST.durations, concurrency = 0,
                   outcome = { status = "FAILED", code = "InvalidFile.Content", message = "bad" } }
    local client = helper.client()
    local a = assert(client:liveportrait(fields(1)))
    local results, errs = client:wait_all({ a, a }, { timeout = 60 })
    assert.is_nil(results[1])
    assert.is_nil(results[2])
    assert.are.equal("InvalidFile.Content", errs[1].code)
    assert.are.equal("InvalidFile.Content", errs[2].code)
    helper.reset(LONG)
    local slow = assert(client:liveportrait(fields(2)))
    local started, codes = now(), {}
    for t, result, err in client:each_done({ slow, slow }, { timeout = 0.3 }) do
      assert.are.equal(slow, t)
      assert.is_nil(result)
      codes[#codes + 1] = err.code
    end
    assert.are.same({ "WaitTimeout", "WaitTimeout" }, codes)
    assert.is_true(now() - started < 20)
  end)

  it("is fine, but an array with holes, a single task or another client's task raises", function()
    local client = helper.client()
    local a = assert(client:liveportrait(fields(1)))
    local other = helper.client():task("t-1")
    assert.truthy(helper.raises(function() client:wait_all { a, nil, a } end):find("holes", 1, true))
    assert.truthy(helper.raises(function() client:wait_all(a) end):find("pass { task }", 1, true))
    assert.truthy(helper.raises(function() client:each_done { a, other } end):find("tasks[2]", 1, true))
    assert.truthy(helper.raises(function() client:wait_any { a, n = 1 } end):find("key n", 1, true))
  end)
end)

describe("client:close() from inside a callback", function()
  before_each(function() helper.reset(LONG) end)

  -- What must hold once a callback closed the client: nothing busy, a second close harmless, and
  -- any later use a clear "closed" error.
  local function closed_cleanly(client, t)
    assert.is_false(client:busy())
    client:close()
    assert.truthy(helper.raises(function() client:liveportrait(fields(9)) end):find("closed client", 1, true))
    assert.truthy(helper.raises(function() t:wait() end):find("closed", 1, true))
    assert.truthy(helper.raises(function() client:wait_all { t } end):find("closed client", 1, true))
  end

  it("from on_status (watch) ends the wait of another task with Aborted", function()
    local client = helper.client()
    local a = assert(client:liveportrait(fields(1)))
    local b = assert(client:liveportrait(fields(2)))
    client:watch(a, { on_status = function(_, status)
      if status == "RUNNING" then client:close() end
    end })
    local result, err = b:wait { timeout = 60 }
    assert.is_nil(result)
    assert.are.equal("Aborted", err.code)
    closed_cleanly(client, b)
  end)

  it("from on_done (watch) ends wait_all with Aborted where a task had not ended", function()
    helper.reset(FAST)
    local client = helper.client()
    local quick = assert(client:liveportrait(fields(1)))
    local slow = assert(client:liveportrait(slow_fields(2)))
    client:watch(quick, { on_done = function() client:close() end })
    local results, errs = client:wait_all({ slow, quick, slow }, { timeout = 60 })
    assert.are.equal("Aborted", errs[1].code)
    assert.are.equal("Aborted", errs[3].code)
    assert.are.equal(slow.id, errs[1].task_id)
    assert.is_nil(results[1])
    closed_cleanly(client, slow)
  end)

  it("from task:wait's on_status, at its first call or a later one", function()
    local client = helper.client()
    local a = assert(client:liveportrait(fields(1)))
    local result, err = a:wait { on_status = function() client:close() end }
    assert.is_nil(result)
    assert.are.equal("Aborted", err.code)
    closed_cleanly(client, a)
    client = helper.client()
    a = assert(client:liveportrait(fields(1)))
    result, err = a:wait { timeout = 60, on_status = function(_, s) if s ~= "PENDING" then client:close() end end }
    assert.is_nil(result)
    assert.are.equal("Aborted", err.code)
    closed_cleanly(client, a)
  end)

  it("from each_done's loop body: the tasks left come with Aborted, and the loop ends", function()
    helper.reset(FAST)
    local client = helper.client()
    local quick = assert(client:liveportrait(fields(1)))
    local slow1 = assert(client:liveportrait(slow_fields(2)))
    local slow2 = assert(client:liveportrait(slow_fields(3)))
    local got = {}
    for t, result, err in client:each_done({ slow1, quick, slow2 }, { timeout = 60 }) do
      got[#got + 1] = { t = t, ok = result ~= nil, code = err and err.code }
      if #got == 1 then client:close() end
    end
    assert.are.equal(3, #got)
    assert.are.equal(quick, got[1].t)
    assert.is_true(got[1].ok)
    assert.are.same({ slow1, "Aborted" }, { got[2].t, got[2].code })
    assert.are.same({ slow2, "Aborted" }, { got[3].t, got[3].code })
    closed_cleanly(client, slow1)
  end)

  it("from a download's on_progress: nil and Aborted, no partial file", function()
    helper.reset { durations = FAST.durations, concurrency = 0, result_size = 4 * 1024 * 1024 }
    local client = helper.client()
    local t = assert(client:liveportrait(fields(1)))
    assert(t:wait())
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir " .. dir))
    local path, err = t:download(dir .. "/out.mp4", { on_progress = function() client:close() end })
    assert.is_nil(path)
    assert.are.equal("Aborted", err.code)
    local p = io.popen("ls -A " .. dir)
    local left = p:read("*a")
    p:close()
    os.execute("rm -rf " .. dir)
    assert.are.equal("", left)
    closed_cleanly(client, t)
  end)

  it("while a submit is on its way: nil and Aborted, saying the task may exist", function()
    local client = helper.client()
    local a = assert(client:liveportrait(fields(1)))
    client:watch(a, { on_status = function() client:close() end })
    helper.faults { { match = "submit", kind = "slow", delay = 2 } }
    local t, err = client:liveportrait(fields(2))
    assert.is_nil(t)
    assert.are.equal("Aborted", err.code)
    assert.truthy(err.message:find("may or may not", 1, true), err.message)
    closed_cleanly(client, a)
  end)

  it("while a poll is on its way: nil and Aborted", function()
    local client = helper.client()
    -- tasks resumed by id, unknown to the server: nothing about them changes until asked, and a's
    -- first answer (UNKNOWN) is a change of status, whenever it comes
    local a, b = client:task("t-misuse-a"), client:task("t-misuse-b")
    client:watch(a, { on_status = function() client:close() end })
    -- b's query is held back; a's, answered at once, runs the callback
    helper.faults { { match = "query", path = "/tasks/" .. b.id, kind = "slow", delay = 2, count = 1 } }
    local status, err = b:poll()
    assert.is_nil(status)
    assert.are.equal("Aborted", err.code)
    closed_cleanly(client, b)
  end)
end)

describe("client:close() from a callback, under an event loop driver (dashscope.uv)", function()
  before_each(function() helper.reset(FAST) end)

  it("leaves the driver idle: no handle, no timer, no error", function()
    local uv = { polls = {} }
    function uv.new_socket_poll(fd)
      local h = {}
      function h.start() uv.polls[fd] = h end
      function h.stop() end
      function h.close() uv.polls[fd] = nil end
      return h
    end
    function uv.new_timer()
      local t = {}
      function t.start(_, ms) t.ms = ms end
      function t.stop() t.ms = nil end
      function t.close() end
      uv.timer = t
      return t
    end
    local client = helper.client()
    local reported = {}
    local driver = require("dashscope.uv").attach(client, uv, { on_error = function(e) reported[#reported + 1] = e end })
    local a = assert(client:liveportrait(fields(1)))
    local b = assert(client:liveportrait(slow_fields(2)))
    client:watch(a, { on_done = function() client:close() end })
    local result, err = b:wait { timeout = 60 }
    assert.is_nil(result)
    assert.are.equal("Aborted", err.code)
    assert.are.same({}, reported)
    assert.is_nil(next(uv.polls))
    assert.is_nil(uv.timer.ms)
    driver:detach()
  end)
end)

describe("an input", function()
  before_each(function() helper.reset(FAST) end)

  it("nested 100,000 levels deep is refused at once, naming the path, and nothing is sent", function()
    local client = helper.client()
    local deep = {}
    for _ = 1, 100000 do deep = { a = deep } end
    local msg = helper.raises(function() client:submit("test-model", { x = deep }) end)
    assert.truthy(msg:find("submit: input.x.a.a", 1, true), msg)
    assert.truthy(msg:find("nested deeper than 100 levels", 1, true), msg)
    msg = helper.raises(function() client:submit("test-model", { x = 1 }, { p = { deep } }) end)
    assert.truthy(msg:find("parameters.p[1].a", 1, true), msg)
    assert.are.equal(0, #helper.requests("/services/"))
    -- nesting within the bound goes out as it is
    local ok = { leaf = true }
    for _ = 1, 90 do ok = { a = ok } end
    local t = assert(client:submit("test-model", { x = ok }))
    assert.is_string(t.id)
  end)

  it("with a __pairs or __index proxy is refused (it would be sent as {}); a plain metatable is fine", function()
    local client = helper.client()
    local data = { a = 1 }
    local proxy = setmetatable({}, { __pairs = function() return next, data, nil end, __index = data })
    local msg = helper.raises(function() client:submit("test-model", { x = proxy }) end)
    assert.truthy(msg:find("input.x has a metatable with __index; pass a plain table", 1, true), msg)
    local only_pairs = setmetatable({}, { __pairs = function() return next, data, nil end })
    msg = helper.raises(function() client:submit("test-model", { y = { only_pairs } }) end)
    assert.truthy(msg:find("input.y[1] has a metatable with __pairs", 1, true), msg)
    local hidden = setmetatable({}, { __index = data, __metatable = "locked" })
    msg = helper.raises(function() client:submit("test-model", { z = hidden }) end)
    assert.truthy(msg:find("input.z has a metatable", 1, true), msg)
    assert.are.equal(0, #helper.requests("/services/"))
    local labelled = setmetatable({ b = 2 }, { __tostring = function() return "labelled" end })
    assert(client:submit("test-model", { x = labelled }))
    local sent = helper.requests("/services/")[1].json
    assert.are.same({ x = { b = 2 } }, sent.input)
  end)

  it("with an array that has holes is refused: JSON cannot skip an index", function()
    local client = helper.client()
    local msg = helper.raises(function() client:submit("test-model", { x = { 1, nil, 3 } }) end)
    assert.truthy(msg:find("input.x is an array with holes", 1, true), msg)
  end)
end)

describe("task:outcome()", function()
  before_each(function() helper.reset(FAST) end)

  it("is nil (and no error) before the end, then the result or the error of each way to end", function()
    local client = helper.client()
    local t = assert(client:liveportrait(slow_fields(1)))
    assert.is_nil((t:outcome()))
    assert.is_nil(select(2, t:outcome()))
    -- a client of its own for the rest: the one-shot fault below must meet t-failed's query, not
    -- one the first client's scheduler sends for t (valgrind slows things enough for that)
    client:close()
    client = helper.client()
    local ok = assert(client:liveportrait(fields(2)))
    assert(ok:wait())
    assert.are.equal(ok:result(), (ok:outcome()))
    helper.faults { { match = "query", kind = "status", status = 200, content_type = "application/json",
      body = '{"output":{"task_id":"t-failed","task_status":"FAILED"}}' } }
    local failed = client:task("t-failed")
    assert.are.equal("FAILED", failed:poll())
    local _, err = failed:outcome()
    assert.are.equal("TaskFailed", err.code)
    assert.are.equal("t-failed", err.task_id)
    local unknown = client:task("no-such-task")
    assert.are.equal("UNKNOWN", unknown:poll())
    assert.are.equal("TaskUnknown", select(2, unknown:outcome()).code)
    helper.reset { durations = { pending = 60 }, concurrency = 0 }
    local pending = assert(client:liveportrait(fields(3)))
    assert(pending:cancel())
    assert.are.equal("TaskCanceled", select(2, pending:outcome()).code)
  end)
end)
