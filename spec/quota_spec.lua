-- Quotas shared through a store (the `quota` option, src/dashscope/quota.lua), in one process: the
-- option's rules, two clients keeping one account's quota through one shared dict, fairness between
-- a client with a burst and one with a single question, and failing open. The dict here is a Lua
-- table with the methods of an OpenResty shared dict (add, get, set, delete), standing for
-- ngx.shared.NAME; spec/openresty_spec.lua runs the real one in nginx's workers, and
-- spec/quota_redis_spec.lua the Redis store across processes.
local helper = require("spec.support.helper")
local config = require("dashscope.config")
local core = require("dashscope.core")
local dashscope = helper.dashscope

-- A dict with the shared dict's methods; `broken` makes every add fail as a full dict does.
local function shared_dict()
  local dict = { data = {}, broken = false }
  function dict:add(k, v)
    if self.broken then return false, "no memory" end
    if self.data[k] ~= nil then return false, "exists" end
    self.data[k] = v
    return true
  end
  function dict:get(k) return self.data[k] end
  function dict:set(k, v) self.data[k] = v return true end
  function dict:delete(k) self.data[k] = nil end
  return dict
end

-- A client with the service's quotas kept (helper.client turns them off) over `dict`.
local function client(dict, opts)
  local o = { rate_limits = true, quota = dict }
  for k, v in pairs(opts or {}) do o[k] = v end
  return helper.client(o)
end


local function refused(opts, fragment)
  local ok, err = pcall(dashscope.new, opts)
  assert.is_false(ok)
  assert.truthy(dashscope.is_misuse(err), tostring(err))
  local msg = tostring(err)
  assert.truthy(msg:find("field 'quota'", 1, true) or msg:find("DASHSCOPE_QUOTA_STORE", 1, true), msg)
  if fragment then assert.truthy(msg:find(fragment, 1, true), msg) end
  return msg
end

describe("the quota option", function()
  local base = { api_key = helper.KEY, base_url = helper.BASE_URL }
  local function with(q)
    local o = { quota = q }
    for k, v in pairs(base) do o[k] = v end
    return o
  end

  it("refuses what is neither a Redis URL nor a shared dict, naming the rule, before anything is sent", function()
    helper.reset()
    refused(with("http://127.0.0.1:6379"), "Redis URL")
    refused(with("rediss://127.0.0.1:6379"), "not supported")
    refused(with("redis://127.0.0.1:0"), "port from 1 to 65535")
    refused(with("redis://127.0.0.1:70000/0"), "port")
    refused(with("redis://127.0.0.1:6379/db"), "/db")
    refused(with("redis://127.0.0.1:6379/0?prefix=a b"), "spaces")
    refused(with("redis://127.0.0.1:6379/0?user=x"), "prefix")
    refused(with(42), "must be false")
    refused(with({ get = function() end }), "no add method")
    assert.are.equal(0, #helper.log())
  end)

  it("never quotes a password given in the URL", function()
    local msg = refused(with("redis://:hunter2-secret@127.0.0.1:99999"))
    assert.falsy(msg:find("hunter2", 1, true), msg)
  end)

  it("reads DASHSCOPE_QUOTA_STORE when the option is absent, and false keeps the quotas in the process", function()
    local env = { DASHSCOPE_API_KEY = helper.KEY, DASHSCOPE_QUOTA_STORE = "redis://10.0.0.1:6380/2?prefix=acct" }
    local getenv = function(name) return env[name] end
    assert.are.equal("redis://10.0.0.1:6380/2?prefix=acct", config.settings({}, getenv).quota)
    assert.is_false(config.settings({ quota = false }, getenv).quota)
    env.DASHSCOPE_QUOTA_STORE = ""
    assert.is_false(config.settings({}, getenv).quota)
    env.DASHSCOPE_QUOTA_STORE = "memcached://x"
    local ok, err = pcall(config.settings, {}, getenv)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("env DASHSCOPE_QUOTA_STORE", 1, true), tostring(err))
  end)

  it("keeps the quotas in the process by default, and says where they are kept", function()
    local c = helper.client { rate_limits = true }
    assert.are.same({ kind = "local", up = true }, c:quota_store())
    c:close()
    c = client(shared_dict())
    assert.are.equal("shdict", c:quota_store().kind)
    assert.is_true(c:quota_store().up)
    c:close()
  end)
end)

