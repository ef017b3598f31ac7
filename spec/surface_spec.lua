-- What tools (the CLI, an editor plugin) build on, beside the calls themselves: misuse as data,
-- the contracts as tables, the key read from a file by the library, and a tick while waiting.
local helper = require("spec.support.helper")
local dashscope = helper.dashscope

local function caught(fn)
  local ok, err = pcall(fn)
  assert.is_false(ok, "expected a misuse to be raised")
  return err
end

describe("a misuse", function()
  local client
  before_each(function()
    helper.reset(helper.FAST)
    client = helper.client()
  end)
  after_each(function() client:close() end)

  it("carries the function, the field and the rule as data, and reads as the message at the caller's line", function()
    local e = caught(function() client:liveportrait { image_url = "https://example.com/f.png", audio_url = 7 } end)
    assert.is_true(dashscope.is_misuse(e))
    assert.are.equal("liveportrait", e.what)
    assert.are.equal("audio_url", e.field)
    assert.are.equal("invalid", e.rule)
    assert.truthy(e.message:find("^liveportrait: field 'audio_url' must be"))
    assert.truthy(tostring(e):find("^spec/surface_spec%.lua:%d+: liveportrait: field 'audio_url'"))
    -- code written for string errors still reads it
    assert.truthy(e:find("audio_url", 1, true))
    assert.truthy(("x: " .. e):find("^x: spec/surface_spec"))
  end)

  it("names a missing field as required and an unknown one as unknown", function()
    local missing = caught(function() client:liveportrait { image_url = "https://example.com/f.png" } end)
    assert.are.same({ "audio_url", "required" }, { missing.field, missing.rule })
    local unknown = caught(function() client:liveportrait { image_url = "https://example.com/f.png", audio = "x" } end)
    assert.are.same({ "audio", "unknown" }, { unknown.field, unknown.rule })
    assert.truthy(unknown.message:find("did you mean 'audio_url'", 1, true))
  end)

  it("of a closed client has the rule closed, and a colon forgotten the rule usage", function()
    local other = helper.client()
    other:close()
    local closed = caught(function() other:step() end)
    assert.are.same({ "client:step", "closed" }, { closed.what, closed.rule })
    local colon = caught(function() client.liveportrait({}) end)
    assert.are.equal("usage", colon.rule)
    assert.truthy(tostring(colon):find("call liveportrait with a colon", 1, true))
  end)

  it("points at the user's line from a callback the library runs", function()
    local t = assert(client:liveportrait(helper.liveportrait_fields()))
    local seen
    client:watch(t, { on_done = function() seen = caught(function() client:wait_all(t) end) end })
    assert(t:wait())
    client:step()
    assert.truthy(tostring(seen):find("^spec/surface_spec%.lua:%d+: wait_all: expects an array of tasks"))
  end)
end)

describe("the contracts as data", function()
  it("are public: the models, the client options and their defaults, the task-list filter", function()
    assert.are.equal("table", type(dashscope.models.liveportrait.fields))
    assert.is_true(dashscope.models.liveportrait_detect.synchronous)
    local names = {}
    for _, rule in ipairs(dashscope.options) do names[rule.name] = true end
    assert.is_true(names.api_key and names.api_key_file and names.call_timeout)
    assert.are.equal(300, dashscope.defaults.call_timeout)
    assert.are.equal("status", dashscope.task_filter[1].name)
    assert.are.equal(" from 1 to 100", dashscope.range_text { min = 1, max = 100 })
    assert.are.equal("audio_url", dashscope.nearest("audio_ur", { "image_url", "audio_url" }))
  end)
end)

describe("api_key_file", function()
  local dir = os.tmpname()
  before_each(function() os.remove(dir) end)
  after_each(function() os.remove(dir) end)

  it("reads the key from a file, trimmed", function()
    helper.write_file(dir, "  " .. helper.KEY .. "\n")
    local client = dashscope.new { api_key_file = dir, base_url = helper.BASE_URL }
    helper.reset(helper.FAST)
    assert(client:tasks())
    client:close()
  end)

  it("refuses a missing or empty file, and both ways at once, naming the field", function()
    local e = caught(function() dashscope.new { api_key_file = dir, base_url = helper.BASE_URL } end)
    assert.are.same({ "api_key_file", "invalid" }, { e.field, e.rule })
    helper.write_file(dir, " \n")
    e = caught(function() dashscope.new { api_key_file = dir, base_url = helper.BASE_URL } end)
    assert.are.equal("api_key_file", e.field)
    helper.write_file(dir, "k")
    e = caught(function() dashscope.new { api_key = "k", api_key_file = dir, base_url = helper.BASE_URL } end)
    assert.are.same({ "api_key_file", "usage" }, { e.field, e.rule })
  end)
end)

describe("task:wait's on_tick", function()
  it("is called every tick while the task runs, with its progress, and not after its end", function()
    helper.reset { durations = { pending = 0, pre_processing = 0, running = 0.6, post_processing = 0 }, concurrency = 0 }
    local client = helper.client()
    local t = assert(client:liveportrait(helper.liveportrait_fields()))
    local ticks = {}
    local result = assert(t:wait { tick = 0.05, on_tick = function(task, p)
      assert.are.equal(t, task)
      assert.is_false(task:ended())
      ticks[#ticks + 1] = p
    end })
    assert.are.equal("SUCCEEDED", result.status)
    assert.truthy(#ticks >= 3, "ticks: " .. #ticks)
    assert.truthy(ticks[#ticks].elapsed > ticks[1].elapsed)
    client:close()
  end)

  it("refuses a tick below 0.01 s", function()
    local client = helper.client()
    local t = client:task("abc")
    local e = caught(function() t:wait { tick = 0, on_tick = function() end } end)
    assert.are.same({ "task:wait", "tick" }, { e.what, e.field })
    client:close()
  end)
end)
