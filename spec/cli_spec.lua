-- The command-line tool, bin/dashscope, run as a user runs it: a child process of the interpreter
-- under test ($LUA, lua5.4 by default), with the key and the service root in its environment,
-- against the local test server. Its stdout and stderr go to files, so it never sees a terminal
-- (plain progress lines), except in the one case run under script(1).
local helper = require("spec.support.helper")
local json = helper.json
local models = helper.dashscope.models

local LUA = os.getenv("LUA") or "lua5.4"
local SCRIPT = "bin/dashscope"

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local read, write = helper.read_file, helper.write_file

-- A shell command's output; `echo $?` at its end gives the status on every Lua (5.1's
-- os.execute returns a number, 5.2+ three values, and a popen'ed file's close says nothing on 5.1).
local function shell(command)
  local p = assert(io.popen(command .. "; echo \"status $?\""))
  local out = p:read("*a")
  p:close()
  local status = tonumber(out:match("status (%d+)%s*$"))
  return status, (out:gsub("status %d+%s*$", ""))
end

local tmp -- a fresh directory for each test's files

-- The environment of a run: the test key and server, unless `env` says otherwise.
local function env_prefix(env)
  local vars = { DASHSCOPE_API_KEY = helper.KEY, DASHSCOPE_HTTP_BASE_URL = helper.BASE_URL }
  for k, v in pairs(env or {}) do vars[k] = v end
  local words = { "env" }
  for _, k in ipairs { "DASHSCOPE_API_KEY", "DASHSCOPE_HTTP_BASE_URL", "DASHSCOPE_API_KEY_FILE_PATH", "HOME" } do
    if vars[k] then words[#words + 1] = k .. "=" .. quote(vars[k]) end
  end
  return table.concat(words, " ")
end

--- Runs `dashscope ARGS...` (each argument quoted): exit status, stdout, stderr.
local function cli(args, env)
  local words = {}
  for i, a in ipairs(args) do words[i] = quote(a) end
  local out, err = tmp .. "/stdout", tmp .. "/stderr"
  local status, rest = shell(("%s %s %s %s >%s 2>%s </dev/null"):format(env_prefix(env), LUA, SCRIPT,
    table.concat(words, " "), quote(out), quote(err)))
  assert(rest == "", rest)
  return status, read(out), read(err)
end

-- Words of a text with its line breaks and indentation made single spaces (help is wrapped).
local function flat(text)
  return (text:gsub("%s+", " "))
end

local function contains(text, fragment)
  return text:find(fragment, 1, true) ~= nil
end

-- The fake video the server serves: an MP4 ftyp box, then (i * 31 + 7) mod 256 per byte.
local function server_video(size)
  local head = "\0\0\0\32ftypisom\0\0\2\0isomiso2avc1mp41"
  local bytes = {}
  for i = 0, size - #head - 1 do bytes[#bytes + 1] = string.char((i * 31 + 7) % 256) end
  return (head .. table.concat(bytes)):sub(1, size)
end

-- Short jobs: a task is PENDING for `pending` seconds, then runs briefly.
local function fast(extra)
  local config = { durations = { pending = 0, pre_processing = 0.01, running = 0.05, post_processing = 0.01 } }
  for k, v in pairs(extra or {}) do config[k] = v end
  helper.reset(config)
end

local function inputs()
  local image, audio = tmp .. "/face.png", tmp .. "/voice.wav"
  write(image, "\137PNG\r\n\26\n fake portrait")
  write(audio, "RIFF fake speech")
  return image, audio
end

local function submits()
  return #helper.requests("/video-synthesis")
end

describe("bin/dashscope", function()
  before_each(function()
    fast() -- first: should the server fail, no directory is left behind
    local status, out = shell("mktemp -d \"${TMPDIR:-/tmp}/dashscope-cli.XXXXXX\"")
    assert.are.equal(0, status)
    tmp = out:match("^%s*(.-)%s*$")
  end)

  after_each(function()
    if tmp and tmp:find("dashscope%-cli%.") then shell("rm -rf " .. quote(tmp)) end
    tmp = nil
  end)

  describe("--help", function()
    it("lists every command, the global options and the exit statuses", function()
      local status, out = cli { "--help" }
      assert.are.equal(0, status)
      out = flat(out)
      for _, word in ipairs { "liveportrait", "videoretalk", "emoji", "detect MODEL", "status ID", "wait ID",
                              "cancel ID", "list", "--api-key-file PATH", "--base-url URL", "--json",
                              "--no-wait", "--timeout S", "-o, --output PATH", "--overwrite", "-q, --quiet",
                              "Exit status", "2 bad usage", "3 the service or the network failed",
                              "4 the job ended without success" } do
        assert.truthy(contains(out, word), word .. " missing from:\n" .. out)
      end
    end)

    for method, contract in pairs(models) do
      local command = contract.synchronous and { "detect", (method:gsub("_detect$", "")) } or { method }
      it("of " .. table.concat(command, " ") .. " lists every field of the contract, with its doc", function()
        local args = { command[1], command[2] }
        args[#args + 1] = "--help"
        local status, out = cli(args)
        assert.are.equal(0, status)
        out = flat(out)
        for _, rule in ipairs(contract.fields) do
          local name = rule.name
          if rule.type == "url" then name = name:gsub("_url$", "") end
          local option = "--" .. name:gsub("_", "-")
          assert.truthy(contains(out, option .. " "), option .. " missing from:\n" .. out)
          assert.truthy(contains(out, flat(rule.doc)), rule.doc .. " missing from:\n" .. out)
          for _, v in ipairs(rule.values or {}) do
            assert.truthy(contains(out, v), v .. " missing from:\n" .. out)
          end
        end
      end)
    end

    it("of the task commands says what they take", function()
      for _, case in ipairs { { "status", "status ID" }, { "wait", "wait ID" }, { "cancel", "cancel ID" },
                              { "list", "--page-size N" }, { "detect", "MODEL" } } do
        local status, out = cli { case[1], "-h" }
        assert.are.equal(0, status)
        assert.truthy(contains(out, case[2]), out)
      end
    end)
  end)

  it("runs a liveportrait job with local files to a saved video, in plain lines when not on a terminal", function()
    local image, audio = inputs()
    local path = tmp .. "/out.mp4"
    local status, out, err = cli { "liveportrait", "--image", image, "--audio", audio, "--video-fps", "25",
                                   "--paste-back", "false", "-o", path }
    assert.are.equal(0, status, err)
    assert.are.equal(path .. "\n", out)
    assert.are.equal(server_video(65536), read(path))
    -- both files went up (to the upload host), and the submit named them as oss:// URLs
    local sizes = {}
    for _, u in ipairs(helper.control("GET", "/uploads")) do sizes[#sizes + 1] = u.size end
    table.sort(sizes)
    assert.are.same({ #read(audio), #read(image) }, sizes)
    local submit = helper.requests("/video-synthesis")[1]
    assert.truthy(submit.json.input.image_url:find("^oss://"))
    assert.are.same({ video_fps = 25, paste_back = false }, submit.json.parameters)
    -- plain lines: no carriage return, no terminal escapes
    local id = err:match("submitted task ([%w%-]+)")
    assert.truthy(id, err)
    assert.truthy(contains(err, "task " .. id .. ": SUCCEEDED"), err)
    assert.truthy(contains(err, "saved " .. path), err)
    assert.falsy(err:find("[\r\27]"), err)
    assert.falsy(contains(out .. err, helper.KEY))
  end)

  it("turns each option's words into its field's type", function()
    local status, out, err = cli { "--quiet", "liveportrait", "--image=https://example.com/f.png", "--audio",
                                   "https://example.com/a.wav", "--template-id", "calm", "--eye-move-freq", "0.25",
                                   "--video-fps=20", "--paste-back", "--head-move-strength", "1", "--no-wait" }
    assert.are.equal(0, status, err)
    assert.truthy(out:find("^[%w%-]+\n$"), out)
    local body = helper.requests("/video-synthesis")[1].json
    assert.are.same({ image_url = "https://example.com/f.png", audio_url = "https://example.com/a.wav" }, body.input)
    assert.are.same({ template_id = "calm", eye_move_freq = 0.25, video_fps = 20, paste_back = true,
                      head_move_strength = 1 }, body.parameters)
  end)

  it("prints the video URL without -o, and the whole result with --json", function()
    local status, out, err = cli { "emoji", "--image", "https://example.com/face.png", "--driven", "mengwa_kaixin" }
    assert.are.equal(0, status, err)
    assert.truthy(out:find("^http://127%.0%.0%.1:%d+/results/[%w%-]+%.mp4%?[^\n]*\n$"), out)

    status, out, err = cli { "videoretalk", "--video", "https://example.com/v.mp4", "--audio",
                             "https://example.com/a.wav", "--json", "-q" }
    assert.are.equal(0, status, err)
    assert.are.equal("", err) -- --quiet: nothing on stderr
    local result = json.decode(out)
    assert.are.equal("SUCCEEDED", result.status)
    assert.are.equal("videoretalk", result.model)
    assert.truthy(result.video_url:find("^http://127%.0%.0%.1:%d+/results/"), out)
    assert.are.equal(result.task_id, result.output.task_id)
  end)

  it("submits with --no-wait, then answers status, wait -o, list and list --json for the task", function()
    local status, out, err = cli { "liveportrait", "--image", "https://example.com/f.png", "--audio",
                                   "https://example.com/a.wav", "--no-wait" }
    assert.are.equal(0, status, err)
    local id = out:match("^([%w%-]+)\n$")
    assert.truthy(id, out)

    status, out = cli { "status", id }
    assert.are.equal(0, status)
    assert.truthy(({ PENDING = true, RUNNING = true, SUCCEEDED = true })[out:match("^(%S+)")], out)

    local path = tmp .. "/later.mp4"
    status, out, err = cli { "wait", id, "-o", path }
    assert.are.equal(0, status, err)
    assert.are.equal(path .. "\n", out)
    assert.are.equal(65536, #read(path))

    status, out = cli { "status", id, "--json" }
    assert.are.equal(0, status)
    assert.are.equal("SUCCEEDED", json.decode(out).status)

    status, out = cli { "list" }
    assert.are.equal(0, status)
    assert.truthy(out:find(id:gsub("%-", "%%-") .. "%s+SUCCEEDED%s+liveportrait"), out)

    status, out = cli { "list", "--json", "--model", "liveportrait", "--status", "SUCCEEDED", "--all" }
    assert.are.equal(0, status)
    local item = json.decode(out:match("^[^\n]+"))
    assert.are.equal(id, item.task_id)
    local list = helper.requests("/tasks?")
    assert.truthy(contains(list[#list].path, "model_name=liveportrait"), list[#list].path)
  end)

  it("cancels a PENDING task, whose status then exits 4", function()
    fast { durations = { pending = 60 } }
    local status, out, err = cli { "liveportrait", "--image", "https://example.com/f.png", "--audio",
                                   "https://example.com/a.wav", "--no-wait" }
    assert.are.equal(0, status, err)
    local id = out:match("^([%w%-]+)\n$")

    status, out, err = cli { "cancel", id }
    assert.are.equal(0, status, err)
    assert.are.equal("CANCELED\n", out)

    status, out = cli { "status", id }
    assert.are.equal(4, status)
    assert.truthy(out:find("^CANCELED\n"), out)

    status, out, err = cli { "cancel", id } -- no longer PENDING: the service refuses
    assert.are.equal(3, status)
    assert.are.equal("", out)
    assert.truthy(contains(err, "UnsupportedOperation"), err)
  end)

  it("stops waiting at --timeout with exit 3 and says how to resume", function()
    fast { durations = { pending = 60 } }
    local _, out = cli { "liveportrait", "--image", "https://example.com/f.png", "--audio",
                         "https://example.com/a.wav", "--no-wait", "-q" }
    local id = out:match("^([%w%-]+)\n$")
    local status, _, err = cli { "wait", id, "--timeout", "0.3" }
    assert.are.equal(3, status, err)
    assert.truthy(contains(err, "WaitTimeout: task still PENDING after waiting 0.3 s"), err)
    assert.truthy(contains(err, "dashscope wait " .. id), err)
  end)

  describe("exits 2 for bad usage, sending nothing", function()
    local function sends_nothing()
      assert.are.same({}, helper.log())
    end

    it("an unknown option, with a suggestion", function()
      local status, out, err = cli { "liveportrait", "--image", "https://example.com/f.png", "--vidoe-fps", "20" }
      assert.are.equal(2, status)
      assert.are.equal("", out)
      assert.truthy(contains(err, "unknown option '--vidoe-fps' (did you mean '--video-fps'?)"), err)
      sends_nothing()
    end)

    it("a value the module's checker refuses, with its message", function()
      local image, audio = inputs()
      local status, _, err = cli { "liveportrait", "--image", image, "--audio", audio, "--video-fps", "99" }
      assert.are.equal(2, status)
      assert.truthy(contains(err, "liveportrait: field 'video_fps' must be an integer from 15 to 30 (got 99)"), err)
      assert.truthy(contains(err, "--video-fps"), err)
      sends_nothing()

      status, _, err = cli { "emoji", "--image", image, "--driven", "mengwa_kaixin", "--face-bbox", "9,2,3,4",
                             "--ext-bbox", "0,0,5,5" }
      assert.are.equal(2, status)
      assert.truthy(contains(err, "field 'face_bbox' must be an array of 4 integers"), err)
      assert.truthy(contains(err, "{9, 2, 3, 4}"), err)
      sends_nothing()
    end)

    it("a missing field, a missing file, an unknown command, a stray argument", function()
      local image = inputs()
      for _, case in ipairs {
        { { "liveportrait", "--image", image }, "field 'audio_url' is required" },
        { { "liveportrait", "--image", tmp .. "/nope.png", "--audio", image }, "nope.png" },
        { { "lsit" }, "unknown command 'lsit' (did you mean 'list'?)" },
        { { "status" }, "missing ID" },
        { { "list", "extra" }, "unexpected argument 'extra'" },
        { { "detect", "wombat", "--image", image }, "unknown MODEL 'wombat'" },
        { { "list", "--page-size", "500" }, "field 'page_size' must be an integer from 1 to 100" },
        { { "liveportrait", "--image", image, "--audio", image, "--no-wait", "-o", tmp .. "/x.mp4" },
          "do not go together" },
      } do
        local status, _, err = cli(case[1])
        assert.are.equal(2, status, table.concat(case[1], " ") .. ": " .. err)
        assert.truthy(contains(err, case[2]), err)
      end
      sends_nothing()
    end)

    it("an -o that exists, unless --overwrite", function()
      local path = tmp .. "/taken.mp4"
      write(path, "mine")
      local status, _, err = cli { "liveportrait", "--image", "https://example.com/f.png", "--audio",
                                   "https://example.com/a.wav", "-o", path }
      assert.are.equal(2, status)
      assert.truthy(contains(err, "exists (--overwrite replaces it)"), err)
      sends_nothing()
      assert.are.equal("mine", read(path))

      status, _, err = cli { "liveportrait", "--image", "https://example.com/f.png", "--audio",
                             "https://example.com/a.wav", "-o", path, "--overwrite" }
      assert.are.equal(0, status, err)
      assert.are.equal(65536, #read(path))
    end)
  end)

  describe("exits 4", function()
    it("for a FAILED job, with the service's code, and the result with --json", function()
      fast { outcome = { status = "FAILED", code = "InvalidFile.Content", message = "no face in the image" } }
      local status, out, err = cli { "liveportrait", "--image", "https://example.com/f.png", "--audio",
                                     "https://example.com/a.wav", "--json" }
      assert.are.equal(4, status, err)
      assert.truthy(contains(err, "FAILED: InvalidFile.Content: no face in the image"), err)
      local result = json.decode(out)
      assert.are.equal("FAILED", result.status)
      assert.are.equal("InvalidFile.Content", result.code)
    end)

    it("for an image a detector refuses, and for an emoji job whose detect refuses it (not submitted)", function()
      local image = inputs()
      local status, out = cli { "detect", "emoji", "--image", image }
      assert.are.equal(0, status)
      assert.truthy(out:find("^passed\n%-%-face%-bbox %d+,%d+,%d+,%d+\n%-%-ext%-bbox %d+,%d+,%d+,%d+\n$"), out)

      fast { detect_outcome = "fail" }
      status, out = cli { "detect", "emoji", "--image", image }
      assert.are.equal(4, status)
      assert.truthy(out:find("^refused: "), out)

      local err
      status, out, err = cli { "emoji", "--image", image, "--driven", "mengwa_kaixin" }
      assert.are.equal(4, status, err)
      assert.are.equal("", out)
      assert.truthy(contains(err, "emoji-detect-v1 refused the image"), err)
      assert.are.equal(0, submits())
    end)

    it("for a task the service does not know", function()
      local status, out = cli { "status", "no-such-task" }
      assert.are.equal(4, status)
      assert.are.equal("UNKNOWN\n", out)
    end)
  end)

  it("takes the boxes detect prints, and then runs no detector", function()
    local status, out = cli { "detect", "emoji", "--image", "https://example.com/face.png", "--json" }
    assert.are.equal(0, status)
    local found = json.decode(out)
    local args = { "emoji", "--image", "https://example.com/face.png", "--driven", "mengwa_kaixin", "--no-wait",
                   "--face-bbox", table.concat(found.face_bbox, ","), "--ext-bbox", table.concat(found.ext_bbox, ",") }
    helper.reset()
    status = cli(args)
    assert.are.equal(0, status)
    assert.are.equal(0, #helper.requests("/face-detect"))
    local input = helper.requests("/video-synthesis")[1].json.input
    assert.are.same(found.face_bbox, input.face_bbox)
    assert.are.same(found.ext_bbox, input.ext_bbox)
  end)

  it("exits 3 on a service failure, never printing the key", function()
    local status, out, err = cli({ "status", "some-task" }, { DASHSCOPE_API_KEY = "sk-wrong-key-0000" })
    assert.are.equal(3, status)
    assert.truthy(contains(err, "InvalidApiKey"), err)
    assert.falsy(contains(out .. err, "sk-wrong-key-0000"))
  end)

  it("reads the key from --api-key-file", function()
    local file = tmp .. "/key"
    write(file, helper.KEY .. "\n")
    local status, out, err = cli({ "status", "some-task", "--api-key-file", file },
      { DASHSCOPE_API_KEY = "", HOME = tmp })
    assert.are.equal(4, status, err) -- UNKNOWN, from an authorised query
    assert.are.equal("UNKNOWN\n", out)
    local _
    status, _, err = cli({ "status", "some-task", "--api-key-file", tmp .. "/none" }, { DASHSCOPE_API_KEY = "" })
    assert.are.equal(2, status)
    assert.truthy(contains(err, "--api-key-file"), err)
  end)

  it("draws a live status line on a terminal", function()
    if shell("command -v script >/dev/null") ~= 0 then
      pending("script(1) is not installed")
      return
    end
    local path = tmp .. "/tty.mp4"
    local command = ("%s %s %s liveportrait --image https://example.com/f.png --audio https://example.com/a.wav -o %s")
      :format(env_prefix(), LUA, SCRIPT, quote(path))
    local status, out = shell("script -qec " .. quote(command) .. " /dev/null </dev/null")
    assert.are.equal(0, status, out)
    assert.truthy(contains(out, "\r"), out)
    assert.truthy(contains(out, "\27[K"), out)
    assert.truthy(out:find("[|/\\%-] PENDING, %d+%.%d s"), out)
    assert.truthy(contains(out, "SUCCEEDED after"), out)
    assert.truthy(contains(out, "downloading "), out)
    assert.are.equal(65536, #read(path))
  end)
end)
