-- dashscope.new checks every option completely (issue 9, finding 12): finite numbers within a
-- sane range, quotas that are real rates, strings the C core would refuse at the first call
-- refused here. Each failure raises at new, at the caller, naming the field and the rule; nothing
-- is sent.
local helper = require("spec.support.helper")
local dashscope = helper.dashscope
local config = require("dashscope.config")

local function new(opts)
  opts.api_key = opts.api_key or helper.KEY
  opts.base_url = opts.base_url or helper.BASE_URL
  local client = dashscope.new(opts) -- not a tail call: Lua 5.1 would drop this frame from errors
  return client
end

local function refused(opts, field, rule)
  local msg = helper.raises(function() new(opts) end)
  assert.truthy(msg:find("options_spec%.lua:%d+: dashscope%.new: "), msg)
  assert.truthy(msg:find("field '" .. field .. "'", 1, true), msg)
  if rule then
    assert.truthy(msg:find(rule, 1, true), msg)
  end
  return msg
end

local NUMERIC = {}
for _, rule in ipairs(config.OPTIONS) do
  if rule.type == "number" or rule.type == "integer" then
    NUMERIC[#NUMERIC + 1] = rule
  end
end

describe("dashscope.new's numeric options", function()
  before_each(function() helper.reset() end)

  it("all have a range with a maximum", function()
    assert.truthy(#NUMERIC >= 11)
    for _, rule in ipairs(NUMERIC) do
      assert.truthy(rule.min and rule.max, rule.name)
    end
  end)

  for _, rule in ipairs(NUMERIC) do
    it("refuse NaN, the infinities and huge values for " .. rule.name .. ", naming it and its range", function()
      local range = rule.type == "integer" and "must be an integer from " or "must be a number from "
      for _, v in ipairs { 0 / 0, math.huge, -math.huge, 2 ^ 53 + 2, 2 ^ 60, 1e300, -1e300, rule.max * 2 + 1 } do
        local opts = { [rule.name] = v }
        if rule.name == "poll_interval" then opts.max_poll_interval = 86400 end
        local msg = refused(opts, rule.name, range .. rule.min .. " to " .. rule.max)
        assert.truthy(msg:find("(got ", 1, true), msg)
      end
    end)

    it("take " .. rule.name .. " at both ends of its range", function()
      for _, v in ipairs { rule.min, rule.max } do
        local opts = { [rule.name] = v }
        if rule.name == "poll_interval" then opts.max_poll_interval = 86400 end
        if rule.name == "max_poll_interval" then opts.poll_interval = v end
        new(opts):close()
      end
    end)
  end

  it("refuse max_body over what the transport takes at new, not at the first call", function()
    refused({ max_body = 2 ^ 53 + 2 }, "max_body")
    refused({ max_body = 2147483648 + 1 }, "max_body")
    local c = new { max_body = 2147483648 }
    assert.are.equal("UNKNOWN", assert(c:task("t-max-body"):poll()))
    c:close()
  end)

  it("send nothing when refused", function()
    pcall(new, { timeout = 0 / 0 })
    pcall(new, { call_timeout = math.huge })
    assert.are.equal(0, #helper.log())
  end)
end)

describe("dashscope.new's rate_limits", function()
  it("refuse a quota that is NaN, infinite, zero, negative or too small to ever send", function()
    for _, v in ipairs { 0 / 0, math.huge, -math.huge, 0, -1, 1e-300, 1e300, "5" } do
      local msg = refused({ rate_limits = { tasks = v } }, "rate_limits", "finite numbers from 0.001 to 1000000")
      assert.truthy(msg:find("(tasks = ", 1, true), msg)
      msg = refused({ rate_limits = { submit = { liveportrait = v } } }, "rate_limits", "finite numbers")
      assert.truthy(msg:find('(submit["liveportrait"] = ', 1, true), msg)
    end
    refused({ rate_limits = { submit = { [1] = 5 } } }, "rate_limits", "must be false, true or")
    refused({ rate_limits = 0 / 0 }, "rate_limits", "must be false, true or")
  end)

  it("take real rates, false and true", function()
    new({ rate_limits = { tasks = 0.001, submit = { liveportrait = 1000000 } } }):close()
    new({ rate_limits = false }):close()
    new({ rate_limits = true }):close()
  end)
end)

describe("dashscope.new's strings", function()
  it("refuse CR, LF and NUL in what goes into a header", function()
    for _, field in ipairs { "workspace", "user_agent", "api_key" } do
      for _, bad in ipairs { "a\rb", "a\nb", "a\0b" } do
        refused({ [field] = bad }, field, "must not contain CR, LF or NUL")
      end
    end
  end)

  it("refuse control characters and NUL in ca_file, ca_path and user_agent", function()
    for _, field in ipairs { "ca_file", "ca_path" } do
      for _, bad in ipairs { "/etc/ssl/a\0b.pem", "/etc/ssl/a\nb.pem", "/etc/ssl/a\tb.pem" } do
        refused({ [field] = bad }, field, "must not contain control characters or NUL")
      end
    end
    refused({ user_agent = "app\t1.0" }, "user_agent", "must not contain control characters or NUL")
  end)
end)
