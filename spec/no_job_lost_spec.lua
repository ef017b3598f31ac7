-- No job lost, none paid twice (issue 9, findings 5, 11 and the keep-alive item of 12): a submit
-- answered 429 created nothing and is retried until created (whatever max_retries says); an
-- answer too big to read after the task was created says the task may exist; a keep-alive
-- connection the server closed while idle costs nothing, because the body of a submit leaves only
-- once the server has said it listens (libcurl then resends by itself what never left).
local helper = require("spec.support.helper")
local dashscope = helper.dashscope
local socket = require("socket")

local FAST = helper.FAST

local fields = helper.liveportrait_fields

local set_faults = helper.set_faults

local UNSURE = "may or may not have been created"

-- Runs `fn(i)` for i = 1..n at once, each in a coroutine of a client whose sleep yields (as
-- OpenResty's workers would): the array of what each returned (first two values).
local function together(n, fn)
  local cos, out, alive = {}, {}, n
  for i = 1, n do
    cos[i] = coroutine.create(function() out[i] = { fn(i) } end)
  end
  while alive > 0 do
    alive = 0
    local wait = 0.05
    for i = 1, n do
      if coroutine.status(cos[i]) ~= "dead" then
        local ok, delay = coroutine.resume(cos[i])
        assert(ok, delay)
        if coroutine.status(cos[i]) ~= "dead" then
          alive = alive + 1
          wait = math.min(wait, tonumber(delay) or 0)
        end
      end
    end
    if alive > 0 and wait > 0 then socket.sleep(wait) end
  end
  return out
end

describe("a submit answered 429", function()
  before_each(function() helper.reset(FAST) end)

  it("12 jobs against a server answering 429 to 75 % of submits: all created, each once, default settings", function()
    local client = dashscope.new { api_key = helper.KEY, base_url = helper.BASE_URL, sleep = coroutine.yield }
    set_faults({ { match = "submit", kind = "status", status = 429, retry_after = 1, probability = 0.75 } }, 3)
    local out = together(12, function(i) return client:liveportrait(fields(i)) end)
    local ids = {}
    for i = 1, 12 do
      local t, err = out[i][1], out[i][2]
      assert.is_table(t, tostring(err))
      assert.is_nil(ids[t.id])
      ids[t.id] = true
    end
    local stats = helper.stats()
    assert.are.equal(12, stats.submits)
    assert.are.equal(0, stats.duplicate_submits)
    assert.is_true(stats.faults_applied.status > 12 / 3) -- most first tries were refused
    client:close()
  end)

  it("is retried past max_retries until created (a detect too)", function()
    local client = helper.client { max_retries = 1 }
    set_faults { { match = "submit", kind = "status", status = 429, count = 5 },
                 { match = "detect", kind = "status", status = 429, count = 5 } }
    assert.is_table(client:liveportrait(fields(1)))
    assert.is_table(client:liveportrait_detect { image_url = "https://example.com/face.png" })
    assert.are.equal(1, helper.stats().submits)
    assert.are.equal(10, helper.stats().faults_applied.status)
    client:close()
  end)

  it("is retried no longer than call_timeout: then its error says nothing was created", function()
    local client = helper.client { call_timeout = 1 }
    set_faults { { match = "submit", kind = "status", status = 429, probability = 1 } }
    local t, err = client:liveportrait(fields(1))
    assert.is_nil(t)
    assert.are.equal(429, err.status)
    assert.is_nil(tostring(err):find(UNSURE, 1, true))
    assert.are.equal(0, helper.stats().submits)
    client:close()
  end)
end)

describe("a created task answered with an unreadable answer", function()
  before_each(function() helper.reset(FAST) end)

  it("of 10 MB: nil, err saying the task may exist", function()
    local client = helper.client()
    set_faults { { match = "submit", kind = "oversized", part = "body", size = 10 * 1024 * 1024 } }
    local t, err = client:liveportrait(fields(1))
    assert.is_nil(t)
    assert.are.equal("BadResponse", err.code)
    assert.is_false(err.retryable)
    assert.truthy(tostring(err):find(UNSURE, 1, true), tostring(err))
    assert.are.equal(1, helper.stats().submits) -- created, and not sent twice
    client:close()
  end)

  it("with more than 64 KiB of headers: nil, err saying the task may exist", function()
    local client = helper.client()
    set_faults { { match = "submit", kind = "oversized", part = "headers", size = 100 * 1024 } }
    local t, err = client:liveportrait(fields(1))
    assert.is_nil(t)
    assert.are.equal("BadResponse", err.code)
    assert.truthy(tostring(err):find(UNSURE, 1, true), tostring(err))
    assert.are.equal(1, helper.stats().submits)
    client:close()
  end)
end)

describe("a keep-alive connection the server closed while idle", function()
  before_each(function() helper.reset(FAST) end)

  it("20 submits spaced past the idle close: all created, none 'may exist', exactly 20 submits", function()
    helper.control("POST", "/config", { idle_close = 0.15 })
    -- No status query in between: each submit finds the connection the last one left idle.
    local client = helper.client { poll_interval = 60, max_poll_interval = 60 }
    for i = 1, 20 do
      local t, err = client:liveportrait(fields(i))
      assert.is_table(t, tostring(err))
      socket.sleep(0.25)
    end
    local stats = helper.stats()
    assert.are.equal(20, stats.submits)
    assert.are.equal(0, stats.duplicate_submits)
    assert.is_true(stats.idle_closed >= 10, "idle_closed " .. stats.idle_closed) -- the case happened
    client:close()
  end)
end)

describe("a submit whose connection dies before its body left", function()
  before_each(function() helper.reset(FAST) end)

  it("is retried, as nothing can have been created", function()
    local client = helper.client()
    set_faults { { match = "submit", kind = "reset", count = 2 } }
    local t, err = client:liveportrait(fields(1))
    assert.is_table(t, tostring(err))
    assert.are.equal(1, helper.stats().submits)
    assert.are.equal(2, helper.stats().faults_applied.reset)
    client:close()
  end)

  it("gives up after max_retries with an error that does not say the task may exist", function()
    local client = helper.client { max_retries = 1 }
    set_faults { { match = "submit", kind = "reset", count = 5 } }
    local t, err = client:liveportrait(fields(1))
    assert.is_nil(t)
    assert.are.equal("NetworkError", err.code)
    assert.is_nil(tostring(err):find(UNSURE, 1, true), tostring(err))
    assert.are.equal(0, helper.stats().submits)
    client:close()
  end)
end)
