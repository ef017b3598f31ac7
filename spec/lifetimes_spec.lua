-- Lifetimes, attacked: a client collected with transfers in flight, a task used after its client
-- closed, a user callback that raises, and a Lua state closed mid-transfer. None may crash the
-- host or leak (make valgrind and make asan run this file too).
local helper = require("spec.support.helper")

local LUA = os.getenv("LUA") or "lua5.4"
local SLOW = { durations = { pending = 0, pre_processing = 0, running = 0.05, post_processing = 0 },
               concurrency = 0 }

local fields = helper.liveportrait_fields

describe("lifetimes", function()
  before_each(function() helper.reset(SLOW) end)

  it("let a client with transfers in flight be collected", function()
    do
      local client = helper.client()
      for i = 1, 5 do client:watch(assert(client:liveportrait(fields(i))), {}) end
      helper.faults { { match = "query", kind = "slow", delay = 0.3, count = 5 } }
      client:step() -- status queries on the wire, answers pending
    end
    collectgarbage()
    collectgarbage()
    -- the process goes on, and a new client works
    local t = assert(helper.client():liveportrait(fields(9)))
    assert(t:wait())
  end)

  it("raise a clear error for a task or client used after close, and close twice safely", function()
    local client = helper.client()
    local t = assert(client:liveportrait(fields(1)))
    client:close()
    client:close()
    for _, call in ipairs {
      function() t:poll() end, function() t:wait() end, function() t:cancel() end,
      function() t:download(os.tmpname()) end, function() client:liveportrait(fields(2)) end,
      function() client:wait_all { t } end, function() client:step() end, function() client:tasks() end,
    } do
      assert.truthy(helper.raises(call):find("closed", 1, true))
    end
    assert.are.equal(t.id, t.id) -- the handle itself stays readable
    assert.is_string(t:status())
  end)

  it("keep the client consistent when a user callback raises", function()
    local client = helper.client()
    local a = assert(client:liveportrait(fields(1)))
    local b = assert(client:liveportrait(fields(2)))
    local boom = 0
    client:watch(a, { on_done = function() boom = boom + 1; error("user callback failed") end })
    local ok, err = pcall(function() client:wait_all { a, b } end)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("user callback failed", 1, true))
    assert.are.equal(1, boom)
    -- the error surfaced once; every task still finishes
    local results = client:wait_all { a, b }
    assert.are.equal("SUCCEEDED", results[1].status)
    assert.are.equal("SUCCEEDED", results[2].status)
  end)

  it("survive the Lua state being closed mid-transfer", function()
    local script = [[
      local dashscope = require("dashscope")
      local c = dashscope.new { rate_limits = false }
      for i = 1, 5 do c:watch(assert(c:liveportrait { image_url = "https://e.com/" .. i .. ".png",
                                                       audio_url = "https://e.com/a.wav" }), {}) end
      c:step()
      io.write("in flight\n")
      os.exit(0, true) -- closes the state: every finalizer runs with transfers on the wire
    ]]
    helper.faults { { match = "query", kind = "slow", delay = 0.5, count = 5 } }
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write(script)
    f:close()
    local p = assert(io.popen(("DASHSCOPE_HTTP_BASE_URL=%s DASHSCOPE_API_KEY=%s %s %s 2>&1; echo \"exit status $?\""):format(
      helper.BASE_URL, helper.KEY, LUA, path)))
    local out = p:read("*a")
    p:close()
    os.remove(path)
    assert.truthy(out:find("in flight", 1, true), out)
    assert.truthy(out:find("exit status 0", 1, true), out)
  end)
end)
