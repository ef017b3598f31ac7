-- dashscope.uv against a recording stand-in for luv (the real one is exercised by nvim_spec under
-- LuaJIT): the driver's handles follow the client's sockets, also after a blocking call.
local helper = require("spec.support.helper")
local driver_mod = require("dashscope.uv")

-- A luv look-alike that only records: poll handles by fd, one timer.
local function fake_uv()
  local uv = { polls = {}, started = 0 }
  function uv.new_socket_poll(fd)
    local h = { fd = fd, active = false }
    function h:start(mode) self.active, self.mode = true, mode; uv.started = uv.started + 1 end
    function h:stop() self.active = false end
    function h:close() self.closed = true; uv.polls[fd] = nil end
    uv.polls[fd] = h
    return h
  end
  function uv.new_timer()
    local t = {}
    function t:start(ms, _, cb) self.ms, self.cb = ms, cb; uv.armed = (uv.armed or 0) + 1 end
    function t:stop() self.ms = nil end
    function t:close() self.closed = true end
    uv.timer = t
    return t
  end
  return uv
end

describe("dashscope.uv", function()
  it("re-syncs its handles when a blocking call returns, and stops them on detach", function()
    helper.reset { durations = { running = 0.2 } }
    local client = helper.client()
    local uv = fake_uv()
    local driver = driver_mod.attach(client, uv)
    local before = uv.armed or 0
    local task = assert(client:liveportrait { image_url = "https://e.com/f.png", audio_url = "https://e.com/a.wav" })
    assert.truthy((uv.armed or 0) > before, "no re-sync after the submit")
    -- the timer is armed for the task's first status query
    assert.truthy(uv.timer.ms ~= nil)
    for fd in pairs(client:sockets()) do
      assert.truthy(uv.polls[fd] and uv.polls[fd].active, "fd " .. fd .. " not watched")
    end
    driver:detach()
    assert.truthy(uv.timer.closed)
    assert.is_nil(next(uv.polls))
    assert(task:wait())
    client:close()
  end)
end)
