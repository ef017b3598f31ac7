-- examples/openresty as a user runs it, and as an attacker would call it: nginx with Debian's lua
-- module serves /job from the LuaJIT build, against the local server. A URL argument that is not a
-- remote URL is refused with a 400 before anything reaches the service; a good job answers 202 at
-- once with a status location that reaches its result; /ping keeps answering at once from the
-- same worker while a request waits on a job (every wait of the client yields through ngx.sleep).
-- And issue 12's done-means: 4 workers (reuseport) and 30 videoretalk jobs at once keep, through
-- the shared dict, to the account's quota of 1 submit a second: 30/30 created, 0 answers 429.
local helper = require("spec.support.helper")
local now = require("dashscope.core").now

local hosts = require("spec.support.hosts")
local openresty = require("spec.support.openresty")
local exists, read = hosts.exists, hosts.read
local query = openresty.query

describe("examples/openresty", function()
  local reason, build = openresty.missing()
  if reason then
    -- pending() inside an it: busted's JSON output breaks on a bare pending() in a describe
    it("runs in a real host (skipped)", function() pending("skipped: " .. reason) end)
    return
  end

  -- The nginx all but three tests share: 4 workers, as the example's default (its submit limit set
  -- high: the tests call /job often).
  local prefix, base, pid

  -- One request with curl to `to` (default: the shared nginx): status code, body, headers
  -- (lower-cased names), seconds; nil and curl's message when curl failed.
  local function request(method, path, to)
    return openresty.request(method, to or base, path, prefix .. "/out")
  end

  local function get(path) return request("GET", path) end

  local function decode(body)
    local ok, value = pcall(helper.json.decode, body)
    assert(ok, "not JSON: " .. tostring(body))
    return value
  end

  local function start(dir, env) return openresty.start(dir, build, env) end
  local stop = openresty.stop

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

  it("answers /ping within 50 ms from the very worker whose GET /job/<id>?wait= waits on a running job", function()
    -- One worker, so every /ping is answered by the worker that holds the waiting request.
    local dir = prefix .. "/single"
    local url, master = start(dir, "WORKERS=1")
    finally(function() stop(master) end)
    helper.reset { durations = { pending = 0.5, running = 1 } }
    local code, body = request("POST", "/job?" .. query { { "image_url", "https://example.com/face.png" },
      { "audio_url", "https://example.com/speech.wav" } }, url)
    assert.are.equal(202, code, body)
    local job = decode(body)

    local started = now()
    assert(os.execute(("(curl -sS -m 30 -o %s/job -w '%%{http_code}' '%s%s?wait=30' "
      .. "> %s/job.code 2>&1; touch %s/job.done) &"):format(dir, url, job.status_url, dir, dir)))
    local pings, slowest = 0, 0
    while not exists(dir .. "/job.done") and now() - started < 30 do
      local ping_code, ping_body, _, secs = request("GET", "/ping", url)
      assert.are.equal(200, ping_code, ping_body)
      assert.are.equal('{"pong":true}\n', ping_body)
      pings, slowest = pings + 1, math.max(slowest, secs)
      os.execute("sleep 0.05")
    end
    local took = now() - started

    assert.are.equal("200", read(dir .. "/job.code"), read(dir .. "/job"))
    local answer = decode(read(dir .. "/job"))
    assert.are.equal("SUCCEEDED", answer.status)
    assert.truthy(answer.video_url:find("^http://127%.0%.0%.1:%d+/results/"), answer.video_url)
    assert.is_true(took >= 1, "the wait took " .. took .. " s")
    assert.is_true(pings >= 10, "only " .. pings .. " pings while the job ran")
    assert.is_true(slowest <= 0.05, ("the slowest /ping took %.0f ms"):format(slowest * 1000))
    local log = read(dir .. "/nginx/logs/error.log") or ""
    assert.is_falsy(log:find("%[error%]") or log:find("%[alert%]"), log)
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

  it("takes videoretalk jobs (model=videoretalk), checking each of its arguments like the others", function()
    helper.reset()
    local video, audio = { "video_url", "https://example.com/v.mp4" }, { "audio_url", "https://example.com/a.wav" }
    local model = { "model", "videoretalk" }
    local cases = {
      { "video_url", { model, { "video_url", "/etc/passwd" }, audio } },
      { "audio_url", { model, video, { "audio_url", "file:///etc/hostname" } } },
      { "ref_image_url", { model, video, audio, { "ref_image_url", "~/face.png" } } },
      { "video_extension", { model, video, audio, { "video_extension", "maybe" } } },
      { "query_face_threshold", { model, video, audio, { "query_face_threshold", "lots" } } },
      { "video_url", { model, audio } },
      { "image_url", { model, video, audio, { "image_url", "https://example.com/f.png" } } },
      { "model", { { "model", "emoji-v1" }, video, audio } },
      { "model", { model, model, video, audio } },
    }
    for _, case in ipairs(cases) do
      local code, body = request("POST", "/job?" .. query(case[2]))
      assert_refused(code, body, case[1])
    end
    -- out of the contract's range: the client refuses it, naming the field
    local code, body = request("POST", "/job?" .. query { model, video, audio, { "query_face_threshold", "500" } })
    assert_refused(code, body, "query_face_threshold")
    assert.truthy(decode(body).error.message:find("^videoretalk: field 'query_face_threshold'"), body)
    assert.are.same({}, helper.log())

    code, body = request("POST", "/job?" .. query { model, video, audio, { "ref_image_url", "https://example.com/f.png" },
      { "video_extension", "true" }, { "query_face_threshold", "150" } })
    assert.are.equal(202, code, body)
    local submits = helper.requests("/video-synthesis")
    assert.are.equal(1, #submits)
    assert.are.equal("videoretalk", submits[1].json.model)
    assert.are.same({ video_url = "https://example.com/v.mp4", audio_url = "https://example.com/a.wav",
                      ref_image_url = "https://example.com/f.png" }, submits[1].json.input)
    assert.are.same({ video_extension = true, query_face_threshold = 150 }, submits[1].json.parameters)
    code, body = get(decode(body).status_url .. "?wait=20")
    assert.are.equal(200, code, body)
    assert.are.equal("SUCCEEDED", decode(body).status, body)
    assert.truthy(decode(body).video_url:find("^http://127%.0%.0%.1:%d+/results/"), body)
  end)

  -- Starts `n` requests to `path_of(i)` at once (curl, a connection each, in the background), and
  -- until they have all been answered calls `meanwhile` (if given) over and over: the status code
  -- and body of each, in order.
  local function at_once(n, method, path_of, dir, meanwhile)
    assert(os.execute("mkdir -p " .. dir))
    local commands = {}
    for i = 1, n do
      commands[i] = ("(curl -sS -m 120 -X %s -o %s/body.%d -w '%%{http_code}' '%s%s' > %s/code.%d 2>&1) &")
        :format(method, dir, i, base, path_of(i), dir, i)
    end
    assert(os.execute(("(%s wait; touch %s/done) > /dev/null 2>&1 &"):format(table.concat(commands, " "), dir)))
    local deadline = now() + 150
    while not exists(dir .. "/done") and now() < deadline do
      if meanwhile then meanwhile() end
      os.execute("sleep 0.1")
    end
    assert(exists(dir .. "/done"), "the requests were not all answered within 150 s")
    local codes, bodies = {}, {}
    for i = 1, n do
      codes[i], bodies[i] = tonumber(read(dir .. "/code." .. i)), read(dir .. "/body." .. i)
    end
    return codes, bodies
  end

  -- The pids of the workers the access log shows answering `status` to requests starting `request`.
  local function workers(request_start, status)
    local pids, count = {}, 0
    for line in (read(prefix .. "/nginx/logs/access.log") or ""):gmatch("[^\n]+") do
      local worker, asked, code = line:match('^%S+ %[[^%]]*%] (%d+) "(%S+ %S+)[^"]*" (%d+)')
      if worker and asked:sub(1, #request_start) == request_start and tonumber(code) == status
          and not pids[worker] then
        pids[worker], count = true, count + 1
      end
    end
    return count
  end

  it("keeps 4 workers to the account's quota through the shared dict: 30 videoretalk jobs at once, "
    .. "30 created, 0 answers 429, never 2 submits in a second", function()
    helper.reset { rate_limits = true, concurrency = 0,
                   durations = { pending = 0, pre_processing = 0.01, running = 0.05, post_processing = 0.01 } }
    local n, started = 30, now()
    -- while the jobs wait their turns (in ngx.sleep), every worker keeps answering /ping
    local pings, slowest = 0, 0
    local codes, bodies = at_once(n, "POST", function(i)
      return "/job?" .. query { { "model", "videoretalk" }, { "video_url", "https://example.com/v" .. i .. ".mp4" },
                                { "audio_url", "https://example.com/a" .. i .. ".wav" } }
    end, prefix .. "/out/burst", function()
      local code, body, _, secs = get("/ping")
      assert.are.equal(200, code, body)
      pings, slowest = pings + 1, math.max(slowest, secs)
    end)
    local took = now() - started
    local ids = {}
    for i = 1, n do
      assert.are.equal(202, codes[i], bodies[i])
      ids[i] = decode(bodies[i]).task_id
    end
    local seen = workers("POST /job?model=videoretalk", 202)
    -- their statuses at once too, through any worker: the shared /tasks budget of 20 a second
    codes, bodies = at_once(n, "GET", function(i) return "/job/" .. ids[i] .. "?wait=30" end, prefix .. "/out/status")
    for i = 1, n do
      assert.are.equal(200, codes[i], bodies[i])
      assert.are.equal("SUCCEEDED", decode(bodies[i]).status, bodies[i])
    end

    local stats = helper.stats()
    -- the closest two submits came to each other at the server (arrival times, 429s included)
    local closest, last = math.huge, nil
    for _, r in ipairs(helper.requests("/video-synthesis")) do
      if last then closest = math.min(closest, r.time - last) end
      last = r.time
    end
    local figures = ("%d workers took jobs; %d/%d answered 202 in %.1f s; %d pings meanwhile, the slowest %.0f ms; "
      .. "server: submits %d, throttled %s, max_per_second %s, the closest submits %.0f ms apart"):format(
      seen, n, n, took, pings, slowest * 1000, stats.submits, helper.json.encode(stats.throttled),
      helper.json.encode(stats.max_per_second), closest * 1000)
    if os.getenv("DASHSCOPE_SPEC_FIGURES") then io.stderr:write("openresty quota: ", figures, "\n") end
    assert.is_true(seen >= 2, figures)
    -- a worker blocked on the store (rather than in ngx.sleep) would hold a ping for its whole wait
    assert.is_true(pings >= 50 and slowest <= 0.25, figures)
    assert.are.equal(n, stats.submits, figures)
    assert.are.equal(0, stats.duplicate_submits, figures)
    assert.are.equal(0, stats.throttled.videoretalk or 0, figures)
    assert.are.equal(0, stats.throttled.tasks or 0, figures)
    assert.is_true(stats.max_per_second.videoretalk <= 1, figures)
    assert.is_true(stats.max_per_second.tasks <= 20, figures)
  end)

  it("falls back to each worker's own limits, and says so in the error log, without its shared dict", function()
    local dir = prefix .. "/nodict"
    local url, master = start(dir, "WORKERS=2 QUOTA_DICT=elsewhere")
    finally(function() stop(master) end)
    helper.reset()
    local code, body = request("POST", "/job?" .. query { { "model", "videoretalk" },
      { "video_url", "https://example.com/v.mp4" }, { "audio_url", "https://example.com/a.wav" } }, url)
    assert.are.equal(202, code, body)
    assert.are.equal(1, helper.stats().submits)
    local log = read(dir .. "/nginx/logs/error.log") or ""
    assert.truthy(log:find("%[warn%].-no lua_shared_dict dashscope in nginx%.conf"), log)
    assert.is_falsy(log:find("%[error%]") or log:find("%[alert%]"), log)
  end)

  it("logged no error of its own", function()
    local log = read(prefix .. "/nginx/logs/error.log") or ""
    assert.is_falsy(log:find("%[error%]") or log:find("%[alert%]"), log)
  end)
end)
