-- What the Redis quota store adds to a submit (the SHARED row's latency figure, bench/README.md),
-- run by bench/shared.lua as a process of its own against the local server with its quotas off:
--
--   lua5.4 bench/store_probe.lua REDIS_URL N
--
-- Two clients in this one process, alike but for the store: one with `quota = REDIS_URL`, one with
-- `quota = false`, both keeping a liveportrait quota so high (1000/s) that no submit ever waits for
-- its slot; N submits each, taken in turns (store, none, store, none ...) so that both see the
-- same machine (after one submit each, not counted: the first opens the connections). A submit's
-- time is from the call to its return (the task created). Prints one
-- line: {"store": [seconds...], "local": [seconds...]}.
local dashscope = require("dashscope")
local core = require("dashscope.core")
local cjson = require("cjson")

local url, n = arg[1], tonumber(arg[2])
if not url or not n then
  io.stderr:write("usage: lua5.4 bench/store_probe.lua REDIS_URL N\n")
  os.exit(2)
end

local function client(quota)
  return dashscope.new { api_key = os.getenv("DASHSCOPE_TEST_API_KEY"), base_url = os.getenv("DASHSCOPE_TEST_BASE_URL"),
    quota = quota, rate_limits = { submit = { liveportrait = 1000 }, tasks = 1000 } }
end

local clients = { store = client(url), ["local"] = client(false) }
-- one submit each first, not counted: a client's first call opens its connections (the store's
-- with SCRIPT LOAD), which a client pays once, not per submit
for which, c in pairs(clients) do
  assert(c:liveportrait { image_url = "https://example.com/probe-" .. which .. ".png", audio_url = "https://example.com/probe.wav" })
end
local times = { store = {}, ["local"] = {} }
for i = 1, 2 * n do
  local which = i % 2 == 1 and "store" or "local"
  local t0 = core.now()
  assert(clients[which]:liveportrait { image_url = ("https://example.com/probe-%d.png"):format(i),
                                       audio_url = "https://example.com/probe.wav" })
  times[which][#times[which] + 1] = core.now() - t0
end
assert(clients.store:quota_store().up, "the store was not used")
for _, c in pairs(clients) do c:close() end
io.write(cjson.encode(times), "\n")
