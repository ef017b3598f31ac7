-- examples/openresty as a user runs it: nginx with Debian's lua module serves /job from the LuaJIT
-- build, against the local server, while /ping keeps answering at once from the same worker
-- (every wait of the client yields through ngx.sleep).
local helper = require("spec.support.helper")
local now = helper.dashscope._core.now

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

-- One GET with curl: status code, body, seconds (nil and curl's message when it failed).
local function get(url)
  local ok, out = run("curl -sS -m 10 -w '\\n%{http_code} %{time_total}' '" .. url .. "'")
  if not ok then return nil, out end
  local body, code, secs = out:match("^(.*)\n(%d+) ([%d.]+)$")
  return tonumber(code), body, tonumber(secs)
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

  it("answers /ping within 50 ms while /job waits on a job, then /job's SUCCEEDED result", function()
    helper.reset { durations = { pending = 0.5, running = 1 } }
    local prefix = os.tmpname()
    os.remove(prefix)
    assert(os.execute("mkdir -p " .. prefix .. "/out"))
    local port = free_port()
    local base = "http://127.0.0.1:" .. port
    local pid
    finally(function()
      if pid then
        os.execute("kill " .. pid .. " 2>/dev/null")
        for _ = 1, 50 do
          if not run("kill -0 " .. pid) then break end
          os.execute("sleep 0.1")
        end
        os.execute("kill -9 " .. pid .. " 2>/dev/null; pkill -9 -P " .. pid .. " 2>/dev/null")
      end
      os.execute("rm -rf " .. prefix)
    end)

    -- nginx in the foreground of a background shell: run.sh execs it, so $! is its master.
    -- Without the caller's LUA_PATH/LUA_CPATH (for Lua 5.4): nginx's LuaJIT would read them.
    local p = assert(io.popen(("env -u LUA_PATH -u LUA_CPATH DASHSCOPE_HTTP_BASE_URL=%s DASHSCOPE_API_KEY=%s PREFIX=%s BUILD=%s "
      .. "sh examples/openresty/run.sh %d > %s/out/run.log 2>&1 & echo $!"):format(
      helper.BASE_URL, helper.KEY, prefix .. "/nginx", build, port, prefix)))
    pid = assert(tonumber(p:read("*l")))
    p:close()
    local up = false
    for _ = 1, 100 do
      if get(base .. "/ping") == 200 then up = true break end
      assert(run("kill -0 " .. pid), "nginx exited:\n"
        .. (read(prefix .. "/out/run.log") or "") .. (read(prefix .. "/nginx/logs/error.log") or ""))
      os.execute("sleep 0.05")
    end
    assert(up, "nginx did not answer /ping within 5 s")

    local started = now()
    assert(os.execute(("(curl -sS -m 30 -o %s/out/job -w '%%{http_code}' '%s/job?image_url=%s&audio_url=%s' "
      .. "> %s/out/job.code 2>&1; touch %s/out/job.done) &"):format(prefix, base,
      "https://example.com/face.png", "https://example.com/speech.wav", prefix, prefix)))
    local pings, slowest = 0, 0
    while not exists(prefix .. "/out/job.done") and now() - started < 30 do
      local code, body, secs = get(base .. "/ping")
      assert.are.equal(200, code, body)
      assert.are.equal('{"pong":true}\n', body)
      pings, slowest = pings + 1, math.max(slowest, secs)
      os.execute("sleep 0.05")
    end
    local took = now() - started

    assert.are.equal("200", read(prefix .. "/out/job.code"), read(prefix .. "/out/job"))
    local job = helper.json.decode(read(prefix .. "/out/job"))
    assert.are.equal("SUCCEEDED", job.status)
    assert.truthy(job.video_url:find("^http://127%.0%.0%.1:%d+/results/"), job.video_url)
    assert.are.same({ "PENDING", "RUNNING", "SUCCEEDED" }, job.statuses)
    assert.is_true(took >= 1.5, "the job took " .. took .. " s")
    assert.is_true(pings >= 10, "only " .. pings .. " pings while the job ran")
    assert.is_true(slowest <= 0.05, ("the slowest /ping took %.0f ms"):format(slowest * 1000))
    local log = read(prefix .. "/nginx/logs/error.log") or ""
    assert.is_falsy(log:find("%[error%]") or log:find("%[alert%]"), log)
  end)
end)
