-- What every spec shares: the local server's address (started by spec/with-server), its control
-- API (reached with the curl command line, so the client under test never checks itself), and a
-- client set up for fast tests.
local dashscope = require("dashscope")
local json = require("cjson")

local helper = {}

helper.KEY = "sk-test-0123456789abcdef"
helper.BASE_URL = assert(os.getenv("DASHSCOPE_TEST_BASE_URL"),
  "run the specs through spec/with-server (make test) so that the local server is up")
helper.CONTROL = assert(os.getenv("DASHSCOPE_TEST_CONTROL"))
helper.UPLOAD_URL = os.getenv("DASHSCOPE_TEST_UPLOAD_URL")   -- the stand-in upload host
helper.RESULTS_URL = os.getenv("DASHSCOPE_TEST_RESULTS_URL") -- the stand-in result-file host
helper.UNDER_VALGRIND = os.getenv("DASHSCOPE_UNDER_VALGRIND") ~= nil
helper.UNDER_ASAN = os.getenv("ASAN_LUA_REAL") ~= nil -- make asan's interpreter wrapper (fuzz/asan-lua)

local function shell_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

local function integers(v)
  if type(v) == "table" then
    for k, x in pairs(v) do v[k] = integers(x) end
  elseif math.tointeger and type(v) == "number" then
    return math.tointeger(v) or v
  end
  return v
end

--- Calls the server's control API: decoded JSON answer.
function helper.control(method, path, body)
  local cmd = "curl -sS --fail -X " .. method
  if body ~= nil then
    cmd = cmd .. " -H 'Content-Type: application/json' --data-binary " .. shell_quote(json.encode(body))
  end
  local p = assert(io.popen(cmd .. " " .. shell_quote(helper.CONTROL .. path)))
  local text = p:read("*a")
  assert(p:close(), "control call failed: " .. method .. " " .. path)
  if text == "" then return nil end
  return integers(json.decode(text))
end

--- Resets the server and applies `config` (see spec/server/README.md).
function helper.reset(config)
  helper.control("POST", "/reset")
  if config then
    helper.control("POST", "/config", config)
  end
end

function helper.log()
  return helper.control("GET", "/log")
end

function helper.stats()
  return helper.control("GET", "/stats")
end

function helper.faults(list)
  helper.control("POST", "/faults", { faults = list })
end

--- The received requests whose path contains `fragment`.
function helper.requests(fragment)
  local out = {}
  for _, r in ipairs(helper.log()) do
    if r.path:find(fragment, 1, true) then out[#out + 1] = r end
  end
  return out
end

--- A client for the local server, with a fast schedule; `opts` overrides.
function helper.client(opts)
  -- The service's quotas are off here (a spec of its own checks them): with them, each emoji or
  -- videoretalk submit would wait a second.
  local o = { api_key = helper.KEY, base_url = helper.BASE_URL, poll_interval = 0.02,
              max_poll_interval = 0.05, retry_base_delay = 0.01, retry_max_delay = 0.05,
              rate_limits = false }
  for k, v in pairs(opts or {}) do o[k] = v end
  return dashscope.new(o)
end

--- Server durations that make a job end in about 0.05 s, and no queue (helper.reset(helper.FAST)).
helper.FAST = { durations = { pending = 0, pre_processing = 0, running = 0.05, post_processing = 0 },
                concurrency = 0 }

--- The fields of liveportrait job number `i` (default 1): remote URLs, unique per `i`, so that the
--- server's duplicate_submits tells two jobs from one job sent twice.
function helper.liveportrait_fields(i)
  return { image_url = "https://example.com/face-" .. (i or 1) .. ".png", audio_url = "https://example.com/a.wav" }
end

--- Replaces the server's faults by `list`, its fault draws seeded with `seed` (see spec/server/README.md).
function helper.set_faults(list, seed)
  helper.control("POST", "/faults", { clear = true, seed = seed, faults = list })
end

--- A liveportrait task of `client` that has ended SUCCEEDED.
function helper.finished_task(client)
  local t = assert(client:liveportrait(helper.liveportrait_fields()))
  assert(t:wait())
  return t
end

--- A file's whole content, or nil when it cannot be read.
function helper.read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("*a")
  f:close()
  return text
end

--- Writes `text` to `path` (raises when it cannot).
function helper.write_file(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

--- Runs `fn` and returns the error message it raised (fails if it did not raise).
function helper.raises(fn)
  local ok, err = pcall(fn)
  assert(not ok, "expected an error, but the call succeeded")
  return tostring(err)
end

helper.json = json
helper.dashscope = dashscope

return helper
