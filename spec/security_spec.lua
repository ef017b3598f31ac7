-- Security, attacked: TLS verification that cannot be turned off (and a private CA that can be
-- trusted), no plain http:// beyond loopback without saying so, no redirect followed, no header
-- injection, and the API key in no error, tostring, log line or value a debug hook can reach.
local helper = require("spec.support.helper")
local dashscope = helper.dashscope

local PYTHON = os.getenv("PYTHON") or "python3"

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1; echo \"exit status $?\""))
  local out = p:read("*a")
  p:close()
  return tonumber(out:match("exit status (%d+)%s*$")) == 0, out
end

-- Starts spec/support/tiny_server.py (TLS when cert and key are given): its base URL and a stop().
local function tiny_server(cert, key)
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p '" .. dir .. "'"))
  local port_file = dir .. "/port"
  local args = cert and (" '" .. cert .. "' '" .. key .. "'") or ""
  local pid_file = dir .. "/pid"
  assert(os.execute(("%s spec/support/tiny_server.py '%s'%s >/dev/null 2>&1 & echo $! > '%s'"):format(
    PYTHON, port_file, args, pid_file)))
  local port
  for _ = 1, 100 do
    local f = io.open(port_file)
    if f then
      port = f:read("*a")
      f:close()
      if port ~= "" then break end
    end
    os.execute("sleep 0.05")
  end
  assert(port and port ~= "", "tiny_server did not start")
  local scheme = cert and "https" or "http"
  return ("%s://127.0.0.1:%s"):format(scheme, port), function()
    os.execute("kill $(cat '" .. pid_file .. "') 2>/dev/null; rm -rf '" .. dir .. "'")
  end
end

describe("the base URL", function()
  local function new(url, extra)
    local o = { api_key = "sk-x", base_url = url }
    for k, v in pairs(extra or {}) do o[k] = v end
    return dashscope.new(o)
  end

  it("may be plain http:// only on loopback, unless allow_http says so", function()
    for _, url in ipairs { "http://127.0.0.1:9/api/v1", "http://localhost:9/api/v1", "http://[::1]:9/api/v1",
                           "https://dashscope.example/api/v1" } do
      assert(new(url))
    end
    local msg = helper.raises(function() new("http://dashscope.example/api/v1") end)
    assert.truthy(msg:find("unencrypted", 1, true), msg)
    assert.truthy(msg:find("allow_http", 1, true), msg)
    assert(new("http://dashscope.example/api/v1", { allow_http = true }))
    assert.truthy(helper.raises(function() new("http://127.0.0.1.evil.example/api/v1") end):find("unencrypted", 1, true))
  end)
end)

describe("TLS", function()
  local dir, cert, key, url, stop
  setup(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p '" .. dir .. "'"))
    cert, key = dir .. "/cert.pem", dir .. "/key.pem"
    local ok, out = sh(("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 "
      .. "-addext subjectAltName=IP:127.0.0.1 -keyout '%s' -out '%s'"):format(key, cert))
    assert(ok, out)
    url, stop = tiny_server(cert, key)
  end)
  teardown(function()
    if stop then stop() end
    os.execute("rm -rf '" .. dir .. "'")
  end)

  it("refuses a peer it cannot verify, with no option to skip the check", function()
    local client = dashscope.new { api_key = helper.KEY, base_url = url .. "/api/v1", max_retries = 0 }
    local status, err = client:task("t-1"):poll()
    assert.is_nil(status)
    assert.are.equal("NetworkError", err.code)
    assert.truthy(tostring(err):lower():find("certificate", 1, true), tostring(err))
    for _, name in ipairs { "insecure", "verify", "ssl_verify", "verify_peer" } do
      assert.truthy(helper.raises(function() dashscope.new { api_key = "k", [name] = false } end):find("unknown", 1, true))
    end
  end)

  it("trusts a private CA given as ca_file (or ca_path), and verifies through it", function()
    local client = dashscope.new { api_key = helper.KEY, base_url = url .. "/api/v1", ca_file = cert }
    assert.are.equal("SUCCEEDED", assert(client:task("t-2"):poll()))
    local hashed = dir .. "/cas"
    local p = io.popen("openssl x509 -hash -noout -in '" .. cert .. "'")
    local hash = p:read("*l")
    p:close()
    assert(os.execute(("mkdir -p '%s' && cp '%s' '%s/%s.0'"):format(hashed, cert, hashed, hash)))
    client = dashscope.new { api_key = helper.KEY, base_url = url .. "/api/v1", ca_path = hashed }
    assert.are.equal("SUCCEEDED", assert(client:task("t-3"):poll()))
  end)
end)

