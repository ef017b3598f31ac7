-- The C core on its own: one libcurl multi handle per transport, real HTTP to the local server,
-- and every lifetime path (cancel, close, collection in flight) so valgrind sees each of them.
local helper = require("spec.support.helper")
local core = require("dashscope.core")

local AUTH = "Authorization: Bearer " .. helper.KEY
local BASE = helper.BASE_URL

local function run_all(transport, requests, limit)
  local deadline = core.now() + (limit or 10)
  local function all_done()
    for _, r in ipairs(requests) do
      if not r:done() then return false end
    end
    return true
  end
  while not all_done() do
    assert(core.now() < deadline, "transfers did not finish in time")
    local _, timeout = transport:perform()
    if not all_done() then transport:wait(math.min(timeout or 0.1, 0.1)) end
  end
end

local function get(transport, path, extra)
  local spec = { method = "GET", url = BASE .. path, headers = { AUTH }, timeout = 5, connect_timeout = 2 }
  for k, v in pairs(extra or {}) do spec[k] = v end
  return transport:request(spec)
end

describe("the transport", function()
  before_each(function() helper.reset() end)

  it("runs many requests at once over a few reused connections", function()
    local t = core.new_transport()
    local requests = {}
    for i = 1, 40 do requests[i] = get(t, "/tasks/id-" .. i) end
    assert.are.equal(40, t:pending())
    run_all(t, requests)
    for _, r in ipairs(requests) do
      local resp = assert(r:response())
      assert.are.equal(200, resp.status)
      assert.truthy(resp.headers["content-type"]:find("application/json", 1, true))
      assert.truthy(resp.body:find('"UNKNOWN"', 1, true))
      r:close()
    end
    assert.are.equal(0, t:pending())
    -- a second wave reuses the connections of the first
    local again = {}
    for i = 1, 40 do again[i] = get(t, "/tasks/again-" .. i) end
    run_all(t, again)
    local stats = t:stats()
    assert.are.equal(80, stats.requests)
    assert.truthy(stats.connections <= 40, stats.connections .. " connections")
    assert.are.equal(stats.connections, helper.stats().connections)
    t:close()
  end)

  it("keeps one connection alive for requests in sequence", function()
    local t = core.new_transport()
    for i = 1, 5 do
      local r = get(t, "/tasks/seq-" .. i)
      run_all(t, { r })
      assert.are.equal(i == 1, r:response().new_connection)
    end
    assert.are.equal(1, t:stats().connections)
    assert.are.equal(1, helper.stats().connections)
    t:close()
  end)

  it("posts a body with its length", function()
    local t = core.new_transport()
    local r = t:request { method = "POST", url = BASE .. "/tasks/x/cancel", headers = { AUTH } }
    local p = t:request { method = "POST", url = BASE .. "/services/aigc/image2video/video-synthesis",
                          headers = { AUTH, "Content-Type: application/json", "X-DashScope-Async: enable" },
                          body = '{"model":"test-x","input":{}}' }
    run_all(t, { r, p })
    assert.are.equal(400, r:response().status)
    assert.are.equal(200, p:response().status)
    assert.are.equal("0", helper.requests("/cancel")[1].headers["content-length"])
    assert.are.equal('{"model":"test-x","input":{}}', helper.requests("/video-synthesis")[1].body)
    t:close()
  end)

  it("never sends a once request twice, though libcurl resends others when a reused connection dies", function()
    local function post(t, once)
      return t:request { method = "POST", url = BASE .. "/services/aigc/image2video/video-synthesis",
                         headers = { AUTH, "X-DashScope-Async: enable", "Content-Type: application/json" },
                         body = '{"model":"test-once","input":{"n":1}}', once = once }
    end
    for _, once in ipairs { false, true } do
      helper.reset()
      local t = core.new_transport()
      run_all(t, { get(t, "/tasks/warm-up") }) -- the next request reuses this connection
      helper.faults { { match = "submit", kind = "lost" } }
      local r = post(t, once)
      run_all(t, { r })
      local submits = helper.requests("/video-synthesis")
      if once then
        local resp, err = r:response()
        assert.is_nil(resp)
        assert.are.equal("recv", err.outcome)
        assert.is_true(err.sent)
        assert.truthy(err.message:find("not sent twice", 1, true), err.message)
        assert.are.equal(1, #submits)
      else
        assert.are.equal(2, #submits) -- libcurl's own resend: what once = true prevents
      end
      t:close()
    end
  end)

  it("refuses a body over max_body as too_large", function()
    local t = core.new_transport()
    local r = t:request { method = "GET", url = helper.RESULTS_URL .. "/results/none.mp4",
                          headers = {}, max_body = 10 }
    helper.faults { { match = "result", kind = "status", status = 200, body = string.rep("x", 5000) } }
    run_all(t, { r })
    local resp, err = r:response()
    assert.is_nil(resp)
    assert.are.equal("too_large", err.outcome)
    t:close()
  end)

  it("reports a refused connection as not sent, and a slow answer as a timeout that was sent", function()
    local t = core.new_transport()
    local refused = t:request { method = "GET", url = "http://127.0.0.1:9/x", headers = {}, connect_timeout = 2 }
    helper.faults { { match = "query", kind = "slow", delay = 1 } }
    local slow = get(t, "/tasks/slow", { timeout = 0.2 })
    run_all(t, { refused, slow })
    local _, e1 = refused:response()
    assert.are.equal("connect", e1.outcome)
    assert.is_false(e1.sent)
    assert.are.equal("number", type(e1.curl_code))
    local _, e2 = slow:response()
    assert.are.equal("timeout", e2.outcome)
    assert.is_true(e2.sent)
    t:close()
  end)

  it("cancels a request in flight, idempotently", function()
    local t = core.new_transport()
    helper.faults { { match = "query", kind = "slow", delay = 0.5 } }
    local r = get(t, "/tasks/cancel-me")
    t:perform()
    r:cancel()
    r:cancel()
    assert.is_true(r:done())
    local _, err = r:response()
    assert.are.equal("aborted", err.outcome)
    assert.are.equal(0, t:pending())
    r:close()
    r:close()
    t:close()
  end)

  it("lists what settled since the last settled(), once, once asked (cancels too)", function()
    local t = core.new_transport()
    local early = get(t, "/tasks/before-asking")
    run_all(t, { early })
    assert.is_nil(t:settled()) -- nobody asked before: nothing was kept
    local requests = {}
    for i = 1, 5 do requests[i] = get(t, "/tasks/settled-" .. i) end
    helper.faults { { match = "query", kind = "slow", delay = 0.5 } }
    local slow = get(t, "/tasks/cancelled")
    t:perform()
    run_all(t, requests)
    slow:cancel()
    local seen = {}
    for _, r in ipairs(assert(t:settled())) do seen[r] = (seen[r] or 0) + 1 end
    for _, r in ipairs(requests) do assert.are.equal(1, seen[r]) end
    assert.are.equal(1, seen[slow])
    assert.is_nil(seen[early])
    assert.is_nil(t:settled())
    t:close()
  end)

  it("acts on what wait() saw without polling again, and still finds answers without it", function()
    local t = core.new_transport()
    local r = get(t, "/tasks/one-poll")
    t:perform()
    while not r:done() do
      t:wait(1)  -- the answer wakes it; perform then reads the socket wait found ready
      t:perform()
    end
    assert.are.equal(200, assert(r:response()).status)
    local r2 = get(t, "/tasks/no-wait")
    local deadline = core.now() + 5
    while not r2:done() and core.now() < deadline do t:perform() end -- perform alone polls
    assert.are.equal(200, assert(r2:response()).status)
    t:close()
  end)

  it("aborts what is in flight when closed, and refuses use afterwards", function()
    local t = core.new_transport()
    helper.faults { { match = "query", kind = "slow", delay = 0.5, count = 3 } }
    local rs = { get(t, "/tasks/a"), get(t, "/tasks/b"), get(t, "/tasks/c") }
    t:perform()
    t:close()
    t:close()
    for _, r in ipairs(rs) do
      assert.is_true(r:done())
      assert.are.equal("aborted", select(2, r:response()).outcome)
    end
    assert.truthy(tostring(t):find("closed", 1, true))
    assert.truthy(helper.raises(function() t:perform() end):find("closed", 1, true))
  end)

  it("survives being dropped with transfers in flight", function()
    helper.faults { { match = "query", kind = "slow", delay = 0.3, count = 5 } }
    do
      local t = core.new_transport()
      for i = 1, 5 do get(t, "/tasks/dropped-" .. i) end
      t:perform()
    end
    collectgarbage()
    collectgarbage()
    do -- a request that outlives its transport's last reference
      local t = core.new_transport()
      local r = get(t, "/tasks/orphan")
      t = nil -- luacheck: ignore
      collectgarbage()
      assert.is_false(r:done())
      r:close()
    end
    collectgarbage()
  end)

  it("never prints header values, and refuses CR or LF in one, naming only the header", function()
    local t = core.new_transport()
    local r = get(t, "/tasks/x?secret=1")
    local text = tostring(r)
    assert.is_nil(text:find(helper.KEY, 1, true))
    assert.is_nil(text:find("secret", 1, true))
    assert.truthy(text:find("^dashscope%.Request %(GET http://127%.0%.0%.1"))
    local message = helper.raises(function()
      t:request { method = "GET", url = BASE .. "/tasks/y", headers = { "Authorization: Bearer sk-x\r\nX: y" } }
    end)
    assert.truthy(message:find("Authorization", 1, true))
    assert.is_nil(message:find("sk-x", 1, true))
    assert.truthy(helper.raises(function()
      t:request { method = "GET", url = BASE, headers = { "no colon here" } }
    end))
    assert.truthy(helper.raises(function() t:request { method = "PUT", url = BASE } end))
    local file = t:request { method = "GET", url = "file:///etc/passwd" } -- only http(s) is spoken
    run_all(t, { file })
    local resp, err = file:response()
    assert.is_nil(resp)
    assert.are.equal("other", err.outcome)
    file:close()
    r:close()
    t:close()
  end)
end)
