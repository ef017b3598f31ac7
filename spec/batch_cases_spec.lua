-- dashscope batch, case by case (the kills and the done-means cases are spec/batch_spec.lua's):
-- --skip-bad, an output that exists, two runs on one journal, a lost submit answer settled in the
-- run, a CSV manifest with a local file to upload, and a Ctrl-C that the same command resumes.
local helper = require("spec.support.helper")

local json = helper.json
local LUA = os.getenv("LUA") or "lua5.4"

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local tmp -- this test's directory

-- The CLI in processes of its own, a few seconds a case: under Lua 5.4 only (batch_spec runs the
-- CLI under 5.1 too, whose client blocks: cli/threads.lua), not under the sanitizers (the
-- journal's C runs under them in journal_spec). CI has 20 minutes.
local WHY_NOT = (helper.UNDER_VALGRIND or helper.UNDER_ASAN) and "not under valgrind or ASan"
  or (rawget(_G, "jit") or _VERSION ~= "Lua 5.4") and "under Lua 5.4 only (batch_spec runs the CLI under 5.1 too)"

-- The module's search paths made absolute, for a run started in tmp.
local function absolute(paths)
  local cwd = os.getenv("PWD")
  return (paths or ""):gsub("[^;]+", function(p) return p:sub(1, 1) == "/" and p or cwd .. "/" .. p end)
end
local ENV = ("env LUA_PATH=%s LUA_CPATH=%s DASHSCOPE_API_KEY=%s DASHSCOPE_HTTP_BASE_URL=%s"):format(
  quote(absolute(os.getenv("LUA_PATH"))), quote(absolute(os.getenv("LUA_CPATH"))), quote(helper.KEY), quote(helper.BASE_URL))
local DASHSCOPE = LUA .. " " .. quote(os.getenv("PWD") .. "/bin/dashscope")

-- Runs `dashscope batch ARGS` in tmp: status, stdout, stderr. `background`: a shell suffix.
local function batch(args, suffix)
  local words = {}
  for i, a in ipairs(args) do words[i] = quote(a) end
  local command = ("cd %s || exit 9; %s %s batch %s >stdout 2>stderr </dev/null%s; echo $?")
    :format(quote(tmp), ENV, DASHSCOPE, table.concat(words, " "), suffix or "")
  if os.getenv("DEBUG_BATCH") then io.stderr:write(command, "\n") end
  local p = assert(io.popen(command))
  local status = tonumber(p:read("*a"):match("(%d+)%s*$"))
  p:close()
  return status, helper.read_file(tmp .. "/stdout") or "", helper.read_file(tmp .. "/stderr") or ""
end

local function manifest(lines, name)
  local out = {}
  for i, line in ipairs(lines) do out[i] = type(line) == "table" and json.encode(line) or line end
  helper.write_file(tmp .. "/" .. (name or "m.jsonl"), table.concat(out, "\n") .. "\n")
end

local function job(i)
  local f = helper.liveportrait_fields(i)
  return { model = "liveportrait", image_url = f.image_url, audio_url = f.audio_url, output = ("out/%02d.mp4"):format(i) }
end

local function events(out)
  local list = {}
  for line in out:gmatch("[^\n]+") do list[#list + 1] = json.decode(line) end
  return list
end

local function kinds(out, kind)
  local n = 0
  for _, e in ipairs(events(out)) do if e.event == kind then n = n + 1 end end
  return n
end

describe("dashscope batch", function()
  before_each(function()
    if WHY_NOT then return end
    helper.reset(helper.FAST)
    tmp = os.tmpname()
    os.remove(tmp)
    assert(os.execute("mkdir -p " .. quote(tmp .. "/out")))
  end)

  after_each(function()
    if tmp then os.execute("rm -rf " .. quote(tmp)) end
  end)

  -- Each case: skipped where WHY_NOT says.
  local function case(name, fn)
    it(name, function()
      if WHY_NOT then return pending(WHY_NOT) end
      fn()
    end)
  end

  case("runs the good lines with --skip-bad, and names the bad one", function()
    manifest { job(1), '{"model": "liveportrait", "image_url": "https://x/a.png"}', job(3) }
    local status, out, err = batch { "m.jsonl", "--skip-bad", "--json" }
    assert.equal(0, status, err)
    assert.truthy(err:find("line 2", 1, true))
    assert.truthy(err:find("audio_url", 1, true))
    assert.equal(2, helper.stats().submits)
    assert.equal(2, kinds(out, "saved"))
    local summary = events(out)[#events(out)]
    assert.same({ "summary", 2, 2, 0 }, { summary.event, summary.total, summary.counts.done, summary.counts.queued })
  end)

  case("takes an output that exists for a bad line, before anything is sent", function()
    manifest { job(1), job(2) }
    helper.write_file(tmp .. "/out/02.mp4", "mine")
    local status, _, err = batch { "m.jsonl" }
    assert.equal(2, status)
    assert.truthy(err:find("line 2: out/02.mp4 exists", 1, true), err)
    assert.equal(0, #helper.log())
    assert.equal("mine", helper.read_file(tmp .. "/out/02.mp4"))
  end)

  case("lets one run at a time have the journal: a second one exits 3 and sends nothing", function()
    helper.reset { durations = { running = 0.8 }, concurrency = 0 }
    manifest { job(1) }
    local status = batch({ "m.jsonl", "-q" }, (" & sleep 0.5; %s %s batch m.jsonl >out2 2>err2; echo $? >status2; wait $!")
      :format(ENV, DASHSCOPE))
    assert.equal(0, status)
    assert.equal("3", (helper.read_file(tmp .. "/status2") or ""):match("%d+"))
    assert.truthy(helper.read_file(tmp .. "/err2"):find("JournalBusy", 1, true))
    assert.equal(1, helper.stats().submits)
  end)

  case("settles a submit whose answer was lost from the task list, in the same run: one task per job", function()
    manifest { job(1), job(2), job(3) }
    helper.faults { { match = "submit", kind = "lost", count = 1 } }
    local status, out, err = batch { "m.jsonl", "--json", "--settle", "0.5" }
    assert.equal(0, status, err)
    assert.equal(1, kinds(out, "resolved"))
    assert.same({ 3, 0 }, { helper.stats().submits, helper.stats().duplicate_submits })
    assert.equal(3, kinds(out, "saved"))
  end)

  case("reads a CSV manifest and uploads a file: input relative to it", function()
    helper.write_file(tmp .. "/face.png", "\137PNG fake image")
    manifest({ "model,image_url,audio_url,output",
               '"liveportrait","file:face.png",https://example.com/a.wav,out/1.mp4' }, "m.csv")
    local status, _, err = batch { "m.csv" }
    assert.equal(0, status, err)
    assert.equal(1, #helper.control("GET", "/uploads"))
    assert.truthy(helper.read_file(tmp .. "/out/1.mp4"))
  end)

  case("stops on Ctrl-C saying how to resume, and the same command finishes with nothing sent twice", function()
    helper.reset { durations = { running = 0.5 }, concurrency = 0, latency = 0.05 }
    local lines = {}
    for i = 1, 8 do lines[i] = job(i) end
    manifest(lines)
    local status, _, err = batch({ "m.jsonl" }, " & sleep 1; kill -INT $!; wait $!")
    assert.equal(130, status)
    assert.truthy(err:find("resume with dashscope batch m.jsonl", 1, true), err)
    status, _, err = batch { "m.jsonl", "--settle", "0.5" } -- a submit cut off by the signal is ambiguous
    assert.equal(0, status, err)
    assert.same({ 8, 0 }, { helper.stats().submits, helper.stats().duplicate_submits })
    assert.equal("", (io.popen("ls " .. quote(tmp .. "/out") .. " | grep part"):read("*a")))
  end)
end)
