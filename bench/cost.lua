-- The client's own cost of one status query, in instructions: a repeatable figure (callgrind
-- counts instructions, not seconds), for work on the CPU per request of bench/README.md.
--
--   make && for n in 1 1000; do LUA_PATH='build/?.lua;;' LUA_CPATH='build/?.so;;' \
--     sh spec/with-server valgrind --tool=callgrind --callgrind-out-file=/tmp/cost-$n.out \
--     lua5.4 bench/cost.lua $n 2>&1 | grep Collected; done
--
-- instructions per query = (Collected(1000) - Collected(1)) / 999.
local dashscope = require("dashscope")
local n = tonumber(arg[1]) or 1000
local client = dashscope.new {
  api_key = assert(os.getenv("DASHSCOPE_TEST_API_KEY"), "run through spec/with-server"),
  base_url = os.getenv("DASHSCOPE_TEST_BASE_URL"),
  rate_limits = false,
}
local task = client:task("00000000-0000-0000-0000-000000000000")
for _ = 1, n do assert(task:poll()) end
client:close()
