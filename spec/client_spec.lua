-- The module and dashscope.new: options, defaults, environment, key resolution (docs/protocol.md §12.2).
local helper = require("spec.support.helper")
local dashscope = helper.dashscope
local config = require("dashscope.config")

local function env(vars)
  return function(name) return vars[name] end
end

local function tmpfile(content)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(content)
  f:close()
  return path
end

describe("the module", function()
  it("has a semantic VERSION and sets no globals", function()
    assert.truthy(dashscope.VERSION:find("^%d+%.%d+%.%d+$"))
    -- the interpreter under test (make test sets LUA); stderr too, so a failed load is not silence
    local p = assert(io.popen((os.getenv("LUA") or "lua5.4") .. [[ -e 'local before = {} for k in pairs(_G) do before[k] = true end
      require "dashscope"
      for k in pairs(_G) do if not before[k] then print(k) end end' 2>&1]]))
    local extra = p:read("*a")
    p:close()
    assert.are.equal("", extra)
  end)

  it("stands on the C core, dashscope.core (dashscope/core.so)", function()
    assert.are.equal("userdata", type(require("dashscope.core").new_transport()))
    assert.are.equal("function", type(package.loaded["dashscope.core"].now))
  end)
end)

describe("dashscope.new", function()
  it("takes the key from api_key first, then DASHSCOPE_API_KEY, then the key file, then ~/.dashscope", function()
    local file = tmpfile("sk-from-file\n")
    local home = os.tmpname()
    os.remove(home)
    os.execute("mkdir -p " .. home .. "/.dashscope && printf 'sk-from-home\\n' > " .. home .. "/.dashscope/api_key")
    local all = { DASHSCOPE_API_KEY = "sk-from-env", DASHSCOPE_API_KEY_FILE_PATH = file, HOME = home }
    assert.are.equal("sk-explicit", config.settings({ api_key = "sk-explicit" }, env(all)).api_key)
    assert.are.equal("sk-from-env", config.settings({}, env(all)).api_key)
    all.DASHSCOPE_API_KEY = nil
    assert.are.equal("sk-from-file", config.settings({}, env(all)).api_key)
    all.DASHSCOPE_API_KEY_FILE_PATH = "/nonexistent/key"
    assert.are.equal("sk-from-home", config.settings({}, env(all)).api_key)
    os.remove(file)
    os.execute("rm -rf " .. home)
  end)

  it("says where a key is looked for when there is none", function()
    local message = helper.raises(function() config.settings({}, env({ HOME = "/nonexistent" })) end)
    assert.truthy(message:find("no API key found", 1, true))
    for _, where in ipairs { "api_key", "DASHSCOPE_API_KEY", "DASHSCOPE_API_KEY_FILE_PATH", "~/.dashscope/api_key" } do
      assert.truthy(message:find(where, 1, true), where)
    end
  end)

  it("uses the documented defaults", function()
    local s = config.settings({}, env({ DASHSCOPE_API_KEY = "k" }))
    assert.are.equal("https://dashscope.aliyuncs.com/api/v1", s.base_url)
    assert.are.equal(60, s.timeout)
    assert.are.equal(10, s.connect_timeout)
    assert.are.equal(3, s.max_retries)
    assert.are.equal(3 * 3600, s.wait_timeout)
    assert.are.equal(1, s.poll_interval)
    assert.are.equal(10, s.max_poll_interval)
    assert.are.equal(6, s.max_connections)
    assert.are.equal(5, s.rate_limits.submit.liveportrait)
    assert.are.equal(20, s.rate_limits.tasks)
    assert.is_false(s.data_inspection)
  end)

  it("reads the base URL from DASHSCOPE_HTTP_BASE_URL and tolerates a trailing slash", function()
    local s = config.settings({}, env({ DASHSCOPE_API_KEY = "k", DASHSCOPE_HTTP_BASE_URL = "http://127.0.0.1:1/api/v1/" }))
    assert.are.equal("http://127.0.0.1:1/api/v1", s.base_url)
    s = config.settings({ base_url = "https://x.example/api/v1//" }, env({ DASHSCOPE_API_KEY = "k" }))
    assert.are.equal("https://x.example/api/v1", s.base_url)
    assert.truthy(helper.raises(function()
      config.settings({}, env({ DASHSCOPE_API_KEY = "k", DASHSCOPE_HTTP_BASE_URL = "ftp://x" }))
    end):find("env DASHSCOPE_HTTP_BASE_URL must be an http", 1, true))
  end)

  it("turns on data inspection only for DASHSCOPE_DISABLE_DATA_INSPECTION=false", function()
    local s = config.settings({}, env({ DASHSCOPE_API_KEY = "k", DASHSCOPE_DISABLE_DATA_INSPECTION = "false" }))
    assert.is_true(s.data_inspection)
  end)

  it("sends the workspace, user agent suffix and data inspection headers", function()
    helper.reset()
    local c = helper.client({ workspace = "ws-123", user_agent = "myapp/2.0" })
    c:task("abc"):poll()
    local r = helper.log()[1]
    assert.are.equal("ws-123", r.headers["x-dashscope-workspace"])
    assert.truthy(r.headers["user-agent"]:find("^lua%-dashscope/%d+%.%d+%.%d+ %(.*libcurl.*%) myapp/2%.0$"), r.headers["user-agent"])
    assert.are.equal("GET", r.method)
    assert.are.equal("/api/v1/tasks/abc", r.path)
    assert.are.equal("", r.body)
    assert.is_nil(r.headers["x-dashscope-async"])
    c:close()
  end)

  local BAD = {
    { { timeout = "60" }, "field 'timeout' must be a number" },
    { { timeout = 0 }, "field 'timeout' must be a number from 0.001 to 86400" },
    { { max_retries = -1 }, "field 'max_retries' must be an integer from 0 to 100" },
    { { poll_intervall = 1 }, "did you mean 'poll_interval'?" },
    { { apikey = "x" }, "did you mean 'api_key'?" },
    { { sleep = 1 }, "field 'sleep' must be a function" },
    { { api_key = "" }, "field 'api_key' must not be empty" },
    { { api_key = "sk-abc\r\nX-Evil: 1" }, "field 'api_key' must not contain CR, LF or NUL (it goes into an HTTP header) (got a string)" },
    { { workspace = "ws\n" }, "field 'workspace' must not contain CR, LF or NUL" },
    { { user_agent = "a\0b" }, "field 'user_agent' must not contain CR, LF or NUL" },
    { { poll_interval = 10, max_poll_interval = 5 }, "poll_interval (10) must not exceed max_poll_interval (5)" },
    { { base_url = "dashscope.aliyuncs.com" }, "field 'base_url' must be an http:// or https:// URL" },
  }
  for _, case in ipairs(BAD) do
    it("refuses " .. next(case[1]) .. " = " .. tostring(case[1][next(case[1])]):gsub("%c", "?"), function()
      local opts = case[1]
      if not opts.api_key then opts.api_key = "k" end
      local message = helper.raises(function() dashscope.new(opts) end)
      assert.truthy(message:find("^.-client_spec%.lua:%d+: dashscope%.new: "), message)
      assert.truthy(message:find(case[2], 1, true), message)
      assert.is_nil(message:find("sk-abc", 1, true))
    end)
  end

  it("prints its base URL and never its key", function()
    local c = dashscope.new { api_key = "sk-very-secret", base_url = helper.BASE_URL }
    assert.are.equal("dashscope.Client (" .. helper.BASE_URL .. ")", tostring(c))
    c:close()
  end)

  it("closes idempotently, and with <close> on Lua 5.4", function()
    local c = helper.client()
    c:close()
    c:close()
    if _VERSION ~= "Lua 5.4" then return end -- no <close> before 5.4
    local f = load([[local helper = ...
      do local c <close> = helper.client() end
      return true]])
    assert.is_true(f(helper))
  end)
end)
