-- examples/openresty as a user runs it, and as an attacker would call it: nginx with Debian's lua
-- module serves /job from the LuaJIT build, against the local server. A URL argument that is not a
-- remote URL is refused with a 400 before anything reaches the service; a good job answers 202 at
-- once with a status location that reaches its result; /ping keeps answering at once from the
-- same worker while a request waits on a job (every wait of the client yields through ngx.sleep).
local helper = require("spec.support.helper")
local now = require("dashscope.core").now

local hosts = require("spec.support.hosts")
local run, exists, read, luajit_build = hosts.run, hosts.exists, hosts.read, hosts.luajit_build

-- Why this host cannot run nginx with the lua module, or nil when it can.
local function missing()
  if not run("command -v nginx") then return "nginx is not installed (apt-get install nginx)" end
  local _, modules = run("dpkg -L libnginx-mod-http-lua")
  if not modules:find("/ngx_http_lua_module%.so") and not exists("/usr/lib/nginx/modules/ngx_http_lua_module.so") then
    return "the nginx lua module is not installed (apt-get install libnginx-mod-http-lua)"
  end
end

local function free_port()
  local ok, out = run([[python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])']])
  assert(ok, out)
  return assert(tonumber(out))
end

-- The form encoding of a query value.
local function encode(s)
  return (s:gsub("[^%w%-._]", function(c) return ("%%%02X"):format(c:byte()) end))
end

local function query(args)
  local parts = {}
  for _, kv in ipairs(args) do parts[#parts + 1] = kv[1] .. "=" .. encode(kv[2]) end
  return table.concat(parts, "&")
end

describe("examples/openresty", function()
  local reason = missing()
  local build, why
  if not reason then
    build, why = luajit_build()
    reason = why
  end
  if reason then
    -- pending() inside an it: busted's JSON output breaks on a bare pending() in a describe
    it("runs in a real host (skipped)", function() pending("skipped: " .. reason) end)
    return
  end

  -- The nginx all but one test share (its submit limit set high: the tests call /job often).
  local prefix, base, pid

  -- One request with curl to `to` (default: the shared nginx): status code, body, headers
  -- (lower-cased names), seconds; nil and curl's message when curl failed.
  local function request(method, path, to)
    local ok, out = run(("curl -sS -m 10 -X %s -D %s/out/headers -w '\\n%%{http_code} %%{time_total}' '%s%s'")
      :format(method, prefix, to or base, path))
    if not ok then return nil, out end
    local body, code, secs = out:match("^(.*)\n(%d+) ([%d.]+)$")
    local headers = {}
    for name, value in (read(prefix .. "/out/headers") or ""):gmatch("([%w%-]+):%s*([^\r\n]*)") do
      headers[name:lower()] = value
    end
    return tonumber(code), body, headers, tonumber(secs)
  end

  local function get(path) return request("GET", path) end

  local function decode(body)
    local ok, value = pcall(helper.json.decode, body)
    assert(ok, "not JSON: " .. tostring(body))
    return value
  end

  -- Starts the example through run.sh under `dir` with `env` (extra variables): its base URL and
  -- the pid of its master.
  local function start(dir, env)
    assert(os.execute("mkdir -p " .. dir))
    local port = free_port()
    local url = "http://127.0.0.1:" .. port
    -- nginx in the foreground of a background shell: run.sh execs it, so $! is its master.
    -- Without the caller's LUA_PATH/LUA_CPATH (for Lua 5.4): nginx's LuaJIT would read them.
    local p = assert(io.popen(("env -u LUA_PATH -u LUA_CPATH DASHSCOPE_HTTP_BASE_URL=%s DASHSCOPE_API_KEY=%s PREFIX=%s BUILD=%s "
      .. "%s sh examples/openresty/run.sh %d > %s/run.log 2>&1 & echo $!"):format(
      helper.BASE_URL, helper.KEY, dir .. "/nginx", build, env, port, dir)))
    local master = assert(tonumber(p:read("*l")))
    p:close()
    for _ = 1, 100 do
      if request("GET", "/ping", url) == 200 then return url, master end
      assert(run("kill -0 " .. master), "nginx exited:\n"
        .. (read(dir .. "/run.log") or "") .. (read(dir .. "/nginx/logs/error.log") or ""))
      os.execute("sleep 0.05")
    end
    error("nginx did not answer /ping within 5 s")
  end

  local function stop(master)
    os.execute("kill " .. master .. " 2>/dev/null")
    for _ = 1, 50 do
      if not run("kill -0 " .. master) then break end
      os.execute("sleep 0.1")
    end
    os.execute("kill -9 " .. master .. " 2>/dev/null; pkill -9 -P " .. master .. " 2>/dev/null")
  end

  setup(function()
    prefix = os.tmpname()
    os.remove(prefix)
    assert(os.execute("mkdir -p " .. prefix .. "/out"))
    base, pid = start(prefix, "JOB_RATE=1000r/s JOB_BURST=1000")
  end)

  teardown(function()
    if pid then stop(pid) end
    if prefix then os.execute("rm -rf " .. prefix) end
  end)

  -- A 400 naming `parameter`, whose text carries neither a Lua position nor the key.
  local function assert_refused(code, body, parameter)
    assert.are.equal(400, code, body)
    local answer = decode(body)
    assert.are.equal("InvalidParameter", answer.error.code, body)
    assert.are.equal(parameter, answer.error.parameter, body)
    assert.is_falsy(body:find("%.lua:%d+") or body:find("traceback"), body)
    assert.is_falsy(body:find(helper.KEY, 1, true), body)
  end

  it("refuses a local path, file:// or a relative name in a URL argument with a 400, sending nothing", function()
    helper.reset()
    local cases = {
      { "image_url", { { "image_url", "/etc/passwd" }, { "audio_url", "/etc/hostname" } } },
      { "image_url", { { "image_url", "file:///etc/passwd" }, { "audio_url", "https://example.com/a.wav" } } },
      { "image_url", { { "image_url", "etc/passwd" }, { "audio_url", "https://example.com/a.wav" } } },
      { "image_url", { { "image_url", "~/.bashrc" }, { "audio_url", "https://example.com/a.wav" } } },
      { "audio_url", { { "image_url", "https://example.com/f.png" }, { "audio_url", "/etc/hostname" } } },
      { "audio_url", { { "image_url", "https://example.com/f.png" }, { "audio_url", "FILE:/etc/hostname" } } },
      { "image_url", { { "image_url", "oss://dashscope-instant/x/f.png" }, { "audio_url", "https://example.com/a.wav" } } },
      { "image_url", { { "image_url", "https://user:pw@example.com/f.png" }, { "audio_url", "https://example.com/a.wav" } } },
      { "image_url", { { "image_url", "https:///f.png" }, { "audio_url", "https://example.com/a.wav" } } },
      { "image_url", { { "image_url", "https://example.com/f .png" }, { "audio_url", "https://example.com/a.wav" } } },
      { "audio_url", { { "image_url", "https://example.com/f.png" } } },
      { "image_url", { { "image_url", "https://example.com/f.png" }, { "image_url", "/etc/passwd" },
                       { "audio_url", "https://example.com/a.wav" } } },
      { "debug", { { "image_url", "https://example.com/f.png" }, { "audio_url", "https://example.com/a.wav" },
                   { "debug", "1" } } },
    }
    for _, case in ipairs(cases) do
      for _, method in ipairs { "GET", "POST" } do
        local code, body = request(method, "/job?" .. query(case[2]))
        assert_refused(code, body, case[1])
      end
    end
    -- nothing reached the service: no upload policy, no upload, no submit
    assert.are.same({}, helper.log())
    assert.are.equal(0, helper.stats().submits)
  end)

  it("answers 400 naming the field when the client refuses it, never a 500 or a Lua position", function()
    helper.reset()
    local code, body = get("/job?" .. query { { "image_url", "https://example.com/f.png" },
      { "audio_url", "https://example.com/a.wav" }, { "template_id", "wild" } })
    assert_refused(code, body, "template_id")
    assert.truthy(decode(body).error.message:find("^liveportrait: field 'template_id'"), body)
    assert.are.same({}, helper.log())
  end)

  it("answers 202 at once with the task id and its status location, which reaches SUCCEEDED", function()
    helper.reset { durations = { pending = 0.5, running = 2 } }
    local code, body, headers = request("POST", "/job?" .. query { { "image_url", "https://example.com/face.png" },
      { "audio_url", "https://example.com/speech.wav" }, { "template_id", "calm" } })
    assert.are.equal(202, code, body)
    local job = decode(body)
    assert.truthy(job.task_id:find("^[%w%-]+$"), body)
    assert.are.equal("/job/" .. job.task_id, job.status_url)
    assert.are.equal(job.status_url, headers["location"])
    assert.are.equal("PENDING", job.status)
    -- answered without waiting for the job: the server has not ended it yet
    assert.are.equal(helper.json.null, helper.control("GET", "/tasks")[1].ended_at)
    local submits = helper.requests("/video-synthesis")
    assert.are.equal(1, #submits)
    assert.are.same({ image_url = "https://example.com/face.png", audio_url = "https://example.com/speech.wav" },
      submits[1].json.input)

    local seen, answer = {}
    local deadline = now() + 30
    repeat
      local status_code, status_body = get(job.status_url)
      assert.are.equal(200, status_code, status_body)
      answer = decode(status_body)
      assert.are.equal(job.task_id, answer.task_id)
      if seen[#seen] ~= answer.status then seen[#seen + 1] = answer.status end
      if answer.status ~= "SUCCEEDED" then os.execute("sleep 0.2") end
    until answer.status == "SUCCEEDED" or now() > deadline
    assert.are.equal("SUCCEEDED", answer.status, table.concat(seen, ", "))
    assert.are.equal("PENDING", seen[1])
    assert.truthy(answer.video_url:find("^http://127%.0%.0%.1:%d+/results/"), answer.video_url)
    assert.are.equal(2.79, answer.usage.video_duration)
    assert.is_string(answer.end_time)
    assert.are.equal(1, helper.stats().submits)
  end)

  it("answers a FAILED task's code and message on its status location", function()
    helper.reset()
    local code, body = request("POST", "/job?" .. query { { "image_url", "https://example.com/__fail__.png" },
      { "audio_url", "https://example.com/speech.wav" } })
    assert.are.equal(202, code, body)
    code, body = get(decode(body).status_url .. "?wait=20")
    assert.are.equal(200, code, body)
    local answer = decode(body)
    assert.are.equal("FAILED", answer.status, body)
    assert.are.equal("InvalidFile.Content", answer.error.code, body)
    assert.is_string(answer.error.message)
  end)

  it("never answers the key, even when the service quotes it in an error or a FAILED task", function()
    helper.reset { outcome = { status = "FAILED", code = "Bad." .. helper.KEY, message = "your key " .. helper.KEY } }
    helper.faults { { match = "submit", kind = "status", status = 400, code = "InvalidParameter",
                      message = "refused key " .. helper.KEY } }
    local job = "/job?" .. query { { "image_url", "https://example.com/face.png" },
      { "audio_url", "https://example.com/speech.wav" } }
    local code, body = request("POST", job)
    assert.are.equal(502, code, body)
    assert.is_falsy(body:find(helper.KEY, 1, true), body)
    assert.truthy(body:find("refused key", 1, true), body)
    code, body = request("POST", job)
    assert.are.equal(202, code, body)
    code, body = get(decode(body).status_url .. "?wait=20")
    assert.are.equal(200, code, body)
    assert.are.equal("FAILED", decode(body).status, body)
    assert.is_falsy(body:find(helper.KEY, 1, true), body)
  end)

  it("answers a malformed task id with a 400 and an unknown one with a 404, UNKNOWN", function()
    helper.reset()
    local code, body = get("/job/bad%20id")
    assert_refused(code, body, "task_id")
    code, body = get("/job/x.y")
    assert_refused(code, body, "task_id")
    code, body = get("/job/" .. ("a"):rep(65))
    assert_refused(code, body, "task_id")
    code, body = get("/job/0385dc79-5ff8-4d82-bcb6-000000000000?wait=lots")
    assert_refused(code, body, "wait")
    assert.are.same({}, helper.log())
    code, body = get("/job/0385dc79-5ff8-4d82-bcb6-000000000000")
    assert.are.equal(404, code, body)
    local answer = decode(body)
    assert.are.equal("UNKNOWN", answer.status)
    assert.are.equal("TaskUnknown", answer.error.code)
  end)

  it("answers /ping within 50 ms while GET /job/<id>?wait= waits on a running job", function()
    helper.reset { durations = { pending = 0.5, running = 1 } }
    local code, body = request("POST", "/job?" .. query { { "image_url", "https://example.com/face.png" },
      { "audio_url", "https://example.com/speech.wav" } })
    assert.are.equal(202, code, body)
    local job = decode(body)

    local started = now()
    os.remove(prefix .. "/out/job.done")
    assert(os.execute(("(curl -sS -m 30 -o %s/out/job -w '%%{http_code}' '%s%s?wait=30' "
      .. "> %s/out/job.code 2>&1; touch %s/out/job.done) &"):format(prefix, base, job.status_url, prefix, prefix)))
    local pings, slowest = 0, 0
    while not exists(prefix .. "/out/job.done") and now() - started < 30 do
      local ping_code, ping_body, _, secs = get("/ping")
      assert.are.equal(200, ping_code, ping_body)
      assert.are.equal('{"pong":true}\n', ping_body)
      pings, slowest = pings + 1, math.max(slowest, secs)
      os.execute("sleep 0.05")
    end
    local took = now() - started

    assert.are.equal("200", read(prefix .. "/out/job.code"), read(prefix .. "/out/job"))
    local answer = decode(read(prefix .. "/out/job"))
    assert.are.equal("SUCCEEDED", answer.status)
    assert.truthy(answer.video_url:find("^http://127%.0%.0%.1:%d+/results/"), answer.video_url)
    assert.is_true(took >= 1, "the wait took " .. took .. " s")
    assert.is_true(pings >= 10, "only " .. pings .. " pings while the job ran")
    assert.is_true(slowest <= 0.05, ("the slowest /ping took %.0f ms"):format(slowest * 1000))
  end)

  it("answers 429 to submits over its rate limit (nginx limit_req), with a JSON error", function()
    local dir = prefix .. "/limited"
    local url, master = start(dir, "JOB_RATE=1r/m JOB_BURST=2")
    finally(function() stop(master) end)
    local refused = "/job?" .. query { { "image_url", "/etc/passwd" }, { "audio_url", "/etc/hostname" } }
    local codes = {}
    for i = 1, 5 do codes[i] = request("POST", refused, url) end
    assert.are.same({ 400, 400, 400, 429, 429 }, codes) -- one, then a burst of two
    local code, body, headers = request("POST", refused, url)
    assert.are.equal(429, code, body)
    assert.are.equal("Throttling", decode(body).error.code, body)
    assert.are.equal("1", headers["retry-after"])
    assert.are.equal(200, request("GET", "/ping", url)) -- the other locations are not limited so
  end)

  it("logged no error of its own", function()
    local log = read(prefix .. "/nginx/logs/error.log") or ""
    assert.is_falsy(log:find("%[error%]") or log:find("%[alert%]"), log)
  end)
end)
