-- client:journal: jobs that survive the process, against the local server. A crash is played by
-- writing what a killed run leaves in the file (spec/batch_spec.lua kills real runs).
local helper = require("spec.support.helper")

local json = helper.json

local function fresh_path()
  local path = os.tmpname()
  os.remove(path)
  return path
end

local function lines_of(path)
  local out = {}
  for line in (helper.read_file(path) or ""):gmatch("[^\n]+") do out[#out + 1] = json.decode(line) end
  return out
end

local function append(path, text)
  local f = assert(io.open(path, "ab"))
  f:write(text)
  f:close()
end

local FIELDS = helper.liveportrait_fields

-- Under valgrind, the cases that drive the journal's C (src/logfile.c: open, lock, read, append,
-- truncate, size, the compaction's rename) run; those about the service's answers are Lua alone,
-- and valgrind's run is CI's longest part.
local function lua_only(name, fn)
  it(name, function()
    if helper.UNDER_VALGRIND then return pending("Lua only: not under valgrind") end
    fn()
  end)
end

describe("a journal", function()
  local client, path, journal

  before_each(function()
    helper.reset(helper.FAST)
    client = helper.client()
    path = fresh_path()
    journal = assert(client:journal(path, { settle = 0.3 }))
  end)

  after_each(function()
    journal:close()
    client:close()
    os.remove(path)
    os.remove(path .. ".mp4")
  end)

  it("writes a submit's intent before it is sent and its task id after, and gives the same task back without a request", function()
    local t = assert(journal:submit("a", "liveportrait", FIELDS(1)))
    local records = lines_of(path)
    assert.equal("lua-dashscope", records[1].journal)
    assert.same({ "sending", "submitted" }, { records[2].st, records[3].st })
    assert.equal(t.id, records[3].id)
    local again = assert(journal:submit("a", "liveportrait", FIELDS(1)))
    assert.equal(t.id, again.id)
    assert.equal(1, helper.stats().submits)
    journal:close()
    journal = assert(client:journal(path))
    local job = journal:job("a")
    assert.same({ "submitted", t.id, "liveportrait", "liveportrait" }, { job.state, job.task_id, job.method, job.model })
    assert.equal(t.id, assert(journal:submit("a", "liveportrait", FIELDS(1))).id)
    assert.equal(1, helper.stats().submits)
  end)

  it("writes the task's end and the download, and a saved job whose file is there costs no request", function()
    local t = assert(journal:submit("a", "liveportrait", FIELDS(1)))
    assert(t:wait())
    assert.equal("ended", journal:job("a").state)
    assert.equal("SUCCEEDED", journal:job("a").status)
    local queries = #helper.requests("/tasks/" .. t.id)
    assert.equal(path .. ".mp4", journal:download("a", path .. ".mp4"))
    assert.equal(queries, #helper.requests("/tasks/" .. t.id)) -- the ended handle knows its video
    local job = journal:job("a")
    assert.same({ "saved", path .. ".mp4", 65536 }, { job.state, job.path, job.bytes })
    local before = #helper.log()
    assert.equal(path .. ".mp4", journal:download("a", path .. ".mp4"))
    assert.equal(before, #helper.log())
  end)

  it("takes a file put in place by a download whose run stopped before writing it down", function()
    local t = assert(journal:submit("a", "liveportrait", FIELDS(1)))
    assert(t:wait())
    journal:close()
    append(path, json.encode { k = "a", saving = path .. ".mp4", tmp = path .. ".part-1" } .. "\n") -- the run stopped
    helper.write_file(path .. ".part-1", "half a vid") -- here, its temporary file left...
    helper.write_file(path .. ".mp4", "whole video") -- ...or just after its rename
    journal = assert(client:journal(path))
    local before = #helper.requests("/results/")
    assert.equal(path .. ".mp4", journal:download("a", path .. ".mp4"))
    assert.same({ "saved", 11 }, { journal:job("a").state, journal:job("a").bytes })
    assert.is_nil(helper.read_file(path .. ".part-1"))
    assert.equal(before, #helper.requests("/results/"))
  end)

  -- The order that leaves no file behind a kill at any moment (batch_spec's SIGKILL case once
  -- found a part file the journal did not know of: the file was made before its name was written).
  it("writes a download's temporary file name down before the file is made", function()
    local t = assert(journal:submit("a", "liveportrait", FIELDS(1)))
    assert(t:wait())
    local seen
    assert(journal:download("a", path .. ".mp4", { on_temp = function(tmp)
      seen = { exists = helper.read_file(tmp) ~= nil, written = (helper.read_file(path) or ""):gsub("\\/", "/"):find(tmp, 1, true) ~= nil }
    end }))
    assert.same({ exists = false, written = true }, seen)
  end)

  it("is held by one journal at a time, and the next one opens once it is closed", function()
    local other, err = client:journal(path)
    assert.is_nil(other)
    assert.equal("JournalBusy", err.code)
    journal:close()
    journal = assert(client:journal(path))
  end)

  it("cuts a record a crash tore, and refuses a file whose middle does not read, or that is no journal", function()
    assert(journal:submit("a", "liveportrait", FIELDS(1)))
    journal:close()
    append(path, '{"k":"b","st":"sen')
    journal = assert(client:journal(path))
    assert.is_nil(journal:job("b"))
    assert.equal("submitted", journal:job("a").state)
    assert.equal("\n", helper.read_file(path):sub(-1))
    journal:close()
    append(path, "garbage\n" .. json.encode { k = "c", st = "new" } .. "\n")
    local damaged, err = client:journal(path)
    assert.is_nil(damaged)
    assert.equal("JournalDamaged", err.code)
    assert.truthy(err.message:find("line 4", 1, true))
    local other = fresh_path()
    helper.write_file(other, "hello\n")
    damaged, err = client:journal(other)
    os.remove(other)
    assert.is_nil(damaged)
    assert.equal("JournalDamaged", err.code)
    journal = assert(client:journal(fresh_path())) -- for after_each
  end)

  it("refuses a record of the wrong kind, and never sends a job whose model it does not know", function()
    journal:close()
    append(path, json.encode { k = "x", st = "submitted", m = "nope", id = "t1", t = 1 } .. "\n")
    journal = assert(client:journal(path))
    assert.equal("ambiguous", journal:job("x").state)
    local state, err = journal:resolve("x")
    assert.is_nil(state)
    assert.same({ "Ambiguous", false }, { err.code, err.retryable })
    journal:close()
    append(path, json.encode { k = "y", st = "submitted", m = "liveportrait", id = "../../etc" } .. "\n")
    local damaged
    damaged, err = client:journal(path)
    assert.is_nil(damaged)
    assert.equal("JournalDamaged", err.code)
    journal = assert(client:journal(fresh_path())) -- for after_each
    assert.equal(0, #helper.log())
  end)

  lua_only("gives back a job a crash left between intent and answer as ambiguous, and finds its task in the list", function()
    local t = assert(client:liveportrait(FIELDS(1))) -- the task a killed run created
    journal:close()
    append(path, json.encode { k = "a", st = "sending", m = "liveportrait", t = require("dashscope.core").wallclock() - 1,
                               d = "0" } .. "\n")
    journal = assert(client:journal(path, { settle = 0.3 }))
    assert.equal("ambiguous", journal:job("a").state)
    assert.equal("submitted", journal:resolve("a"))
    assert.equal(t.id, journal:job("a").task_id)
    assert.equal(1, helper.stats().submits)
  end)

  lua_only("leaves a lost answer ambiguous, then claims the one task the list shows: one task in all", function()
    helper.faults { { match = "submit", kind = "lost", count = 1 } }
    local t, err = journal:submit("a", "liveportrait", FIELDS(1))
    assert.is_nil(t)
    assert.is_true(err.task_may_exist)
    assert.equal("ambiguous", journal:job("a").state)
    t = assert(journal:submit("a", "liveportrait", FIELDS(1)))
    assert.equal(1, helper.stats().submits)
    assert.equal(helper.control("GET", "/tasks")[1].task_id, t.id)
  end)

  lua_only("resends a submit that created nothing only once the list has had `settle` seconds to show it", function()
    helper.faults { { match = "submit", kind = "drop", count = 1 } }
    local t, err = journal:submit("a", "liveportrait", FIELDS(1))
    assert.is_nil(t)
    assert.is_true(err.task_may_exist)
    t, err = journal:submit("a", "liveportrait", FIELDS(1))
    assert.is_nil(t)
    assert.same({ "Ambiguous", true }, { err.code, err.retryable })
    assert.is_true(err.retry_in > 0 and err.retry_in <= 0.3)
    assert.equal(0, helper.stats().submits)
    require("dashscope.core").sleep(0.35)
    assert(journal:submit("a", "liveportrait", FIELDS(1)))
    assert.equal(1, helper.stats().submits)
  end)

  lua_only("reports a job the list cannot settle, with the tasks it could be, and sends nothing; claim settles it", function()
    assert(client:liveportrait(FIELDS(9))) -- another program's task, in the same window
    helper.faults { { match = "submit", kind = "lost", count = 1 } }
    assert.is_nil(journal:submit("a", "liveportrait", FIELDS(1)))
    local t, err = journal:submit("a", "liveportrait", FIELDS(1))
    assert.is_nil(t)
    assert.same({ "Ambiguous", false, 2 }, { err.code, err.retryable, #err.candidates })
    assert.equal(2, helper.stats().submits)
    assert.truthy(helper.raises(function() journal:claim("a", "no such/id") end):find("task_id", 1, true))
    assert(journal:claim("a", err.candidates[1]))
    assert.equal(err.candidates[1], assert(journal:submit("a", "liveportrait", FIELDS(1))).id)
    assert.equal(2, helper.stats().submits)
  end)

  lua_only("keeps a submit the service refused, and sends it again only on retry", function()
    helper.faults { { match = "submit", kind = "status", status = 400, code = "InvalidParameter", count = 1 } }
    local t, err = journal:submit("a", "liveportrait", FIELDS(1))
    assert.is_nil(t)
    assert.equal("InvalidParameter", err.code)
    assert.equal("refused", journal:job("a").state)
    t, err = journal:submit("a", "liveportrait", FIELDS(1))
    assert.is_nil(t)
    assert.truthy(err.message:find("journal:retry", 1, true))
    assert(journal:retry("a"))
    assert(journal:submit("a", "liveportrait", FIELDS(1)))
    assert.equal(1, helper.stats().submits)
  end)

  lua_only("sends a job that failed again only on retry, keeping its old task claimed", function()
    local t = assert(journal:submit("a", "liveportrait", { image_url = "https://example.com/__fail__.png",
                                                          audio_url = "https://example.com/a.wav" }))
    assert.is_nil(t:wait())
    local job = journal:job("a")
    assert.same({ "ended", "FAILED", "InvalidFile.Content" }, { job.state, job.status, job.error.code })
    assert(journal:retry("a"))
    local again = assert(journal:submit("a", "liveportrait", { image_url = "https://example.com/__fail__.png",
                                                              audio_url = "https://example.com/a.wav" }))
    assert.are_not.equal(t.id, again.id)
    journal:compact()
    journal:close()
    journal = assert(client:journal(path))
    assert.equal(again.id, journal:job("a").task_id)
  end)

  lua_only("refuses a key sent before with other fields (JobChanged), sending nothing", function()
    assert(journal:submit("a", "liveportrait", FIELDS(1)))
    local t, err = journal:submit("a", "liveportrait", FIELDS(2))
    assert.is_nil(t)
    assert.equal("JobChanged", err.code)
    assert.equal(1, helper.stats().submits)
  end)

  it("compacts to one line per job and gives the same jobs back", function()
    for i = 1, 3 do assert(journal:submit("k" .. i, "liveportrait", FIELDS(i))) end
    local before = journal:size()
    assert(journal:compact())
    assert.is_true(journal:size() < before)
    assert.equal(4, #lines_of(path))
    journal:close()
    journal = assert(client:journal(path))
    local keys = {}
    for key, job in journal:jobs() do keys[#keys + 1] = key .. "=" .. job.state end
    assert.same({ "k1=submitted", "k2=submitted", "k3=submitted" }, keys)
  end)

  lua_only("raises for misuse before anything is written, naming the field", function()
    local size = journal:size()
    for field, call in pairs {
      key = function() journal:submit("", "liveportrait", FIELDS(1)) end,
      method = function() journal:submit("a", "liveportrait_detect", FIELDS(1)) end,
      image_url = function() journal:submit("a", "liveportrait", { image_url = "/etc/passwd", audio_url = "https://x/a.wav" }) end,
    } do
      local ok, e = pcall(call)
      assert.is_false(ok)
      assert.equal(field, e.field)
    end
    local ok, e = pcall(journal.retry, journal, "nope")
    assert.is_false(ok)
    assert.equal("key", e.field)
    assert.equal(size, journal:size())
    assert.equal(0, #helper.log())
    journal:close()
    assert.truthy(helper.raises(function() journal:submit("a", "liveportrait", FIELDS(1)) end):find("closed", 1, true))
  end)

  it("never writes the API key, even when the service quotes it back", function()
    helper.faults { { match = "submit", kind = "status", status = 400, code = "InvalidParameter",
                      message = "bad key " .. helper.KEY, count = 1 } }
    assert.is_nil(journal:submit("a", "liveportrait", FIELDS(1)))
    assert.is_nil(helper.read_file(path):find(helper.KEY, 1, true))
  end)
end)
