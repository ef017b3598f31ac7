-- A batch's manifest (cli/manifest.lua: JSON Lines and CSV, every line checked as the client would,
-- nothing sent) and its display (cli/batch_view.lua: plain lines, the live line, --json events, the
-- summary). No server is needed: the manifests are files in a fresh directory, and the view's
-- stderr and stdout are captured by putting stand-ins in io.stderr and io.stdout.
local helper = require("spec.support.helper")
local dashscope = require("dashscope")
local manifest = require("dashscope.cli.manifest")
local batch_view = require("dashscope.cli.batch_view")
local cjson = require("cjson")

local function shell_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local scratch = {}
local function temp_dir()
  local p = assert(io.popen("mktemp -d"))
  local dir = p:read("*l")
  p:close()
  scratch[#scratch + 1] = dir
  return dir
end

local write = helper.write_file -- (path, content), binary

-- A directory holding a portrait and a speech file (tiny: the manifest only checks they are files).
local function job_dir()
  local dir = temp_dir()
  os.execute("mkdir -p " .. shell_quote(dir .. "/in"))
  write(dir .. "/in/face.png", "png")
  write(dir .. "/in/speech.wav", "wav")
  return dir
end

local line_of = cjson.encode
-- A liveportrait line with local inputs, and `extra` fields.
local function portrait(n, extra)
  local t = { model = "liveportrait", image_url = "file:in/face.png", audio_url = "file:in/speech.wav",
              output = ("out/%03d.mp4"):format(n) }
  for k, v in pairs(extra or {}) do t[k] = v end
  return line_of(t)
end

local function open(dir, name, content) -- a manifest written, then opened
  write(dir .. "/" .. name, content)
  return assert(manifest.open(dir .. "/" .. name))
end

local function all(m)
  local entries, bads = {}, {}
  for entry, bad in m:each() do
    if entry then entries[#entries + 1] = entry else bads[#bads + 1] = bad end
  end
  return entries, bads
end

-- The only bad line of `content` (a JSON Lines manifest).
local function only_bad(content)
  local m = open(job_dir(), "m.jsonl", content)
  local _, bads = m:check()
  m:close()
  assert.are.equal(1, #bads)
  return bads[1]
end

teardown(function()
  for _, dir in ipairs(scratch) do os.execute("rm -rf " .. shell_quote(dir)) end
end)

describe("a JSON Lines manifest", function()
  it("with a bad field on line 17 of 20 names line 17 and the field", function()
    local lines = {}
    for n = 1, 20 do lines[n] = portrait(n, n == 17 and { video_fps = 99 } or nil) end
    local m = open(job_dir(), "m.jsonl", table.concat(lines, "\n") .. "\n")
    local count, bads = m:check()
    m:close()
    assert.are.equal(19, count)
    assert.are.equal(1, #bads)
    assert.are.equal(17, bads[1].line)
    assert.are.equal("video_fps", bads[1].field)
    assert.are.equal("invalid", bads[1].rule)
    assert.matches("^line 17: ", bads[1].message)
    assert.matches("video_fps' must be an integer from 15 to 30 %(got 99%)", bads[1].message)
  end)

  it("gives each job its line, key, method, fields and output, resolved against its directory", function()
    local dir = job_dir()
    local m = open(dir, "m.jsonl", "# jobs\n\n" .. portrait(1, { video_fps = 30, key = "first" }) .. "\r\n"
      .. line_of { model = "emoji-v1", image_url = "https://example.com/a.png", driven_id = "mengwa_kaixin",
                   face_bbox = { 1, 2, 30, 40 }, ext_bbox = { 0, 0, 50, 50 } } .. "\n")
    local entries, bads = all(m)
    m:close()
    assert.are.same({}, bads)
    assert.are.equal(2, #entries)
    local a, b = entries[1], entries[2]
    assert.are.equal(3, a.line)
    assert.are.equal("first", a.key)
    assert.are.equal("liveportrait", a.method)
    assert.are.equal(dir .. "/out/001.mp4", a.output)
    assert.are.equal(30, a.fields.video_fps)
    if math.type then assert.are.equal("integer", math.type(a.fields.video_fps)) end
    assert.is_nil(a.fields.output)
    assert.are.equal(dir .. "/in/face.png", a.fields.image_url.path)
    assert.are.equal(4, b.line)
    assert.are.equal("line 4", b.key) -- no output, no key: its line
    assert.are.equal("emoji", b.method)
    assert.is_nil(b.output)
    if math.type then assert.are.equal("integer", math.type(b.fields.face_bbox[3])) end
    assert.is_true(dashscope.check(a.method, a.fields))
  end)

  it("takes local files as file:PATH (from the manifest's directory) and file:///ABSOLUTE", function()
    local dir = job_dir()
    write(dir .. "/in/a b.wav", "wav")
    local m = open(dir, "m.jsonl", line_of { model = "liveportrait", image_url = "file:./in/face.png",
      audio_url = "file://" .. (dir .. "/in/a%20b.wav") } .. "\n")
    local entries, bads = all(m)
    m:close()
    assert.are.same({}, bads)
    assert.are.equal(dir .. "/in/face.png", entries[1].fields.image_url.path)
    assert.are.equal(dir .. "/in/a b.wav", entries[1].fields.audio_url.path)
  end)

  it("refuses a file: path that dashscope.file refuses, naming the field", function()
    local bad = only_bad(portrait(1, { audio_url = "file:in/missing.wav" }) .. "\n")
    assert.are.equal("audio_url", bad.field)
    assert.matches("^line 1: field 'audio_url' %(\"file:in/missing.wav\"%): cannot use \".*/in/missing.wav\"",
      bad.message)
    bad = only_bad(portrait(1, { image_url = "file:in" }) .. "\n")
    assert.are.equal("image_url", bad.field)
    assert.matches("a directory", bad.message)
    bad = only_bad(portrait(1, { image_url = "file://host/in/face.png" }) .. "\n")
    assert.matches("names a host", bad.message)
  end)

  it("refuses a bare path in a url field, saying how a local file is written", function()
    local bad = only_bad(portrait(1, { image_url = "in/face.png" }) .. "\n")
    assert.are.equal("image_url", bad.field)
    assert.matches('a local file is "file:PATH"', bad.message, 1, true)
  end)

  it("refuses two lines with one output, however written, or one key, naming the earlier line, at every pass", function()
    local m = open(job_dir(), "m.jsonl", table.concat({
      portrait(1), portrait(2), portrait(3, { output = "./out//001.mp4" }), portrait(4, { key = "out/002.mp4" }),
    }, "\n"))
    local count, bads = m:check()
    assert.are.same({ count, bads }, { m:check() }) -- each pass reads again from the top
    m:close()
    assert.are.equal(2, count)
    assert.are.equal(2, #bads)
    assert.are.same({ 3, "output", "duplicate" }, { bads[1].line, bads[1].field, bads[1].rule })
    assert.matches("line 1's output", bads[1].message)
    assert.are.same({ 4, "key", "duplicate" }, { bads[2].line, bads[2].field, bads[2].rule })
    assert.matches("line 2's key", bads[2].message)
  end)

  it("refuses an unknown model with the nearest name, a detector, and a line with no model", function()
    local bad = only_bad(portrait(1, { model = "livepotrait" }) .. "\n")
    assert.are.same({ "model", "unknown" }, { bad.field, bad.rule })
    assert.matches('did you mean "liveportrait"?', bad.message, 1, true)
    bad = only_bad(line_of { model = "liveportrait-detect", image_url = "https://example.com/a.png" })
    assert.matches("is a detector", bad.message)
    bad = only_bad(line_of { image_url = "https://example.com/a.png" })
    assert.are.same({ "model", "required" }, { bad.field, bad.rule })
  end)

  it("refuses an output or key that is not a string, a field the model lacks, and what is not an object", function()
    local bad = only_bad(portrait(1, { output = 7 }))
    assert.are.same({ 1, "output" }, { bad.line, bad.field })
    bad = only_bad(portrait(1, { key = false }))
    assert.are.equal("key", bad.field)
    bad = only_bad(portrait(1, { video_fsp = 24 }))
    assert.are.same({ "video_fsp", "unknown" }, { bad.field, bad.rule })
    assert.matches("did you mean 'video_fps'", bad.message, 1, true)
    bad = only_bad("\n[1, 2]\n")
    assert.are.same({ 2, nil }, { bad.line, bad.field })
    assert.matches("^line 2: not a JSON object", bad.message)
    bad = only_bad('{"model": "liveportrait",\n')
    assert.matches("^line 1: not valid JSON", bad.message)
  end)

  it("is nil and why when it cannot be read", function()
    local dir = temp_dir()
    local m, why = manifest.open(dir .. "/none.jsonl")
    assert.is_nil(m)
    assert.matches("none.jsonl", why)
    m, why = manifest.open(dir)
    assert.is_nil(m)
    assert.is_string(why)
  end)

  -- What stays alive, measured after a full collection every 1,000 lines (the garbage between two
  -- collections grows with the whole heap, busted's included): the duplicate check's sets, about
  -- 2 MiB here; the 10,000 entries held would be 8 to 12 MiB.
  it("of 10,000 lines is read in bounded memory", function()
    if os.getenv("DASHSCOPE_UNDER_VALGRIND") then return pending("pure Lua, 40 s under valgrind") end
    local dir = job_dir()
    local f = assert(io.open(dir .. "/big.jsonl", "wb"))
    for n = 1, 10000 do f:write(portrait(n, { output = ("out/%05d.mp4"):format(n) }), "\n") end
    f:close()
    local m = assert(manifest.open(dir .. "/big.jsonl"))
    collectgarbage("collect")
    local base, peak, count = collectgarbage("count"), 0, 0
    for entry in m:each() do
      assert.is_table(entry)
      count = count + 1
      if count % 1000 == 0 then
        collectgarbage("collect")
        peak = math.max(peak, collectgarbage("count") - base)
      end
    end
    m:close()
    assert.are.equal(10000, count)
    assert.is_true(peak < 4 * 1024, ("kept %.0f KiB"):format(peak))
  end)
end)

describe("a CSV manifest", function()
  it("reads quoted fields, \"\" escapes, CRLF, empty cells and typed cells", function()
    local dir = job_dir()
    local m = open(dir, "jobs.CSV", table.concat({
      "model,image_url,audio_url,output,key,video_fps,paste_back,eye_move_freq,template_id",
      'liveportrait,file:in/face.png,file:in/speech.wav,"out/a,1.mp4","say ""hi""",30,no,0.25,',
      "",
      'liveportrait,file:in/face.png,file:in/speech.wav,out/b.mp4,"two',
      'lines",,,,calm',
      "liveportrait,file:in/face.png,file:in/speech.wav,out/c.mp4,,16.0,,,",
    }, "\r\n") .. "\r\n")
    local entries, bads = all(m)
    m:close()
    assert.are.same({}, bads)
    assert.are.equal(3, #entries)
    local a, b, c = entries[1], entries[2], entries[3]
    assert.are.same({ 2, 'say "hi"', dir .. "/out/a,1.mp4" }, { a.line, a.key, a.output })
    assert.are.same({ 30, false, 0.25 }, { a.fields.video_fps, a.fields.paste_back, a.fields.eye_move_freq })
    assert.is_nil(a.fields.template_id)
    assert.are.equal(dir .. "/in/face.png", a.fields.image_url.path)
    assert.are.same({ 4, "two\nlines", "calm" }, { b.line, b.key, b.fields.template_id })
    assert.is_nil(b.fields.video_fps)
    assert.are.same({ 6, "out/c.mp4", 16 }, { c.line, c.key, c.fields.video_fps })
    if math.type then assert.are.equal("integer", math.type(c.fields.video_fps)) end
  end)

  it("names the line and field of a bad cell, a row of the wrong length, and a header without model", function()
    local dir = job_dir()
    local m = open(dir, "m.csv", "model,image_url,audio_url,video_fps\n"
      .. "liveportrait,file:in/face.png,file:in/speech.wav,fast\n"
      .. "liveportrait,file:in/face.png\n"
      .. 'liveportrait,"file:in/face.png"x,file:in/speech.wav,20\n')
    local count, bads = m:check()
    m:close()
    assert.are.equal(0, count)
    assert.are.same({ 2, "video_fps" }, { bads[1].line, bads[1].field })
    assert.matches('got "fast"', bads[1].message)
    assert.are.same({ 3, nil }, { bads[2].line, bads[2].field })
    assert.matches("2 cells, but the header names 4 columns", bads[2].message)
    assert.matches("^line 4: not a CSV record", bads[3].message)
    m = open(dir, "h.csv", "image_url,output\nhttps://example.com/a.png,a.mp4\n")
    count, bads = m:check()
    m:close()
    assert.are.same({ 0, 1, 1 }, { count, #bads, bads[1].line })
    assert.matches('no "model" column', bads[1].message)
  end)

  it("says where a quoted field that is never closed begins", function()
    local m = open(job_dir(), "m.csv", 'model,output\nliveportrait,"out\n\nmore\n')
    local _, bads = m:check()
    m:close()
    assert.are.same({ 2 }, { bads[1].line })
    assert.matches("not closed", bads[1].message)
  end)
end)

-- Runs fn with io.stderr and io.stdout collecting what is written: (stderr text, stdout text).
local function captured(fn)
  local got = { err = {}, out = {} }
  local function sink(list)
    return { write = function(self, ...)
      for _, s in ipairs { ... } do list[#list + 1] = tostring(s) end
      return self
    end, flush = function() end }
  end
  -- the view (and report.lua under it) looks io.stderr and io.stdout up at each write
  local err, out = io.stderr, io.stdout
  io.stderr, io.stdout = sink(got.err), sink(got.out) -- luacheck: ignore 122
  local ok, e = pcall(fn)
  io.stderr, io.stdout = err, out -- luacheck: ignore 122
  assert(ok, e)
  return table.concat(got.err), table.concat(got.out)
end

local FAILURE = { kind = "failed", key = "out/007.mp4", line = 7, task_id = "t-7",
                  error = { code = "InvalidFile", message = "the image has no face", request_id = "r", extra = "x" } }
local SUMMARY = {
  counts = { done = 38, failed = 1, ambiguous = 1 }, elapsed = 250, journal = "jobs.jsonl.journal",
  failures = { FAILURE }, ambiguous = { { key = "out/009.mp4", line = 9, error = { code = "Ambiguous",
    message = "2 tasks of liveportrait were created in its window" } } },
}

describe("the batch's view", function()
  it("says one plain line per event on stderr off a terminal, and the summary with every failure", function()
    local err, out = captured(function()
      local view = batch_view.new { total = 40 }
      view:event { kind = "submitted", key = "out/001.mp4", line = 1, task_id = "t-1" }
      view:event { kind = "saved", key = "line 2", line = 2, path = "out/002.mp4", bytes = 2048 }
      view:event(FAILURE)
      view:event { kind = "skipped", line = 17, error = { message = "line 17: liveportrait: field 'video_fps' ..." } }
      view:event { kind = "ended", key = "two\nlines", line = 4, task_id = "t-4", status = "SUCCEEDED" }
      view:event { kind = "skipped", key = "line 5", line = 5, task_id = "t-5", path = "out/005.mp4" }
      view:counts { done = 1, failed = 1, running = 38 }
      view:tick(1)
      view:summary(SUMMARY)
      view:close()
    end)
    assert.are.equal("", out)
    local lines = {}
    for l in err:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.are.equal("submitted out/001.mp4 (line 1): task t-1", lines[1])
    assert.are.equal("saved line 2: out/002.mp4 (2.0 KiB)", lines[2])
    assert.are.equal("failed out/007.mp4 (line 7): task t-7: InvalidFile: the image has no face", lines[3])
    assert.are.equal("skipped line 17: liveportrait: field 'video_fps' ...", lines[4])
    assert.are.equal("ended two\\10lines (line 4): task t-4 SUCCEEDED", lines[5])
    assert.are.equal("skipped line 5: already saved at out/005.mp4", lines[6])
    assert.are.equal("batch: 38 of 40 done, 1 failed, 1 ambiguous in 4 min 10 s (journal jobs.jsonl.journal)", lines[7])
    assert.matches("out/007.mp4 %(line 7%), task t%-7: InvalidFile: the image has no face", err)
    assert.matches("out/009.mp4 %(line 9%): Ambiguous: 2 tasks", err)
    assert.matches("run the same command again", err)
    assert.is_nil(err:find("\r", 1, true))
  end)

  it("with --quiet says nothing but failures", function()
    local err = captured(function()
      local view = batch_view.new { total = 2, quiet = true }
      view:event { kind = "submitted", key = "a", line = 1, task_id = "t-1" }
      view:event(FAILURE)
      view:summary { counts = { done = 1 }, elapsed = 3, failures = {}, ambiguous = {} }
    end)
    assert.are.equal("dashscope: failed out/007.mp4 (line 7): task t-7: InvalidFile: the image has no face\n", err)
  end)

  it("with --json writes one object per event on stdout, the summary last, and only what may be shown", function()
    local _, out = captured(function()
      local view = batch_view.new { total = 40, json = true, quiet = true }
      view:event { kind = "resumed", key = "a", line = 1, task_id = "t-1", status = "RUNNING", api_key = "sk-no" }
      view:event(FAILURE)
      view:summary(SUMMARY)
    end)
    local objs = {}
    for l in out:gmatch("[^\n]+") do objs[#objs + 1] = cjson.decode(l) end
    assert.are.equal(3, #objs)
    assert.matches('^{"event":"resumed",', out)
    assert.are.same({ event = "resumed", key = "a", line = 1, task_id = "t-1", status = "RUNNING" }, objs[1])
    assert.are.same({ code = "InvalidFile", message = "the image has no face" }, objs[2].error)
    local s = objs[3]
    assert.are.equal("summary", s.event)
    assert.are.same({ 40, 250, 38 }, { s.total, s.elapsed, s.counts.done })
    assert.are.same({ "out/007.mp4", 7, "t-7" }, { s.failures[1].key, s.failures[1].line, s.failures[1].task_id })
    assert.are.equal("out/009.mp4", s.ambiguous[1].key)
    assert.is_nil(out:find("sk-no", 1, true))
    _, out = captured(function()
      batch_view.new { total = 1, json = true, quiet = true }:summary { counts = { done = 1 }, elapsed = 1 }
    end)
    assert.matches('"failures":%[%],"ambiguous":%[%]}', out)
  end)

  it("on a terminal redraws its live line at most 4 times a second, failures above it, and clears it", function()
    local err = captured(function()
      local view = batch_view.new { total = 10, live = true }
      view:counts { queued = 10 }
      for t = 0, 0.9, 0.05 do view:tick(100 + t) end -- 19 ticks within a second: 4 drawings
      view:event { kind = "submitted", key = "a", line = 1, task_id = "t-1" }
      view:event(FAILURE)
      view:close()
    end)
    local _, drawings = err:gsub("0/10 done, 10 queued", "")
    assert.are.equal(4 + 1, drawings) -- and once more under the failure's lasting line
    assert.is_nil(err:find("submitted", 1, true))
    assert.matches("\rfailed out/007.mp4 %(line 7%)", err)
    assert.matches("\r\27%[K$", err)
  end)

  it("counts jobs per minute over the last minute and the time left from it", function()
    local err = captured(function()
      local view = batch_view.new { total = 200, live = true }
      for t = 0, 120, 10 do -- 1 job a second for a minute, then 2 a second
        local done = t <= 60 and t or 60 + 2 * (t - 60)
        view:counts { done = done, running = 4, queued = 196 - done }
        view:tick(t)
      end
    end)
    assert.matches("180/200 done, 4 running, 16 queued, 120.0 jobs/min, ETA 10.0 s", err, 1, true)
    assert.are.equal("3/9 done, 1 failed, 2 running, 3 queued, 30.0 jobs/min, ETA 10.0 s",
      batch_view.line({ done = 3, failed = 1, running = 2, queued = 3 }, 30, 9))
    assert.are.equal("0/9 done, 9 queued", batch_view.line({ queued = 9 }, nil, 9))
  end)
end)