describe("requests", function()
  it("never follow a redirect, so the key goes nowhere else", function()
    local url, stop = tiny_server()
    local client = dashscope.new { api_key = helper.KEY, base_url = url .. "/api/v1", max_retries = 0 }
    local status, err = client:task("moved"):poll()
    local seen = io.popen("curl -s " .. url .. "/__seen"):read("*a")
    stop()
    assert.is_nil(status)
    assert.are.equal(302, err.status)
    assert.are.equal("[]", seen)
  end)

  it("refuse CR, LF or NUL in any header value before anything is sent", function()
    helper.reset()
    for _, o in ipairs {
      { api_key = "sk-a\r\nX-Evil: 1" }, { api_key = helper.KEY, workspace = "ws\nX-Evil: 1" },
      { api_key = helper.KEY, user_agent = "ua\r\nX-Evil: 1" }, { api_key = helper.KEY, workspace = "ws\0x" },
    } do
      o.base_url = helper.BASE_URL
      local msg = helper.raises(function() dashscope.new(o) end)
      assert.truthy(msg:find("CR, LF or NUL", 1, true), msg)
      assert.is_falsy(msg:find("[\r\n]"), msg) -- shown escaped: the message cannot forge log lines
    end
    assert.are.equal(0, #helper.log())
  end)
end)

describe("the API key", function()
  -- Every string a debug hook can reach from the running function: its locals and upvalues, and the
  -- string values of tables among them (one level deep). The spec's own functions are skipped: they
  -- hold the test key on purpose (the helper's KEY).
  local function reachable_strings(level, out)
    local where = debug.getinfo(level, "S")
    if where and where.what == "C" then -- a C function: judged by who called it
      where = debug.getinfo(level + 1, "S")
    end
    if not where or where.short_src:find("spec/", 1, true) or where.short_src:find("busted", 1, true) then
      return
    end
    local function take(v)
      if type(v) == "string" then
        out[#out + 1] = v
      elseif type(v) == "table" then
        for k, x in pairs(v) do
          if type(k) == "string" then out[#out + 1] = k end
          if type(x) == "string" then out[#out + 1] = x end
        end
      end
    end
    for i = 1, 200 do
      local name, v = debug.getlocal(level, i)
      if not name then break end
      take(v)
    end
    local info = debug.getinfo(level, "f")
    if info and info.func then
      for i = 1, 200 do
        local name, v = debug.getupvalue(info.func, i)
        if not name then break end
        take(v)
      end
    end
  end

  it("is in no value a debug hook sees, no error, no tostring, once the client is made", function()
    helper.reset { durations = { pending = 0, pre_processing = 0, running = 0.05, post_processing = 0 },
                   concurrency = 0 }
    local client = helper.client()
    local seen, found = {}, nil
    debug.sethook(function()
      local strings = {}
      reachable_strings(3, strings)
      for _, s in ipairs(strings) do
        if s:find(helper.KEY, 1, true) then
          found = found or debug.traceback("key reachable here", 2)
        end
      end
      seen[#seen + 1] = #strings
    end, "c")
    local ok, failure = pcall(function()
      local t = assert(client:liveportrait { image_url = "https://example.com/f.png", audio_url = "https://example.com/a.wav" })
      assert(t:wait())
      local out = os.tmpname()
      os.remove(out)
      assert(t:download(out))
      os.remove(out)
      helper.faults { { match = "query", kind = "status", status = 401, count = 5 } }
      local _, err = client:task("nope"):poll()
      assert(err)
      local texts = { tostring(err), tostring(client), tostring(t), tostring(client._transport),
                      helper.json.encode(err) }
      for _, text in ipairs(texts) do
        assert(not text:find(helper.KEY, 1, true), "key in " .. text)
      end
    end)
    debug.sethook()
    assert(ok, failure)
    assert.is_true(#seen > 100) -- the hook did run through the job
    assert.is_nil(found)
  end)

  it("is scrubbed from any message that would carry it", function()
    local client = helper.client()
    assert.are.equal("bad <api-key> here", client._transport:scrub("bad " .. helper.KEY .. " here"))
    assert.are.equal("none", client._transport:scrub("none"))
  end)
end)
