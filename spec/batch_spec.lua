-- `dashscope batch MANIFEST` (issue 13), run as a user runs it: bin/dashscope in a process of its
-- own (spec/support/batch_run.lua), against the local server. The done-means case kills it with
-- SIGKILL at seeded moments read off its journal and its output directory, reruns the same command
-- each time, and checks what the server created (each job once), what is on disk (every video
-- whole, no partial file) and what the --json events said of the jobs whose submit was cut off or
-- whose answer was lost (resolved, or reported and then claimed as a user would).
-- Then: a bad line stops the batch before a byte is sent; a rerun after success sends nothing; and
-- --retry-failed resubmits only what ended FAILED.
local helper = require("spec.support.helper")
local batch_run = require("spec.support.batch_run")

local json = helper.json
local read, write, quote = batch_run.read, helper.write_file, batch_run.quote

-- The kill case is 11-20 s of processes and quotas: it runs once, under Lua 5.4 without ASan or
-- valgrind (make test runs the suite under four interpreters, then make asan and make valgrind).
local ONE_INTERPRETER = _VERSION == "Lua 5.4" and not rawget(_G, "jit") and not helper.UNDER_ASAN
  and not helper.UNDER_VALGRIND
-- The other cases run the CLI as a plain child process: under Lua 5.4 (the client's calls yield to
-- the batch's threads) and 5.1 (they block: cli/threads.lua), the two paths; not under valgrind or
-- ASan, which would only slow the spec's own waits down (the journal's C runs under both in
-- journal_spec), nor 5.3 and LuaJIT, which take 5.4's path. CI has 20 minutes.
local CHILDREN = not (helper.UNDER_VALGRIND or helper.UNDER_ASAN or rawget(_G, "jit") or _VERSION == "Lua 5.3")
local SEED = tonumber(os.getenv("DASHSCOPE_BATCH_SEED") or "") or 1313
local JOBS = 40
local VIDEO_SIZE = 3 * 1024 * 1024

local dir -- a fresh directory per test: the manifest, its journal, out/ and the runs' scratch files

local ENV = { DASHSCOPE_API_KEY = helper.KEY, DASHSCOPE_HTTP_BASE_URL = helper.BASE_URL }

-- Liveportrait job `i` of a manifest: remote inputs unique per job (the server's duplicate_submits
-- then tells a job sent twice from two jobs; it never fetches them), its video in out/NNN.mp4.
local function job(i, extra)
  local line = { model = "liveportrait", image_url = ("http://example.com/face-%03d.png"):format(i),
                 audio_url = ("http://example.com/voice-%03d.wav"):format(i), output = ("out/%03d.mp4"):format(i) }
  for k, v in pairs(extra or {}) do line[k] = v end
  return line
end

-- Writes jobs.jsonl in `dir`, one line per entry of `lines` (a table is JSON-encoded, a string as is).
local function manifest(lines)
  local text = {}
  for i, l in ipairs(lines) do text[i] = type(l) == "table" and json.encode(l) or l end
  local path = dir .. "/jobs.jsonl"
  write(path, table.concat(text, "\n") .. "\n")
  return path
end

local function jobs(n, extra_of)
  local lines = {}
  for i = 1, n do lines[i] = job(i, extra_of and extra_of(i)) end
  return manifest(lines)
end

-- `dashscope batch PATH --json ARGS...` to its end: exit status and the run.
local function batch(path, ...)
  local run = batch_run.start(dir, { "batch", path, "--json", ... }, ENV)
  local status = run:wait(60)
  assert(status, "the batch did not end within 60 s; stderr:\n" .. run:stderr())
  return status, run
end

