-- URLs read by libcurl's own parser (issue 9, finding 2): the base URL (and its environment
-- variable) refuses credentials, control characters, a query or fragment, and is plain http://
-- only to a loopback host as libcurl parses it; the upload host a policy names and a task's result
-- URL are fetched only when they are http(s) URLs without credentials; Retry-After dates are read
-- by libcurl's date parser and never raise.
local helper = require("spec.support.helper")
local dashscope = helper.dashscope
local config = require("dashscope.config")
local http = require("dashscope.http")
local core = require("dashscope.core")

local function env(vars)
  return function(name) return vars[name] end
end

local function new(base, extra)
  local o = { api_key = helper.KEY, base_url = base, max_retries = 0 }
  for k, v in pairs(extra or {}) do o[k] = v end
  local client = dashscope.new(o) -- not a tail call: Lua 5.1 would drop this frame from errors
  return client
end

-- host:port of the local server's API and result listeners
local API = helper.BASE_URL:match("^http://([^/]+)")
local RESULTS = helper.RESULTS_URL:match("^http://([^/]+)")
local UPLOAD = helper.UPLOAD_URL:match("^http://([^/]+)")

describe("core.parse_url", function()
  it("gives libcurl's parts, normalised as libcurl will connect", function()
    local p = assert(core.parse_url("HTTP://u:pw@0x7f.1:8080/a/b?q=1#f"))
    assert.are.same({ scheme = "http", user = "u", password = "pw", host = "127.0.0.1", port = 8080,
                      path = "/a/b", query = "q=1", fragment = "f" }, p)
    assert.are.same({ scheme = "http", host = "[::1]", path = "/" }, core.parse_url("http://[0:0::1]"))
    assert.are.same({ scheme = "oss", host = "bucket", path = "/k" }, core.parse_url("oss://bucket/k"))
  end)

  it("answers nil and why for what is no URL, and never quotes the text", function()
    for _, text in ipairs { "/etc/passwd", "etc/passwd", "~/.bashrc", "http://h/a b", "http://h/\r\nX: y",
                            "http://h/\0x", "http://h:99999/", "http://a b/", "" } do
      local parts, why = core.parse_url(text)
      assert.is_nil(parts, text)
      assert.are.equal("string", type(why))
      assert.is_nil(why:find("h/", 1, true), why)
    end
  end)
end)

