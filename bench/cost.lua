-- The client's own cost in instructions: a repeatable figure (callgrind counts instructions, not
-- seconds), for work on the CPU per request of bench/README.md. Three measures:
--
--   query N   N status queries of one task (task:poll), one after another: the cost of a query.
--   jobs N    N liveportrait jobs in W2's shape with quotas off (server and client): submitted
--             through the public API, then client:wait_all: the cost of a job (its submit, its
--             status queries, its result). The server is set through /__control/config first:
--             every task RUNNING for --running seconds (default 2, as W2), no queue, no quotas.
--   submits N the same submits of tasks that run an hour, not awaited (the client is closed):
--             the cost of a submit, which unlike a job's does not move with timing.
--
--   make && for n in 1 1000; do LUA_PATH='build/?.lua;;' LUA_CPATH='build/?.so;;' \
--     sh spec/with-server valgrind --tool=callgrind --callgrind-out-file=/tmp/cost-$n.out \
--     lua5.4 bench/cost.lua query $n 2>&1 | grep -E 'Collected|cost:'; done
--   (the same with `jobs` or `submits` and n in 1 200 for the cost of a job or a submit)
--
-- per query (job, submit) = (Collected(N) - Collected(1)) / (N - 1). The line "cost:" gives the
-- requests the server received. A job's figure moves with its requests per job, which depend on
-- timing (callgrind runs the client some 50 times slower, and other work on the machine moves it
-- further): read it with its requests per job, take the median of a few runs.
-- By object (libcurl, libc, core.so, cjson, the interpreter): callgrind_annotate's lines summed
-- by their [object], for N and for 1, then the difference over N - 1:
--   callgrind_annotate --threshold=100 /tmp/cost-N.out | awk '/\]$/ { gsub(",", "", $1);
--     s[$NF] += $1 } END { for (o in s) print s[o], o }'
-- bench/README.md has the figures.
local dashscope = require("dashscope")
local cjson = require("cjson")

local mode, n = "query", nil
local running = 2
do
  local i = 1
  while arg[i] do
    local a = arg[i]
    if a == "query" or a == "jobs" or a == "submits" then mode = a
    elseif a == "--running" then i = i + 1 running = assert(tonumber(arg[i]), "--running SECONDS")
    else n = assert(tonumber(a), "usage: cost.lua [query|jobs|submits] [N] [--running S]") end
    i = i + 1
  end
end
n = n or (mode == "query" and 1000 or 200)
if mode == "submits" then running = 3600 end

local CONTROL = assert(os.getenv("DASHSCOPE_TEST_CONTROL"), "run through spec/with-server")

-- The server's control API, through the curl command line (outside the client under test; its
-- cost is the same whatever N, so the difference of two runs leaves it out).
local function control(method, path, body)
  local cmd = "curl -sS --fail -X " .. method
  if body then
    cmd = cmd .. " -H 'Content-Type: application/json' --data-binary '" .. cjson.encode(body) .. "'"
  end
  local p = assert(io.popen(cmd .. " '" .. CONTROL .. path .. "'"))
  local text = p:read("a")
  assert(p:close(), "control call failed: " .. method .. " " .. path)
  return text ~= "" and cjson.decode(text) or nil
end

control("POST", "/reset")
control("POST", "/config", {
  concurrency = 0, rate_limits = false,
  durations = { pending = 0, pre_processing = 0, running = running, post_processing = 0 },
})

local client = dashscope.new {
  api_key = assert(os.getenv("DASHSCOPE_TEST_API_KEY"), "run through spec/with-server"),
  base_url = os.getenv("DASHSCOPE_TEST_BASE_URL"),
  rate_limits = false,
}
local finished = 0
if mode == "query" then
  local task = client:task("00000000-0000-0000-0000-000000000000")
  for _ = 1, n do assert(task:poll()) end
  finished = n
else
  local tasks = {}
  for i = 1, n do
    tasks[i] = assert(client:liveportrait {
      image_url = string.format("https://example.com/bench/face-%d.png", i),
      audio_url = string.format("https://example.com/bench/speech-%d.wav", i),
    })
  end
  if mode == "jobs" then
    local results = client:wait_all(tasks)
    for i = 1, n do
      if results and results[i] then finished = finished + 1 end
    end
  end
end
client:close()
local stats = control("GET", "/stats")
local kinds = {}
for k, v in pairs(stats.by_kind or {}) do if v > 0 then kinds[#kinds + 1] = string.format("%s %d", k, v) end end
table.sort(kinds)
io.stderr:write(string.format("cost: %s %d: %d finished, %d requests (%s)\n", mode, n, finished,
  stats.requests, table.concat(kinds, ", ")))
