-- The example scripts run as a user runs them (a separate process of the interpreter under test,
-- $LUA, lua5.4 by default; the key and base URL from the environment), here against the local
-- server, so they cannot rot.
local helper = require("spec.support.helper")

local LUA = os.getenv("LUA") or "lua5.4"

-- The exit status is echoed: on Lua 5.1 and LuaJIT a popen'ed file's close() does not return it.
local function run_example(args)
  local cmd = ("DASHSCOPE_HTTP_BASE_URL=%s DASHSCOPE_API_KEY=%s %s %s 2>&1; echo \"exit status $?\""):format(
    helper.BASE_URL, helper.KEY, LUA, args)
  local p = assert(io.popen(cmd))
  local out = p:read("*a")
  p:close()
  local status = tonumber(out:match("exit status (%d+)%s*$"))
  return status == 0, (out:gsub("exit status %d+%s*$", ""))
end

describe("the examples", function()
  before_each(function() helper.reset() end)

  for _, case in ipairs {
    { "examples/videoretalk.lua https://example.com/v.mp4 https://example.com/a.wav" },
    { "examples/emoji.lua" },
    { "examples/liveportrait.lua https://example.com/f.png https://example.com/a.wav" },
  } do
    it("run " .. case[1]:match("^%S+") .. " to a video URL, printing statuses and the result", function()
      local ok, out = run_example(case[1])
      assert.is_true(ok, out)
      assert.truthy(out:find("submitted ", 1, true), out)
      assert.truthy(out:find("  PENDING ", 1, true), out)
      assert.truthy(out:find('status = "SUCCEEDED"', 1, true), out)
      assert.truthy(out:find("video: http://127.0.0.1:", 1, true), out)
    end)
  end

  it("detect the face, then download the video, when emoji.lua is given a local photo and a path", function()
    local photo, out = os.tmpname(), os.tmpname()
    local f = assert(io.open(photo, "wb"))
    f:write("JPEG")
    f:close()
    os.remove(out)
    local ok, text = run_example(("examples/emoji.lua '%s' mengwa_kaixin '%s'"):format(photo, out))
    assert.is_true(ok, text)
    assert.truthy(text:find("saved: " .. out, 1, true), text)
    local video = assert(io.open(out, "rb"))
    assert.are.equal(65536, #video:read("*a"))
    video:close()
    os.remove(photo)
    os.remove(out)
  end)

  it("say how to call them when an argument is missing", function()
    local ok, out = run_example("examples/videoretalk.lua")
    assert.is_falsy(ok)
    assert.truthy(out:find("usage: videoretalk.lua VIDEO_URL AUDIO_URL", 1, true), out)
  end)

  it("report a service failure on stderr with a non-zero exit", function()
    local ok, out = run_example("examples/liveportrait.lua https://example.com/f.png https://example.com/__fail__.wav")
    assert.is_falsy(ok)
    assert.truthy(out:find("task failed: InvalidFile.Content", 1, true), out)
  end)
end)