describe("a limiter's lead", function()
  local limiter = require("dashscope.limiter")

  it("counts a send that must open its connection first when it arrives, not when it leaves", function()
    local lim = limiter.new(1)
    assert.are.equal(0, lim:delay(100, 0.3))
    lim:take(100, 0.3) -- counted at 100.3
    -- the next send waits a window after the arrival: 100.3 + 1.05
    assert.truthy(math.abs(lim:delay(100.5, 0) - 0.85) < 1e-9, lim:delay(100.5, 0))
    lim:take(101.35, 0)
    assert.are.same({ 100.3, 101.35 }, lim.sent)
    -- a warm send after a cold one is never counted before it: the times stay in order
    local five = limiter.new(5)
    five:take(10, 0.3)
    five:take(10.01, 0)
    assert.are.same({ 10.3, 10.3 }, five.sent)
  end)
end)

describe("a shared dict as the quota store", function()
  it("keeps two clients' submits together within the account's quota: no 429", function()
    helper.reset { durations = helper.FAST.durations, concurrency = 0, rate_limits = true }
    local dict = shared_dict()
    local a, b = client(dict), client(dict)
    for i = 1, 4 do -- 8 liveportrait submits: each client alone would send its 4 at once
      assert(a:liveportrait(helper.liveportrait_fields(i)))
      assert(b:liveportrait(helper.liveportrait_fields(10 + i)))
    end
    local stats = helper.stats()
    assert.are.equal(8, stats.submits)
    assert.are.equal(8, stats.by_kind.submit, "a submit was answered 429 and sent again")
    assert.are.equal(0, stats.throttled.liveportrait or 0)
    assert.truthy(stats.max_per_second.liveportrait <= 5, helper.json.encode(stats.max_per_second))
    a:close()
    b:close()
  end)

  it("lets a client with one question through while another has a burst queued (fair)", function()
    helper.reset { rate_limits = true }
    local dict = shared_dict()
    local limits = { tasks = 10, submit = {} }
    local sleep = function() coroutine.yield() end
    local a = client(dict, { rate_limits = limits, sleep = sleep })
    local b = client(dict, { rate_limits = limits, sleep = sleep })
    local done_at, started = {}, core.now()
    local runs = {}
    for i = 1, 30 do
      runs[#runs + 1] = coroutine.create(function()
        a:task("t-burst-" .. i):poll()
        done_at["a" .. i] = core.now() - started
      end)
    end
    runs[#runs + 1] = coroutine.create(function()
      b:task("t-alone"):poll()
      done_at.b = core.now() - started
    end)
    repeat
      local alive = false
      for _, co in ipairs(runs) do
        if coroutine.status(co) == "suspended" then
          assert(coroutine.resume(co))
          alive = true
        end
      end
    until not alive
    -- 31 questions at 10/s: the burst takes three windows (the first 10 at once, the next 10 a
    -- window later, ...). The lone question, asked once the burst was queued, goes in the first
    -- window with room (it waits behind at most one reservation of the burst), not at the end.
    local last = 0
    for i = 1, 30 do last = math.max(last, done_at["a" .. i]) end
    assert.truthy(last > 3, helper.json.encode(done_at))
    assert.truthy(done_at.b < 1.5, ("the lone question waited %.2f s"):format(done_at.b))
    local stats = helper.stats()
    assert.truthy(stats.max_per_second.tasks <= 10, helper.json.encode(stats.max_per_second))
    a:close()
    b:close()
  end)

  it("fails open: a store that errs is given up at once, said once, and jobs go on under the process's own limits", function()
    helper.reset { durations = helper.FAST.durations, concurrency = 0, rate_limits = true }
    local dict = shared_dict()
    dict.broken = true
    local warnings = {}
    local c = client(dict, { on_warning = function(message, info)
      warnings[#warnings + 1] = { message = message, info = info }
    end })
    local t1 = assert(c:liveportrait(helper.liveportrait_fields(1)))
    local t2 = assert(c:liveportrait(helper.liveportrait_fields(2)))
    assert(t1:wait())
    assert(t2:wait())
    assert.are.equal(1, #warnings)
    assert.are.equal("QuotaStoreDown", warnings[1].info.code)
    assert.truthy(warnings[1].message:find("no memory", 1, true), warnings[1].message)
    assert.is_false(c:quota_store().up)
    -- the store works again: the client finds it in the background and says so, once
    dict.broken = false
    local deadline, n = core.now() + 5, 2
    while #warnings < 2 and core.now() < deadline do
      n = n + 1
      assert(c:liveportrait(helper.liveportrait_fields(n)))
      c:step()
    end
    assert.are.equal(2, #warnings)
    assert.are.equal("QuotaStoreBack", warnings[2].info.code)
    assert.is_true(c:quota_store().up)
    assert.are.equal(0, helper.stats().duplicate_submits)
    c:close()
  end)
end)
