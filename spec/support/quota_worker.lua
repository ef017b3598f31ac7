-- One process of a fleet that shares the account's quotas (issue 12), started by a spec (or the
-- bench's SHARED row) as a separate OS process:
--
--   lua5.4 spec/support/quota_worker.lua TAG JOBS [MODEL] [STORE]
--
-- makes a client for the local server (DASHSCOPE_TEST_BASE_URL, DASHSCOPE_TEST_API_KEY) with the
-- service's quotas (rate_limits at their default) and `quota = STORE` when STORE is given, else
-- what DASHSCOPE_QUOTA_STORE says (the client reads it itself, as any script's would); submits
-- JOBS jobs of MODEL (videoretalk by default, or liveportrait), one after another, waits for them
-- all, and prints one JSON object a line, flushed as it goes:
--   {"warning": code, "message": text, "at": clock}   each call of on_warning, when it comes
--   {"job": i, "id": task id, "status": "SUCCEEDED"}  or {"job": i, "error": code, "message": text}
--   {"done": true, "tag": TAG, "store": client:quota_store(), "start": clock, "submitted": clock,
--    "finish": clock, "user": seconds, "system": seconds, "submit_cpu": seconds, "maxrss": KiB}
-- (CPU: the process's, from its start; submit_cpu: until the last submit returned)
-- (clock: dashscope.core.now, CLOCK_MONOTONIC, one clock for every process of the host). Each
-- job's fields name TAG and its number, so the server's duplicate_submits tells two jobs from one
-- job sent twice. Reads nothing but its arguments and environment; shares nothing with the other
-- processes but the store.
local dashscope = require("dashscope")
local core = require("dashscope.core")
local cjson = require("cjson")

local tag, jobs, model, store = arg[1], tonumber(arg[2]), arg[3] or "videoretalk", arg[4]
if not tag or not jobs or (model ~= "videoretalk" and model ~= "liveportrait") then
  io.stderr:write("usage: lua5.4 spec/support/quota_worker.lua TAG JOBS [videoretalk|liveportrait] [STORE]\n")
  os.exit(2)
end

local function say(t)
  io.stdout:write(cjson.encode(t), "\n")
  io.stdout:flush()
end

local function fields(i)
  local base = ("https://example.com/quota/%s-%d"):format(tag, i)
  if model == "liveportrait" then
    return { image_url = base .. ".png", audio_url = base .. ".wav" }
  end
  return { video_url = base .. ".mp4", audio_url = base .. ".wav" }
end

local client = dashscope.new {
  api_key = assert(os.getenv("DASHSCOPE_TEST_API_KEY"), "run under spec/with-server"),
  base_url = assert(os.getenv("DASHSCOPE_TEST_BASE_URL"), "run under spec/with-server"),
  quota = store, -- nil: DASHSCOPE_QUOTA_STORE, as for any script
  on_warning = function(message, info)
    say { warning = info and info.code or "?", message = message, at = core.now() }
  end,
}

local start = core.now()
local tasks, numbers = {}, {}
for i = 1, jobs do
  local t, err = client[model](client, fields(i))
  if t then
    tasks[#tasks + 1], numbers[#tasks + 1] = t, i
  else
    say { job = i, error = err.code or tostring(err), message = err.message or tostring(err) }
  end
end
local submitted, submit_usage = core.now(), core.rusage()
local results, errs = client:wait_all(tasks)
for k, t in ipairs(tasks) do
  if results[k] then
    say { job = numbers[k], id = t.id, status = "SUCCEEDED" }
  else
    local err = errs[k] or {}
    say { job = numbers[k], id = t.id, error = err.code or "?", message = err.message or tostring(err) }
  end
end
local finish = core.now()
local usage = core.rusage()
say { done = true, tag = tag, store = client:quota_store(), start = start, submitted = submitted,
      finish = finish, user = usage.user, system = usage.system, maxrss = usage.maxrss,
      submit_cpu = submit_usage.user + submit_usage.system }
client:close()
