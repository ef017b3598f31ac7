-- The API key in no output (issue 9, finding 6): a server that quotes the key back, in an error's
-- code, message or request id, in a FAILED task's code and message, anywhere in a result, a task
-- list or a detector's answer, even JSON-escaped, gets it shown nowhere: not in tostring(err), any
-- field of err, task:outcome(), task:result(), each_done / wait_all, or what the CLI prints.
local helper = require("spec.support.helper")

local KEY = helper.KEY
local LUA = os.getenv("LUA") or "lua5.4"
local FAST = { durations = { pending = 0, pre_processing = 0, running = 0.02, post_processing = 0 },
               concurrency = 0 }

local fields = helper.liveportrait_fields

-- Every string reachable from `value` (values and keys, at any depth, metatables aside), and the
-- tostring of every table that has one.
local function strings(value, out, seen)
  out, seen = out or {}, seen or {}
  if type(value) == "string" then
    out[#out + 1] = value
  elseif type(value) == "table" and not seen[value] then
    seen[value] = true
    local mt = getmetatable(value)
    if mt and mt.__tostring then out[#out + 1] = tostring(value) end
    for k, v in pairs(value) do
      strings(k, out, seen)
      strings(v, out, seen)
    end
  end
  return out
end

-- Fails naming where the key shows in any of the values given.
local function assert_no_key(...)
  for i = 1, select("#", ...) do
    for _, s in ipairs(strings((select(i, ...)))) do
      assert(not s:find(KEY, 1, true), "the key shows in " .. s)
    end
  end
end

-- The key as a JSON string written with an escape (\u002d for "-"): the decoded text is the key.
local ESCAPED = KEY:gsub("%-", "\\u002d")

local function quoting_error(status)
  return { kind = "status", status = status or 400, content_type = "application/json",
    body = '{"code":"Bad' .. KEY .. '","message":"your key ' .. ESCAPED .. ' is wrong","request_id":"'
      .. KEY .. '","extra":{"deep":["' .. KEY .. '"]}}' }
end

describe("the key quoted back by the server", function()
  before_each(function() helper.reset(FAST) end)

  it("shows in no field of a query's error, nor its tostring", function()
    local client = helper.client()
    local f = quoting_error(400)
    f.match = "query"
    helper.faults { f }
    local t = client:task("some-task")
    local status, err = t:poll()
    assert.is_nil(status)
    assert.are.equal("Bad<api-key>", err.code)
    assert.are.equal("your key <api-key> is wrong", err.message)
    assert.are.equal("<api-key>", err.request_id)
    assert_no_key(err, tostring(err), t:outcome())
  end)

  it("shows in no field of a submit's error (a 5xx: the task may exist)", function()
    local client = helper.client { max_retries = 0 }
    local f = quoting_error(500)
    f.match = "submit"
    helper.faults { f }
    local t, err = client:liveportrait(fields())
    assert.is_nil(t)
    assert.truthy(err.message:find("<api-key>", 1, true))
    assert_no_key(err, tostring(err))
  end)

  it("shows in no field of a FAILED task's error, outcome or result, nor in wait_all/each_done", function()
    helper.reset { durations = FAST.durations, concurrency = 0,
                   outcome = { status = "FAILED", code = "Bad." .. KEY, message = "key " .. KEY .. " refused" } }
    local client = helper.client()
    local a = assert(client:liveportrait(fields(1)))
    local b = assert(client:liveportrait(fields(2)))
    local result, err = a:wait()
    assert.is_nil(result)
    assert.are.equal("Bad.<api-key>", err.code)
    assert.are.equal("key <api-key> refused", err.message)
    assert_no_key(err, tostring(err), { a:outcome() }, a:result(), tostring(a))
    local results, errs = client:wait_all { a, b }
    assert_no_key(results, errs)
    for t, r, e in client:each_done { a, b } do assert_no_key(t:result(), r, e, tostring(e)) end
  end)

  it("shows nowhere in a result, its raw output and usage, escaped or not", function()
    local client = helper.client()
    local t = assert(client:liveportrait(fields()))
    local body = '{"request_id":"' .. KEY .. '","output":{"task_id":"' .. t.id .. '","task_status":"SUCCEEDED",'
      .. '"results":{"video_url":"https://example.com/' .. ESCAPED .. '.mp4"},"note":{"' .. KEY .. '":["'
      .. KEY .. '",{"deeper":"' .. ESCAPED .. '"}]}},"usage":{"key":"' .. KEY .. '"}}'
    helper.faults { { match = "query", kind = "status", status = 200, body = body, content_type = "application/json" } }
    local result = assert(t:wait())
    assert.are.equal("https://example.com/<api-key>.mp4", result.video_url)
    assert.are.equal("<api-key>", result.request_id)
    assert.are.same({ "<api-key>", { deeper = "<api-key>" } }, result.output.note["<api-key>"])
    assert_no_key(result, t:result(), { t:outcome() }, tostring(t))
  end)

  it("shows in no task list item, and no detector's refusal", function()
    local client = helper.client()
    local list = '{"request_id":"' .. KEY .. '","total":1,"total_page":1,"page_no":1,"page_size":10,'
      .. '"data":[{"task_id":"' .. KEY .. '","status":"' .. ESCAPED .. '","model_name":"x"}]}'
    helper.faults { { match = "list", kind = "status", status = 200, body = list, content_type = "application/json" } }
    local page = assert(client:tasks())
    assert_no_key(page)
    helper.faults { { match = "detect", kind = "status", status = 200, content_type = "application/json",
      body = '{"request_id":"r1","output":{"code":"' .. KEY .. '","message":"' .. ESCAPED .. '"}}' } }
    local t, err = client:emoji { image_url = "https://example.com/face.png", driven_id = "mengwa_kaixin" }
    assert.is_nil(t)
    assert.are.equal("<api-key>", err.code)
    assert_no_key(err, tostring(err))
  end)

  it("shows in no submit answer: a task id quoting the key is no task id", function()
    local client = helper.client()
    helper.faults { { match = "submit", kind = "status", status = 200, content_type = "application/json",
      body = '{"request_id":"' .. KEY .. '","output":{"task_id":"' .. KEY .. '","task_status":"PENDING"}}' } }
    local t, err = client:liveportrait(fields())
    assert.is_nil(t)
    assert.are.equal("BadResponse", err.code)
    assert.truthy(err.message:find("may", 1, true)) -- the task may exist
    assert_no_key(err, tostring(err))
  end)

  it("is hidden from every string field of any error value, however it was made", function()
    local _ = helper.client() -- a client holds the key: from now on every error is scrubbed of it
    local errors = require("dashscope.errors")
    local err = errors.new { code = KEY, message = "m " .. KEY, request_id = KEY, task_id = KEY,
                             detect = { message = KEY, nested = { KEY } } }
    assert_no_key(err, tostring(err))
    err.message = "set later: " .. KEY
    assert_no_key(tostring(err))
  end)
end)

describe("the CLI, given a server that quotes the key", function()
  before_each(function() helper.reset(FAST) end)

  local function quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

  -- Runs bin/dashscope ARGS: its stdout and stderr together.
  local function cli(args)
    local words = {}
    for i, a in ipairs(args) do words[i] = quote(a) end
    local p = assert(io.popen(("env DASHSCOPE_API_KEY=%s DASHSCOPE_HTTP_BASE_URL=%s %s bin/dashscope %s 2>&1 </dev/null")
      :format(quote(KEY), quote(helper.BASE_URL), LUA, table.concat(words, " "))))
    local out = p:read("*a")
    p:close()
    return out
  end

  it("prints it nowhere, with --json or without, for an error or a FAILED task", function()
    for _, json in ipairs { false, true } do
      local f = quoting_error(403)
      f.match = "query"
      helper.faults { f }
      local out = cli { "status", "some-task", json and "--json" or nil }
      assert.truthy(out:find("<api-key>", 1, true), out)
      assert.is_nil(out:find(KEY, 1, true), out)
    end
    helper.reset { durations = FAST.durations, concurrency = 0,
                   outcome = { status = "FAILED", code = "Bad." .. KEY, message = "key " .. KEY .. " refused" } }
    for _, json in ipairs { false, true } do
      local out = cli { "liveportrait", "--image", "https://example.com/f.png", "--audio",
                        "https://example.com/a.wav", json and "--json" or nil }
      assert.truthy(out:find("<api-key>", 1, true), out)
      assert.is_nil(out:find(KEY, 1, true), out)
      local id = helper.control("GET", "/tasks")[1].task_id
      out = cli { "status", id, json and "--json" or nil }
      assert.truthy(out:find("<api-key>", 1, true), out)
      assert.is_nil(out:find(KEY, 1, true), out)
      helper.reset { durations = FAST.durations, concurrency = 0,
                     outcome = { status = "FAILED", code = "Bad." .. KEY, message = "key " .. KEY .. " refused" } }
    end
  end)
end)

describe("core.scrub", function()
  local core = require("dashscope.core")

  it("hides the key of every client of the Lua state, in strings, values and keys, at any depth", function()
    local _, _ = helper.client(), helper.client { api_key = "k1" } -- a key shorter than its mask
    assert.are.equal("a <api-key> b <api-key><api-key>", core.scrub("a " .. KEY .. " b k1k1"))
    local t = { [KEY] = { "x" .. KEY, { y = "k1" } }, plain = "as is", n = 1 }
    t.self = t -- a cycle is walked once
    assert.are.equal(t, core.scrub(t))
    assert.is_nil(t[KEY])
    assert.are.same({ "x<api-key>", { y = "<api-key>" } }, t["<api-key>"])
    assert.are.equal("as is", t.plain)
    assert.are.equal(t, t.self)
    assert.are.equal(42, core.scrub(42))
  end)

  it("forgets the key of a closed client, and refuses a table nested deeper than it walks", function()
    local c = helper.client { api_key = "sk-closed-key" }
    assert.are.equal("<api-key>", core.scrub("sk-closed-key"))
    c:close()
    assert.are.equal("sk-closed-key", core.scrub("sk-closed-key"))
    local deep = {}
    for _ = 1, 1000 do deep = { deep } end
    assert.truthy(helper.raises(function() core.scrub(deep) end):find("nested deeper", 1, true))
  end)

  it("walks a decoded table whose JSON text shows the key, or has an escape that could spell it", function()
    local _ = helper.client()
    for _, source in ipairs { '{"m":"' .. KEY .. '"}', '{"m":"\\u0073k"}' } do
      local t = { m = KEY }
      assert.are.equal(t, core.scrub(t, source))
      assert.are.equal("<api-key>", t.m, source)
    end
    local answer = '{"output":{"task_id":"t-1"}}' -- no key, no escape: no string of it can hold one
    local t = { output = { task_id = "t-1" } }
    assert.are.equal(t, core.scrub(t, answer))
    assert.are.equal("t-1", t.output.task_id)
  end)
end)

describe("core.integers", function()
  local core = require("dashscope.core")

  it("makes every whole float of a decoded value an integer, nested tables included", function()
    local t = core.integers { 212.0, 1.5, { fps = 25.0, list = { 3.0 } }, s = "7", big = 2.0 ^ 70 }
    assert.are.equal(1.5, t[2])
    assert.are.equal("7", t.s)
    assert.are.equal(2.0 ^ 70, t.big)
    if math.type then -- Lua 5.3+: integers of their own; elsewhere every number is a double
      assert.are.equal("integer", math.type(t[1]))
      assert.are.equal("integer", math.type(t[3].fps))
      assert.are.equal("integer", math.type(t[3].list[1]))
      assert.are.equal("float", math.type(t.big))
      assert.are.equal("integer", math.type(core.integers(8.0)))
    end
    assert.are.equal(212, t[1])
    assert.are.equal("x", core.integers("x"))
  end)
end)
