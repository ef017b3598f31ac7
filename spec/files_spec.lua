-- Local files, handled like a careful Unix tool (issue 9, findings 1, 9 and 10): a local file enters
-- a job only as dashscope.file(path), checked without ever blocking; a string in a url field is a
-- remote reference, never read; uploads send exactly the file that was checked and strand nothing;
-- downloads write a new temporary file (O_EXCL|O_NOFOLLOW, an unpredictable name), stop at
-- max_download and at their timeout, report a failed write as WriteError, and can stream to a
-- file handle. Against the local server; child processes where a limit or stdout is needed.
local helper = require("spec.support.helper")
local core = require("dashscope.core")
local config = require("dashscope.config")
local dashscope = helper.dashscope

local LUA = os.getenv("LUA") or "lua5.4"
local FAST = helper.FAST

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function shell(command)
  local p = assert(io.popen(command .. "; echo \"status $?\""))
  local out = p:read("*a")
  p:close()
  return tonumber(out:match("status (%d+)%s*$")), (out:gsub("status %d+%s*$", ""))
end

local scratch = {}
local function temp_dir()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. quote(dir)))
  scratch[#scratch + 1] = dir
  return dir
end
local function cleanup()
  for _, dir in ipairs(scratch) do os.execute("rm -rf " .. quote(dir)) end
  scratch = {}
end

local function listing(dir)
  local p = io.popen("ls -A " .. quote(dir))
  local names = {}
  for line in p:lines() do names[#names + 1] = line end
  p:close()
  table.sort(names)
  return names
end

local function count(kind)
  local n = 0
  for _, r in ipairs(helper.log()) do
    local k = r.host == "upload" and "upload" or r.host == "results" and "result"
      or r.path:find("/video%-synthesis") and "submit" or r.path:find("/uploads") and "policy" or "other"
    if k == kind then n = n + 1 end
  end
  return n
end

-- Valid values for every field of a contract but `skip`: a URL for url fields, the first value of
-- an enum; boxes for emoji (so that no detector runs).
local function valid_fields(contract, skip)
  local f = {}
  for _, rule in ipairs(contract.fields) do
    if rule.name ~= skip then
      if rule.type == "url" then f[rule.name] = "https://example.com/" .. rule.name
      elseif rule.type == "enum" and rule.required then f[rule.name] = rule.values[1]
      elseif rule.type == "bbox" then f[rule.name] = { 1, 1, 10, 10 } end
    end
  end
  return f
end

describe("a url field", function()
  local client
  before_each(function()
    helper.reset(FAST)
    client = helper.client()
  end)

  it("never reads a local path: every url field of every model raises naming dashscope.file", function()
    local tried = 0
    for method, contract in pairs(dashscope.models) do
      for _, rule in ipairs(contract.fields) do
        if rule.type == "url" then
          for _, bad in ipairs { "/etc/passwd", "file:///etc/passwd", "etc/passwd", "~/.bashrc" } do
            local fields = valid_fields(contract, rule.name)
            fields[rule.name] = bad
            local msg = helper.raises(function() client[method](client, fields) end)
            assert.truthy(msg:find(method .. ": field '" .. rule.name .. "'", 1, true), msg)
            assert.truthy(msg:find("dashscope.file(path)", 1, true), msg)
            assert.truthy(msg:find("http://, https:// or oss://", 1, true), msg)
            tried = tried + 1
          end
        end
      end
    end
    assert.are.equal(4 * 8, tried) -- 8 url fields in the 5 contracts
    assert.are.same({}, helper.log()) -- not a byte sent
    assert.is_false(client:busy())
  end)

  it("still takes the documented empty ref_image_url, and URLs as they are", function()
    local t = assert(client:videoretalk { video_url = "https://example.com/v.mp4",
      audio_url = "https://example.com/a.wav", ref_image_url = "" })
    assert(t:wait())
    assert.are.equal(0, count("upload"))
  end)

  it("takes a dashscope.file, which is uploaded and replaced by its oss:// URL", function()
    local dir = temp_dir()
    helper.write_file(dir .. "/face.png", "PNG")
    local t = assert(client:liveportrait { image_url = dashscope.file(dir .. "/face.png"),
      audio_url = "https://example.com/a.wav" })
    assert(t:wait())
    assert.are.equal(1, count("upload"))
    local submit = helper.requests("/video-synthesis")[1]
    assert.truthy(submit.json.input.image_url:find("^oss://"))
    cleanup()
  end)
end)

describe("client:submit", function()
  local client
  before_each(function()
    helper.reset(FAST)
    client = helper.client()
  end)
  after_each(cleanup)

  it("uploads a dashscope.file at the top level of input, and sends a string as it is", function()
    local dir = temp_dir()
    helper.write_file(dir .. "/v.mp4", "MP4")
    local t = assert(client:submit("test-files", { video_url = dashscope.file(dir .. "/v.mp4"),
      note = "/etc/passwd" }))
    assert(t:wait())
    assert.are.equal(1, count("upload"))
    local input = helper.requests("/video-synthesis")[1].json.input
    assert.truthy(input.video_url:find("^oss://"))
    assert.are.equal("/etc/passwd", input.note) -- a string is never read
  end)

  it("raises for a dashscope.file deeper down or in parameters, which would go out as a JSON object", function()
    local dir = temp_dir()
    helper.write_file(dir .. "/v.mp4", "MP4")
    local msg = helper.raises(function()
      client:submit("test-files", { media = { dashscope.file(dir .. "/v.mp4") } })
    end)
    assert.truthy(msg:find("submit: input.media", 1, true), msg)
    msg = helper.raises(function()
      client:submit("test-files", { x = "https://example.com/x" }, { ref = dashscope.file(dir .. "/v.mp4") })
    end)
    assert.truthy(msg:find("submit: parameters.ref is a dashscope.file", 1, true), msg)
    assert.are.same({}, helper.log())
  end)
end)

describe("dashscope.file", function()
  after_each(cleanup)

  it("raises at once for a FIFO with no writer, never waiting on it", function()
    local fifo = temp_dir() .. "/fifo"
    assert(os.execute("mkfifo " .. quote(fifo)))
    local started = core.now()
    local msg = helper.raises(function() dashscope.file(fifo) end)
    assert.truthy(core.now() - started < 5)
    assert.truthy(msg:find("dashscope.file: ", 1, true), msg)
    assert.truthy(msg:find("a FIFO, not a regular file", 1, true), msg)
  end)

  it("raises for a directory, a device, a missing or empty file, and a bad path", function()
    local dir = temp_dir()
    helper.write_file(dir .. "/empty", "")
    local cases = { [dir] = "a directory", ["/dev/null"] = "a character device",
                    [dir .. "/missing"] = "No such file", [dir .. "/empty"] = "an empty file",
                    ["a\0b"] = "NUL", [""] = "non-empty string" }
    for path, why in pairs(cases) do
      local msg = helper.raises(function() dashscope.file(path) end)
      assert.truthy(msg:find("dashscope.file: ", 1, true), msg)
      assert.truthy(msg:find(why, 1, true), msg)
    end
    assert.truthy(helper.raises(function() dashscope.file(42) end):find("non-empty string", 1, true))
  end)

  it("gives a value that says what it is", function()
    local dir = temp_dir()
    helper.write_file(dir .. "/a.wav", "WAV")
    local f = dashscope.file(dir .. "/a.wav")
    assert.are.equal("local file " .. dir .. "/a.wav", tostring(f))
    assert.are.equal(3, f.size)
  end)
end)

describe("an upload", function()
  local client
  before_each(function()
    helper.reset(FAST)
    client = helper.client()
  end)
  after_each(cleanup)

  local function job(file)
    return client:liveportrait { image_url = file, audio_url = "https://example.com/a.wav" }
  end

  it("of a file truncated after its check returns nil, err and submits nothing", function()
    local path = temp_dir() .. "/face.png"
    helper.write_file(path, string.rep("x", 4096))
    local file = dashscope.file(path)
    helper.write_file(path, "0123456789") -- truncated
    local t, err = job(file)
    assert.is_nil(t)
    assert.are.equal("ReadError", err.code)
    assert.truthy(tostring(err):find("now 10 bytes, not the 4096", 1, true), tostring(err))
    assert.are.equal(0, count("upload"))
    assert.are.equal(0, count("submit"))
    assert.is_false(client:busy())
  end)

  it("of a file grown after its check returns nil, err and submits nothing", function()
    local path = temp_dir() .. "/face.png"
    helper.write_file(path, "small")
    local file = dashscope.file(path)
    helper.write_file(path, "much larger now")
    local t, err = job(file)
    assert.is_nil(t)
    assert.are.equal("ReadError", err.code)
    assert.are.equal(0, count("submit"))
    assert.is_false(client:busy())
  end)

  it("of a file deleted during the policy request returns nil, err; nothing stays busy", function()
    local path = temp_dir() .. "/face.png"
    helper.write_file(path, "PNG")
    local removed = false
    client = helper.client { sleep = function(s) -- runs while the policy request is in flight
      if not removed then removed = os.remove(path) end
      require("socket").sleep(math.min(s, 0.01))
    end }
    helper.faults { { match = "upload", kind = "slow", delay = 0.3 } }
    local t, err = job(dashscope.file(path))
    assert.is_true(removed)
    assert.is_nil(t)
    assert.are.equal("ReadError", err.code)
    assert.truthy(tostring(err):find("No such file", 1, true), tostring(err))
    assert.are.equal(1, count("policy"))
    assert.are.equal(0, count("submit"))
    assert.is_false(client:busy())
  end)

  it("of a file whose name holds a newline and odd bytes works", function()
    local path = temp_dir() .. "/we\nird \"name\"\1.png"
    helper.write_file(path, "PNG")
    local t = assert(job(dashscope.file(path)))
    assert(t:wait())
    local stored = helper.control("GET", "/uploads")
    assert.are.equal(1, #stored)
    assert.truthy(stored[1].key:find("we_ird__name__.png$"), stored[1].key)
    assert.is_false(client:busy())
  end)

  it("streams exactly the checked bytes: a form file of another size fails as 'read', not sent whole", function()
    local path = temp_dir() .. "/face.png"
    helper.write_file(path, "0123456789")
    local t = core.new_transport()
    local r = t:request { method = "POST", url = helper.UPLOAD_URL .. "/", timeout = 5,
      form = { { name = "key", value = "k" }, { name = "file", file = path, size = 4, filename = "f.png" } } }
    local deadline = core.now() + 10
    while not r:done() and core.now() < deadline do
      t:perform()
      if not r:done() then t:wait(0.05) end
    end
    local resp, terr = r:response()
    assert.is_nil(resp)
    assert.are.equal("read", terr.outcome)
    assert.truthy(terr.message:find("changed after it was checked", 1, true), terr.message)
    r:close()
    t:close()
  end)

  it("takes a path, explicitly, through client:upload, and a dashscope.file too", function()
    local path = temp_dir() .. "/a.wav"
    helper.write_file(path, "WAV")
    assert.truthy(assert(client:upload("liveportrait", path)):find("^oss://"))
    assert.truthy(assert(client:upload("liveportrait", dashscope.file(path))):find("^oss://"))
    local msg = helper.raises(function() client:upload("liveportrait", path .. ".missing") end)
    assert.truthy(msg:find("upload: cannot use", 1, true), msg)
  end)
end)

describe("the key file", function()
  after_each(cleanup)

  it("named by DASHSCOPE_API_KEY_FILE_PATH is no key file when it is a FIFO or a directory", function()
    local dir = temp_dir()
    assert(os.execute("mkfifo " .. quote(dir .. "/fifo")))
    local started = core.now()
    for _, path in ipairs { dir .. "/fifo", dir } do
      local env = { DASHSCOPE_API_KEY_FILE_PATH = path, HOME = dir }
      assert.is_nil(config.resolve_key(nil, function(name) return env[name] end))
    end
    assert.truthy(core.now() - started < 5)
    helper.write_file(dir .. "/key", "sk-from-file\n")
    local env = { DASHSCOPE_API_KEY_FILE_PATH = dir .. "/key" }
    assert.are.equal("sk-from-file", config.resolve_key(nil, function(name) return env[name] end))
  end)

  it("is named, never shown, by client.key_source", function()
    local dir = temp_dir()
    helper.write_file(dir .. "/key", "sk-from-file\n")
    local env = { DASHSCOPE_API_KEY_FILE_PATH = dir .. "/missing", HOME = dir }
    assert.are.same({ "sk-from-file", "$DASHSCOPE_API_KEY_FILE_PATH (" .. dir .. "/key)" },
      { config.resolve_key(nil, function(name) return ({ DASHSCOPE_API_KEY_FILE_PATH = dir .. "/key" })[name] end) })
    assert(os.execute("mkdir -p " .. quote(dir .. "/.dashscope")))
    helper.write_file(dir .. "/.dashscope/api_key", "sk-home\n")
    -- a key file path that reads nothing falls through to the home directory's file
    assert.are.same({ "sk-home", "~/.dashscope/api_key" },
      { config.resolve_key(nil, function(name) return env[name] end) })
    assert.are.equal("api_key_file (" .. dir .. "/key)",
      dashscope.new({ api_key_file = dir .. "/key", base_url = helper.BASE_URL }).key_source)
    assert.are.equal("api_key", dashscope.new({ api_key = "sk-x", base_url = helper.BASE_URL }).key_source)
  end)
end)

describe("task:download", function()
  local client
  before_each(function()
    helper.reset(FAST)
    client = helper.client()
  end)
  after_each(cleanup)

  local function finished_task() return helper.finished_task(client) end

  it("creates its temporary file new, under an unpredictable name, and never through a link", function()
    local dir = temp_dir()
    -- the C side: an existing name or a planted symlink (dangling or not) is refused, not followed
    helper.write_file(dir .. "/target", "precious")
    assert(os.execute("ln -s target " .. quote(dir .. "/link") .. " && ln -s nowhere " .. quote(dir .. "/dangling")))
    for _, name in ipairs { "target", "link", "dangling" } do
      local fd, why, exists = core.create_new(dir .. "/" .. name)
      assert.is_nil(fd)
      assert.are.equal("exists", exists, why)
    end
    assert.are.equal("precious", helper.read_file(dir .. "/target"))
    assert.are.same({ "dangling", "link", "target" }, listing(dir))
    -- the names used: 16 random hex digits, different each time, a regular file while written
    local t = finished_task()
    local names = {}
    for i = 1, 2 do
      assert(t:download(dir .. "/out" .. i .. ".mp4", { on_progress = function()
        for _, name in ipairs(listing(dir)) do
          local hex = name:match("^out%d%.mp4%.part%-(%x+)$")
          if hex then
            names[#names + 1] = hex
            assert.are.equal(16, #hex)
          end
        end
      end }))
    end
    assert.truthy(#names >= 2)
    assert.are_not.equal(names[1], names[#names])
    assert.are.same({ "dangling", "link", "out1.mp4", "out2.mp4", "target" }, listing(dir))
  end)

  it("raises for a path holding NUL before anything is touched, even with overwrite", function()
    local t = finished_task()
    local dir = temp_dir()
    helper.write_file(dir .. "/keep.mp4", "mine")
    local msg = helper.raises(function() t:download(dir .. "/keep.mp4\0.x", { overwrite = true }) end)
    assert.truthy(msg:find("task:download: path must not contain NUL", 1, true), msg)
    assert.are.equal("mine", helper.read_file(dir .. "/keep.mp4"))
    assert.are.same({ "keep.mp4" }, listing(dir))
    assert.are.equal(0, count("result"))
  end)

  it("stops an endless video at max_download: TooLarge, no file left", function()
    helper.reset { durations = FAST.durations, concurrency = 0, result_endless = true }
    local t = finished_task()
    local dir = temp_dir()
    local ok, err = t:download(dir .. "/big.mp4", { max_download = 1024 * 1024, timeout = 60 })
    assert.is_nil(ok)
    assert.are.equal("TooLarge", err.code)
    assert.is_false(err.retryable)
    assert.are.same({}, listing(dir))
    assert.are.equal(1, count("result"))
    -- a Content-Length over the cap ends it before a byte is kept
    helper.reset(FAST)
    t = finished_task()
    ok, err = t:download(dir .. "/small.mp4", { max_download = 1000 })
    assert.is_nil(ok)
    assert.are.equal("TooLarge", err.code)
    assert.are.same({}, listing(dir))
  end)

  it("stops an endless video at its timeout, retries included, and leaves no file", function()
    helper.reset { durations = FAST.durations, concurrency = 0, result_endless = 20000 }
    local t = finished_task()
    helper.faults { { match = "result", kind = "status", status = 503, count = 2 } }
    local dir = temp_dir()
    local started = core.now()
    local ok, err = t:download(dir .. "/slow.mp4", { timeout = 1.5 })
    local took = core.now() - started
    assert.is_nil(ok)
    assert.are.equal("Timeout", err.code)
    assert.truthy(took >= 1.4 and took < 1.5 + 5, took .. " s")
    assert.are.same({}, listing(dir))
    assert.are.equal(3, count("result")) -- two 503s, then the endless one
    assert.is_false(client:busy())
  end)

  it("stops at its timeout when the result host never answers", function()
    local t = finished_task()
    helper.faults { { match = "result", kind = "slow", delay = 6 } }
    local dir = temp_dir()
    local started = core.now()
    local ok, err = t:download(dir .. "/never.mp4", { timeout = 0.5 })
    assert.is_nil(ok)
    assert.are.equal("Timeout", err.code)
    assert.truthy(core.now() - started < 5, "waited for the answer")
    assert.are.same({}, listing(dir))
    assert.is_false(client:busy())
  end)

  it("reports a failed write as WriteError and does not retry it (a full device)", function()
    local t = finished_task()
    local full = assert(io.open("/dev/full", "wb"))
    local ok, err = t:download(full)
    full:close()
    assert.is_nil(ok)
    assert.are.equal("WriteError", err.code)
    assert.is_false(err.retryable)
    assert.truthy(tostring(err):find("No space left on device", 1, true), tostring(err))
    assert.are.equal(1, count("result"))
  end)

  it("reports a file size limit hit (RLIMIT_FSIZE, in a child) as WriteError, and removes the part", function()
    local t = finished_task()
    local dir = temp_dir()
    local script = dir .. "/child.lua"
    helper.write_file(script, ([[
      local dashscope = require("dashscope")
      local c = dashscope.new { api_key = %q, base_url = %q }
      local ok, err = c:task(%q, "liveportrait"):download(%q)
      io.write(tostring(ok), " ", err and err.code or "-", " ", err and err.attempts or "-")
    ]]):format(helper.KEY, helper.BASE_URL, t.id, dir .. "/out.mp4"))
    -- 16 blocks of 512 bytes: the 64 KiB video does not fit; SIGXFSZ ignored, so write says EFBIG
    local status, out = shell(("sh -c 'trap \"\" XFSZ; ulimit -f 16; exec %s %s' 2>&1"):format(LUA, script))
    assert.are.equal(0, status, out)
    assert.are.equal("nil WriteError 1", out)
    assert.are.same({ "child.lua" }, listing(dir))
  end)

  it("streams to an open file handle, io.stdout included, with no temporary file", function()
    local t = finished_task()
    local dir = temp_dir()
    local f = assert(io.open(dir .. "/handle.mp4", "wb"))
    f:write("HEAD") -- what was written before comes first
    assert.are.equal(f, assert(t:download(f)))
    f:close()
    local video = helper.read_file(dir .. "/handle.mp4")
    assert.are.equal(4 + 65536, #video)
    assert.are.equal("ftyp", video:sub(9, 12))
    assert.are.same({ "handle.mp4" }, listing(dir))
    local msg = helper.raises(function() t:download(f) end)
    assert.truthy(msg:find("task:download: the file handle is closed", 1, true), msg)
    -- io.stdout, in a child process
    local script = dir .. "/child.lua"
    helper.write_file(script, ([[
      local dashscope = require("dashscope")
      local c = dashscope.new { api_key = %q, base_url = %q }
      assert(c:task(%q, "liveportrait"):download(io.stdout))
    ]]):format(helper.KEY, helper.BASE_URL, t.id))
    local status = shell(("%s %s > %s"):format(LUA, quote(script), quote(dir .. "/stdout.mp4")))
    assert.are.equal(0, status)
    local streamed = helper.read_file(dir .. "/stdout.mp4")
    assert.are.equal(65536, #streamed)
    assert.are.equal(video:sub(5), streamed)
  end)
end)

describe("bin/dashscope", function()
  before_each(function() helper.reset(FAST) end)
  after_each(cleanup)

  local function cli(args, out)
    local words = {}
    for i, a in ipairs(args) do words[i] = quote(a) end
    return shell(("env DASHSCOPE_API_KEY=%s DASHSCOPE_HTTP_BASE_URL=%s %s bin/dashscope %s >%s 2>&1 </dev/null")
      :format(quote(helper.KEY), quote(helper.BASE_URL), LUA, table.concat(words, " "), quote(out)))
  end

  it("marks its own file arguments as dashscope.file, and streams the video to stdout with -o -", function()
    local dir = temp_dir()
    helper.write_file(dir .. "/face.png", "PNG")
    local status = cli({ "liveportrait", "--image", dir .. "/face.png", "--audio", "https://example.com/a.wav",
                         "-o", "-", "-q" }, dir .. "/stdout")
    assert.are.equal(0, status, helper.read_file(dir .. "/stdout"))
    local video = helper.read_file(dir .. "/stdout")
    assert.are.equal(65536, #video)
    assert.are.equal("ftyp", video:sub(5, 8))
    assert.are.equal(1, count("upload"))
    assert.are.same({ "face.png", "stdout" }, listing(dir)) -- no file named "-", no part file
  end)

  it("refuses a file argument that is no regular file as bad usage, sending nothing", function()
    local dir = temp_dir()
    assert(os.execute("mkfifo " .. quote(dir .. "/fifo")))
    local status = cli({ "liveportrait", "--image", dir .. "/fifo", "--audio", "https://example.com/a.wav" },
      dir .. "/out")
    assert.are.equal(2, status)
    local out = helper.read_file(dir .. "/out")
    assert.truthy(out:find("dashscope.file: cannot use", 1, true), out)
    assert.truthy(out:find("(from --image)", 1, true), out)
    assert.are.same({}, helper.log())
  end)
end)