-- The events of kind `kind` in a list of --json objects; the summary (the last, "summary").
local function of_kind(events, kind)
  local out = {}
  for _, e in ipairs(events) do
    if e.event == kind then out[#out + 1] = e end
  end
  return out
end

local function summary(run)
  local s = of_kind(run:events(), "summary")
  return s[#s]
end

local function outputs_whole(n, size)
  local video = batch_run.server_video(size)
  for i = 1, n do
    local path = ("%s/out/%03d.mp4"):format(dir, i)
    local got = read(path)
    assert(got, path .. " missing")
    assert(got == video, ("%s: %d bytes, not the server's video of %d"):format(path, #got, size))
  end
end

local function no_partial_file()
  for name in pairs(batch_run.listing(dir .. "/out")) do
    assert.falsy(name:find(".part-", 1, true), "left behind: out/" .. name)
  end
end

describe("dashscope batch", function()
  before_each(function()
    helper.reset(helper.FAST)
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. quote(dir .. "/out")))
  end)

  after_each(function()
    if dir and dir:find("^/") then os.execute("rm -rf " .. quote(dir)) end
    dir = nil
  end)

  describe("killed with SIGKILL at seeded moments and rerun each time", function()
    it("creates each of 40 jobs once and saves every video whole; cut-off submits resolved or reported", function()
      if not ONE_INTERPRETER then
        return pending("40 jobs under the quotas, killed and rerun: Lua 5.4 only, without ASan or valgrind")
      end
      require("spec.support.batch_kills").run {
        dir = dir, seed = SEED, jobs = JOBS, video_size = VIDEO_SIZE, env = ENV,
        manifest = jobs(JOBS),
        input_of = function(key) -- a job's key is its output (no "key" in the manifest)
          return job(tonumber(key:match("(%d+)%.mp4$"))).image_url
        end,
      }
      local stats = helper.stats()
      assert.are.equal(JOBS, stats.submits, "tasks created")
      assert.are.equal(0, stats.duplicate_submits, "a job created twice")
      for _, t in ipairs(helper.control("GET", "/tasks")) do
        assert.are.equal("SUCCEEDED", t.status, t.task_id)
      end
      outputs_whole(JOBS, VIDEO_SIZE)
      no_partial_file()
    end)
  end)

  it("refuses a manifest with a bad line 17: exit 2, line and field named, nothing sent", function()
    if not CHILDREN then return pending("CLI processes: under Lua 5.4 and 5.1 only, not under valgrind or ASan") end
    local lines = {}
    for i = 1, 20 do lines[i] = job(i) end
    lines[17] = job(17, { video_fps = 60 }) -- liveportrait: an integer from 15 to 30
    local path = manifest(lines)
    local status, run = batch(path)
    local err = run:stderr()
    assert.are.equal(2, status, err)
    assert.truthy(err:find("line 17", 1, true) or err:find(":17:", 1, true), "line 17 not named in:\n" .. err)
    assert.truthy(err:find("video_fps", 1, true), "the field not named in:\n" .. err)
    assert.are.same({}, helper.log(), "the server saw a request")
    assert.is_nil(read(dir .. "/out/017.mp4"))
  end)

  it("sends nothing when rerun after success, and exits 0 again", function()
    if not CHILDREN then return pending("CLI processes: under Lua 5.4 and 5.1 only, not under valgrind or ASan") end
    local path = jobs(3)
    local status, run = batch(path)
    assert.are.equal(0, status, run:stderr())
    outputs_whole(3, 65536)
    local before = helper.stats()
    assert.are.equal(3, before.submits)
    status, run = batch(path)
    assert.are.equal(0, status, run:stderr())
    local after = helper.stats()
    assert.are.equal(before.submits, after.submits, "submitted again")
    assert.are.equal(before.requests, after.requests, "requests on a rerun after success")
    outputs_whole(3, 65536)
  end)

  it("keeps a FAILED job failed on a rerun, and resubmits it (only it) with --retry-failed", function()
    if not CHILDREN then return pending("CLI processes: under Lua 5.4 and 5.1 only, not under valgrind or ASan") end
    local path = jobs(3, function(i)
      return i == 2 and { image_url = "http://example.com/__fail__-002.png" } or nil
    end)
    local status, run = batch(path)
    assert.are.equal(4, status, run:stderr())
    local s = summary(run)
    assert.truthy(s, "no summary event:\n" .. run:stdout())
    assert.truthy(json.encode(s.failures or {}):find("InvalidFile.Content", 1, true), json.encode(s))
    assert.are.equal(3, helper.stats().submits)
    status, run = batch(path)
    assert.are.equal(4, status, run:stderr())
    assert.are.equal(3, helper.stats().submits, "a FAILED job resubmitted without --retry-failed")
    status, run = batch(path, "--retry-failed")
    assert.are.equal(4, status, run:stderr()) -- __fail__ fails again
    local stats = helper.stats()
    assert.are.equal(4, stats.submits, "--retry-failed resubmits the FAILED job once, and nothing else")
    assert.are.equal(1, stats.duplicate_submits)
    assert.truthy(read(dir .. "/out/001.mp4") and read(dir .. "/out/003.mp4"))
    assert.is_nil(read(dir .. "/out/002.mp4"))
  end)

  it("saves a job that failed once and then succeeds when --retry-failed resubmits it", function()
    if not CHILDREN then return pending("CLI processes: under Lua 5.4 and 5.1 only, not under valgrind or ASan") end
    local path = jobs(2)
    helper.control("POST", "/config", { outcome = { status = "FAILED", code = "InternalError.Algo", message = "oops" } })
    local status, run = batch(path)
    assert.are.equal(4, status, run:stderr())
    helper.control("POST", "/config", { outcome = json.null })
    status, run = batch(path, "--retry-failed")
    assert.are.equal(0, status, run:stderr())
    assert.are.equal(4, helper.stats().submits)
    outputs_whole(2, 65536)
  end)
end)