describe("the base URL", function()
  before_each(function() helper.reset() end)

  it("refuses userinfo, which hid the real host from the loopback rule", function()
    for _, base in ipairs { "http://127.0.0.1:9@192.0.2.2:47999/api/v1", "http://[::1]@192.0.2.2/",
                            "http://localhost:x@192.0.2.2/", "https://user@dashscope.example/api/v1",
                            "http://127.0.0.1:9@" .. API .. "/api/v1", "http://" .. API .. "@" .. API .. "/api/v1" } do
      local msg = helper.raises(function() new(base) end)
      assert.truthy(msg:find("urls_spec%.lua:%d+: dashscope%.new: field 'base_url' must not carry credentials"), msg)
      assert.is_nil(msg:find("192.0.2.2", 1, true), msg) -- the value is never quoted: it may hold a password
    end
    assert.are.equal(0, #helper.log()) -- the userinfo forms naming the local server reached nothing
  end)

  it("refuses the same through DASHSCOPE_HTTP_BASE_URL", function()
    for _, base in ipairs { "http://127.0.0.1:9@192.0.2.2:47999/api/v1", "http://[::1]@192.0.2.2/",
                            "http://localhost:x@192.0.2.2/" } do
      local msg = helper.raises(function()
        config.settings({}, env { DASHSCOPE_API_KEY = "k", DASHSCOPE_HTTP_BASE_URL = base })
      end)
      assert.truthy(msg:find("env DASHSCOPE_HTTP_BASE_URL must not carry credentials", 1, true), msg)
    end
    local msg = helper.raises(function()
      config.settings({}, env { DASHSCOPE_API_KEY = "k", DASHSCOPE_HTTP_BASE_URL = "http://192.0.2.2/api/v1" })
    end)
    assert.truthy(msg:find("env DASHSCOPE_HTTP_BASE_URL is plain http:// to 192.0.2.2", 1, true), msg)
  end)

  it("refuses CR, LF, NUL, other control characters and spaces at dashscope.new", function()
    for _, base in ipairs { "http://127.0.0.1:9/api/v1\r\nX-Evil: 1", "http://127.0.0.1:9/api\0/v1",
                            "http://127.0.0.1:9/api\tv1", "http://127.0.0.1:9/api v1", " https://h/api/v1" } do
      local msg = helper.raises(function() new(base) end)
      assert.truthy(msg:find("field 'base_url' must not contain CR, LF, NUL, other control characters or spaces", 1, true), msg)
      assert.is_nil(msg:find("[\r\n%z]"), msg)
    end
    local msg = helper.raises(function()
      config.settings({}, env { DASHSCOPE_API_KEY = "k", DASHSCOPE_HTTP_BASE_URL = "https://h/v1\n" })
    end)
    assert.truthy(msg:find("env DASHSCOPE_HTTP_BASE_URL must not contain CR, LF", 1, true), msg)
  end)

  it("refuses a query or a fragment, and anything but http:// or https://", function()
    for _, base in ipairs { "https://h/api/v1#x", "https://h/api/v1?a=b", "https://h/api/v1?" } do
      local msg = helper.raises(function() new(base) end)
      assert.truthy(msg:find("field 'base_url' must not have a ?query or #fragment", 1, true), msg)
    end
    for _, base in ipairs { "ftp://h/api", "oss://h/api", "file:///etc/passwd", "h/api/v1", "http://", "http:/h/api",
                            "https:///api/v1" } do
      local msg = helper.raises(function() new(base) end)
      assert.truthy(msg:find("field 'base_url' must be an http:// or https:// URL", 1, true), base .. ": " .. msg)
    end
  end)

  it("is plain http:// only to a loopback host as libcurl parses it (127.0.0.0/8, [::1], localhost)", function()
    for _, base in ipairs { "http://127.1.2.3:9/api/v1", "http://[::1]:9/api/v1", "http://localhost:9/api/v1",
                            "http://LocalHost:9/api/v1", "http://127.1:9/api/v1", "http://[0:0::1]:9/api/v1" } do
      assert.are.equal(base, new(base).base_url)
    end
    for _, base in ipairs { "http://127.0.0.1.evil.example/api/v1", "http://128.0.0.1/api/v1",
                            "http://[::ffff:127.0.0.1]/api/v1", "http://localhost.evil.example/", "http://0.0.0.0/" } do
      local msg = helper.raises(function() new(base) end)
      assert.truthy(msg:find("which would send the API key unencrypted", 1, true), base .. ": " .. msg)
      assert(new(base, { allow_http = true }))
    end
  end)

  it("keeps the base as the client sends it, trailing slashes stripped, and reaches the server", function()
    local port = API:match(":(%d+)$")
    local c = new("http://localhost:" .. port .. "/api/v1//")
    assert.are.equal("http://localhost:" .. port .. "/api/v1", c.base_url)
    assert.are.equal("UNKNOWN", assert(c:task("no-such-task"):poll()))
    local log = helper.log()
    assert.are.equal(1, #log)
    assert.are.equal("/api/v1/tasks/no-such-task", log[1].path)
    c:close()
  end)
end)

-- A getPolicy answer (docs/protocol.md §8.2) naming `host` as its upload host.
local function policy_body(host)
  return helper.json.encode { request_id = "r-policy", data = {
    policy = "cG9saWN5", signature = "c2ln", upload_dir = "dashscope-instant/x/2026-01-01/y", upload_host = host,
    expire_in_seconds = 300, max_file_size_mb = 100, capacity_limit_mb = 999999,
    oss_access_key_id = "LTAItestaccesskey", x_oss_object_acl = "private", x_oss_forbid_overwrite = "true" } }
end

describe("the upload host a policy names", function()
  local file
  setup(function()
    file = os.tmpname() .. ".png"
    helper.write_file(file, "\137PNG not really")
  end)
  teardown(function() os.remove(file) end)

  it("is used only when it is an http(s) URL without credentials: else nil, err and no upload", function()
    for _, host in ipairs { "http://u:p@" .. UPLOAD, "http://" .. UPLOAD .. "@" .. UPLOAD, "ftp://" .. UPLOAD,
                            "file:///tmp/x", "http://" .. UPLOAD .. "/\r\nX-Evil: 1", "//" .. UPLOAD .. "/",
                            "http://" .. UPLOAD .. " /" } do
      helper.reset()
      helper.faults { { match = "upload", kind = "status", status = 200, body = policy_body(host),
                        content_type = "application/json", count = 10 } }
      local c = helper.client { max_retries = 0 }
      local url, err = c:upload("liveportrait", file)
      assert.is_nil(url, host)
      assert.are.equal("BadResponse", err.code)
      assert.truthy(tostring(err):find("upload_host", 1, true), tostring(err))
      for _, r in ipairs(helper.log()) do
        assert.are.equal("api", r.host, host) -- the getPolicy only: nothing went to the upload host
      end
      c:close()
    end
  end)
end)

-- A SUCCEEDED task answer (docs/protocol.md §4.1) whose result URL is `video_url`.
local function succeeded_body(video_url)
  return helper.json.encode { request_id = "r-q", output = {
    task_id = "t-url", task_status = "SUCCEEDED", video_url = video_url,
    submit_time = "2026-01-01 00:00:00.000", scheduled_time = "2026-01-01 00:00:00.100",
    end_time = "2026-01-01 00:00:01.000" }, usage = { video_duration = 1 } }
end

describe("a result URL", function()
  it("is fetched only when it is an http(s) URL without credentials: else NoVideo and no request", function()
    local path = os.tmpname() .. ".mp4"
    for _, video in ipairs { "http://u:p@" .. RESULTS .. "/results/t-url.mp4",
                             "http://" .. RESULTS .. "@" .. RESULTS .. "/results/t-url.mp4",
                             "ftp://" .. RESULTS .. "/results/t-url.mp4", "file:///etc/passwd", "/etc/passwd",
                             "http://" .. RESULTS .. "/results/t-url.mp4\r\nX-Evil: 1", "", 42 } do
      helper.reset()
      helper.faults { { match = "query", kind = "status", status = 200, body = succeeded_body(video),
                        content_type = "application/json", count = 10 } }
      local c = helper.client { max_retries = 0 }
      local done, err = c:task("t-url"):download(path)
      assert.is_nil(done, tostring(video))
      assert.are.equal("NoVideo", err.code, tostring(err))
      assert.are.equal("t-url", err.task_id)
      for _, r in ipairs(helper.log()) do
        assert.are.equal("api", r.host, tostring(video)) -- the status query only
      end
      assert.is_nil(helper.read_file(path))
      c:close()
    end
  end)
end)

describe("Retry-After", function()
  local function http_date(t, format)
    return os.date(format or "!%a, %d %b %Y %H:%M:%S GMT", t)
  end

  it("reads HTTP-dates in the three forms of RFC 9110 with libcurl's date parser", function()
    local now = os.time()
    for _, text in ipairs { http_date(now + 60), http_date(now + 60, "!%A, %d-%b-%y %H:%M:%S GMT"),
                            http_date(now + 60, "!%a %b %e %H:%M:%S %Y") } do
      local secs = http.retry_after(text)
      assert.truthy(secs and secs >= 55 and secs <= 61, text .. " -> " .. tostring(secs))
    end
    assert.are.equal(0, http.retry_after(http_date(now - 3600)))
    assert.are.equal(120, http.retry_after("120"))
    assert.are.equal(7, http.retry_after(" 7 "))
  end)

  it("never raises, whatever the server sends, and is never negative or infinite", function()
    local hostile = { "", "junk", "-5", "1e5", "0x10", "\0", "Fri, 31 Dec 9999 23:59:59 GMT",
                      "Fri, 31 Dec 99999 23:59:59 GMT", "Thu, 01 Jan 1970 00:00:00 GMT", ("9"):rep(400),
                      "Mon, 32 Foo 2026 25:61:61 GMT", ("Mon, "):rep(1000), "\255\254", 42, {}, true }
    for _, v in ipairs(hostile) do
      local ok, secs = pcall(http.retry_after, v)
      assert.truthy(ok, secs)
      if secs ~= nil then
        assert.truthy(secs >= 0 and secs < math.huge, tostring(v))
      end
    end
    assert.is_nil(http.retry_after("junk"))
  end)
end)
