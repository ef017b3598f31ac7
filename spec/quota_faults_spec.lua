-- A Redis quota store that cannot be trusted to be there, to be quick, or to answer sense: the
-- client fails open (src/dashscope/quota.lua). Whatever the store does, a submit goes out within
-- the store's answer timeout (0.25 s) plus its own quota, the user hears of it once, and nothing
-- is sent twice. The store's URL may carry a password, which no message shows.
local helper = require("spec.support.helper")
local core = require("dashscope.core")

local has_hiredis = pcall(require, "dashscope.hiredis")
local ok_support, redis = pcall(require, "spec.support.redis")

-- A loopback listener that takes connections and never answers (a store that hangs): its port,
-- and a function that stops it.
local function silent_server()
  local portfile = os.tmpname()
  local cmd = ([[python3 -c 'import socket,time,sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", 0)); s.listen(8)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
conns = []
while True:
    c, _ = s.accept(); conns.append(c)
' %s >/dev/null 2>&1 & echo $!]]):format(portfile)
  local p = assert(io.popen(cmd))
  local pid = assert(tonumber(p:read("*l")))
  p:close()
  local port
  for _ = 1, 100 do
    local f = io.open(portfile)
    port = f and tonumber(f:read("*a"))
    if f then f:close() end
    if port then break end
    os.execute("sleep 0.05")
  end
  os.remove(portfile)
  return assert(port, "the silent server did not start"), function() os.execute("kill " .. pid) end
end

local VIDEO = { video_url = "https://example.com/v.mp4", audio_url = "https://example.com/a.wav" }

-- Lua 5.4 only (also under valgrind and ASan): what is tried here is Lua over the binding, which
-- hiredis_spec runs under every interpreter; each case is seconds of 1/s submits.
local why_not = (not has_hiredis or not ok_support) and "dashscope.hiredis or spec/support/redis.lua missing"
  or (_VERSION ~= "Lua 5.4" or rawget(_G, "jit")) and "runs under Lua 5.4 only (make test TEST_LUAS=5.4)"

describe("a Redis quota store that fails", function()
  if why_not then
    it("runs with dashscope.hiredis under Lua 5.4 (skipped)", function() pending("skipped: " .. why_not) end)
    return
  end

  local warnings
  local function client(url)
    warnings = {}
    return helper.client { rate_limits = true, quota = url,
      on_warning = function(message, info) warnings[#warnings + 1] = { message = message, info = info } end }
  end

  before_each(function()
    helper.reset { durations = helper.FAST.durations, concurrency = 0, rate_limits = true }
  end)

  it("that nobody listens on: the first submit goes out at once, said once, the password never shown", function()
    local port = redis.free_port()
    local c = client(("redis://:hunter2-secret@127.0.0.1:%d/0"):format(port))
    local t0 = core.now()
    assert(c:videoretalk(VIDEO))
    assert.truthy(core.now() - t0 < 0.25, "the submit waited for a store that is not there")
    assert(c:videoretalk(VIDEO)) -- the own window: a second later
    assert.are.equal(1, #warnings)
    assert.are.equal("QuotaStoreDown", warnings[1].info.code)
    assert.falsy(warnings[1].message:find("hunter2", 1, true), warnings[1].message)
    assert.truthy(warnings[1].info.store:find("***@127.0.0.1", 1, true), warnings[1].info.store)
    assert.is_false(c:quota_store().up)
    local stats = helper.stats()
    assert.are.equal(2, stats.submits)
    assert.are.equal(0, stats.throttled.videoretalk or 0)
    c:close()
  end)

  it("that takes the connection and never answers: given up after 0.25 s, the submit goes out", function()
    local port, stop = silent_server()
    local c = client(("redis://127.0.0.1:%d"):format(port))
    local t0 = core.now()
    assert(c:videoretalk(VIDEO))
    local took = core.now() - t0
    assert.truthy(took >= 0.2 and took < 1, ("the submit took %.3f s"):format(took))
    assert.are.equal(1, #warnings)
    assert.truthy(warnings[1].message:find("no answer within 0.25 s", 1, true), warnings[1].message)
    assert(c:videoretalk(VIDEO))
    assert.are.equal(1, #warnings)
    assert.are.equal(2, helper.stats().submits)
    c:close()
    stop()
  end)

  it("that answers nonsense (a key of another kind under the quota's name): given up, jobs go on", function()
    local server = assert(redis.start())
    os.execute(("redis-cli -p %d SET dashscope:submit:videoretalk not-a-list >/dev/null"):format(server.port))
    local c = client(server.url)
    assert(c:videoretalk(VIDEO))
    assert.are.equal(1, #warnings)
    assert.truthy(warnings[1].message:find("WRONGTYPE", 1, true), warnings[1].message)
    c:close()
    server:stop()
  end)

  it("whose scripts were flushed: the reservation is sent again as EVAL, and the quota kept", function()
    local server = assert(redis.start())
    local c = client(server.url)
    assert(c:videoretalk(VIDEO))
    os.execute(("redis-cli -p %d SCRIPT FLUSH >/dev/null"):format(server.port))
    local t0 = core.now()
    assert(c:videoretalk(VIDEO))
    assert.truthy(core.now() - t0 > 0.9, "the second submit did not wait for the shared quota")
    assert.are.equal(0, #warnings)
    assert.are.equal("up", c:quota_store().state)
    c:close()
    server:stop()
  end)
end)
