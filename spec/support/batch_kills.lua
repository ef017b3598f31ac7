-- The kill-and-rerun driver of spec/batch_spec.lua's done-means case (issue 13): one manifest run
-- by `dashscope batch` again and again, each run but the last killed with SIGKILL at a point of
-- its work read off its journal and its output directory, with seeded delays; then plain reruns
-- until one exits 0. It configures the server for that (quotas on, short jobs, answers held back
-- so that a submit is in flight long enough to be cut off, big and sometimes slow videos so that a
-- download is caught half-way) and checks what the runs said: the final exit 0, the kill points
-- reached, and every job the --json events called ambiguous resolved or reported (DESIGN13.md).
-- A job a run reports ambiguous (exit 3) is then claimed as a user would (journal:claim, with the
-- server's task made from its inputs) before the next rerun. What the server and the disk hold
-- afterwards the spec checks itself.
local helper = require("spec.support.helper")
local batch_run = require("spec.support.batch_run")
local core = require("dashscope.core")

local batch_kills = {}

-- Where each run is killed, in order; then plain reruns. "submit": the journal's last line is a
-- submit's intent (the request on its way or its answer not read: an ambiguous job); "ended" and
-- "saved": just after such a record; "download": a .part- file in out/; "random": a seeded delay
-- after the start; "start": before the program has done anything.
batch_kills.POINTS = { "start", "submit", "random", "submit", "ended", "download", "saved", "submit" }
local RERUNS = 6
local RUN_SECONDS = 30

-- A journal record's kind: the job's new state (src/dashscope/journal_log.lua: { k = key, st =
-- state, ... }; src/dashscope/journal.lua writes "sending" before a submit, "ended", "saved").
local function kind(record)
  return type(record) == "table" and record.st or nil
end
local INTENT = { sending = true }
local ENDED = { ended = true }
local SAVED = { saved = true }

local function has_partial(dir)
  for name in pairs(batch_run.listing(dir)) do
    if name:find(".part-", 1, true) then return true end
  end
  return false
end

-- Whether `point` has come: `new` the journal lines first seen since the last look.
local function due(point, w, new)
  if point == "start" then return true end
  if point == "random" then return core.now() >= w.t0 + w.delay end
  if point == "download" then return has_partial(w.out) end
  if point == "submit" then
    local last = new[#new]
    return last ~= nil and last == w.tail:last() and INTENT[kind(last.record)] == true
  end
  local want = point == "ended" and ENDED or SAVED
  for _, l in ipairs(new) do
    if want[kind(l.record)] then return true end
  end
  return false
end

-- The journal's lines not seen in any run before (a run may rewrite the file when it opens it).
local function fresh(w)
  local new = {}
  for _, l in ipairs(w.tail:poll()) do
    if not w.seen[l.text] then
      w.seen[l.text] = true
      new[#new + 1] = l
    end
  end
  return new
end

-- One run, killed at `point` (nil: left to its end): { point, status, killed, key, events, ... }.
local function one_run(w, point)
  local run = batch_run.start(w.dir, w.argv, w.env)
  w.t0, w.delay = core.now(), 0.2 + math.random() * 1.3
  local deadline = w.t0 + RUN_SECONDS
  repeat
    local new = fresh(w)
    if point and due(point, w, new) then
      local last = w.tail:last()
      local key = point == "submit" and last.record.k or nil
      -- a submit is killed within the server's latency (its answer not read), or just before it
      -- leaves; a download or a record after a moment of its own
      batch_run.sleep(point == "submit" and math.random() * 0.15 or math.random() * 0.02)
      local status = run:kill()
      return { run = run, point = point, status = status, killed = status == 137, key = key }
    end
    local status = run:status()
    if status then return { run = run, point = point, status = status, killed = false } end
    batch_run.sleep(0.003)
  until core.now() > deadline
  run:kill()
  error(("run %s did not end within %d s; stderr:\n%s"):format(tostring(point), RUN_SECONDS, run:stderr()))
end

-- The server for the case: quotas on, short jobs, answers held back, videos of `size` bytes;
-- a third of the downloads held 0.3 s before they start, and a tenth of the submits' answers lost
-- (the task created: an ambiguous job within a run), drawn from `seed`.
local function configure(seed, size)
  helper.reset { rate_limits = true, concurrency = 0, latency = 0.2, result_size = size,
                 durations = { pending = 0, pre_processing = 0, running = 0.3, post_processing = 0 } }
  helper.set_faults({ { match = "result", kind = "slow", delay = 0.3, probability = 0.3 },
                      { match = "submit", kind = "lost", probability = 0.1 } }, seed)
end

-- The keys a list of ambiguous entries names (strings or { key = ... }).
local function keys_of(list, into)
  for _, a in ipairs(type(list) == "table" and list or {}) do
    into[type(a) == "table" and a.key or a] = true
  end
  return into
end

-- Whether a run from the `i`th on resolved job `key` (an event "resolved"), or reported it: named
-- it in the summary of a run that exited 3 (DESIGN13.md), whose ambiguous jobs claim_reported
-- then settles as a user would. With `cut_off`, an event "ambiguous" of it counts too.
local function settled(runs, i, key, cut_off)
  for j = i, #runs do
    for _, e in ipairs(runs[j].events) do
      if e.key == key and (e.event == "resolved" or (cut_off and e.event == "ambiguous")) then return true end
      if e.event == "summary" and runs[j].status == 3 and keys_of(e.ambiguous, {})[key] then return true end
    end
  end
  return false
end

-- Every job an event called ambiguous was resolved in that run or a later one, or reported by a
-- run that exited 3 (a killed run reports nothing: a later one must); a submit cut off by a kill
-- was seen by a later run, which said so.
local function check_ambiguous(runs)
  for i, r in ipairs(runs) do
    if r.key then
      assert(settled(runs, i + 1, r.key, true), ("run %d: the cut-off submit of %s never resolved nor reported"):format(i, r.key))
    end
    for _, e in ipairs(r.events) do
      if e.event == "ambiguous" then
        assert(settled(runs, i, e.key), ("run %d: job %s ambiguous, neither resolved then or later nor reported with exit 3")
          :format(i, tostring(e.key)))
      end
    end
  end
end

-- The runs, one line each, on stderr (with the seed: a failure can be replayed).
local function describe_runs(seed, runs)
  local lines = { ("batch kills (seed %d, DASHSCOPE_BATCH_SEED=%d replays):"):format(seed, seed) }
  for i, r in ipairs(runs) do
    local kinds = {}
    for _, e in ipairs(r.events) do kinds[e.event or "?"] = (kinds[e.event or "?"] or 0) + 1 end
    local counts, notes = {}, {}
    for k, n in pairs(kinds) do counts[#counts + 1] = k .. " " .. n end
    table.sort(counts)
    for _, e in ipairs(r.events) do
      if e.event == "resolved" or e.event == "ambiguous" or e.event == "failed" then
        notes[#notes + 1] = ("%s %s: %s"):format(e.event, tostring(e.key),
          tostring(e.task_id or e.status or (e.error and e.error.code)))
      end
    end
    for key, id in pairs(r.claims or {}) do notes[#notes + 1] = ("then claimed %s: %s"):format(key, tostring(id)) end
    lines[#lines + 1] = ("  run %d at %s: exit %d%s%s; events: %s%s"):format(i, tostring(r.point or "its end"),
      r.status, r.killed and " (killed)" or "", r.key and (", submit of " .. tostring(r.key) .. " cut off") or "",
      table.concat(counts, ", "), #notes > 0 and "; " .. table.concat(notes, "; ") or "")
  end
  io.stderr:write(table.concat(lines, "\n"), "\n")
end

-- What a user does with the jobs a run reported ambiguous (DESIGN13.md: journal:claim): each is
-- given the server's task made from its inputs (`input_of(key)`: its image_url), or none. The
-- claims, by key.
local function claim_reported(w, r)
  local reported = {}
  for _, e in ipairs(r.events) do
    if e.event == "summary" then keys_of(e.ambiguous, reported) end
  end
  if r.status ~= 3 or next(reported) == nil then return nil end
  local by_input = {}
  for _, t in ipairs(helper.control("GET", "/tasks")) do
    by_input[t.input.image_url] = by_input[t.input.image_url] or t.task_id
  end
  local client = helper.client()
  local journal = assert(client:journal(w.journal))
  local claims = {}
  for key in pairs(reported) do
    claims[key] = by_input[w.input_of(key)] or false
    assert(journal:claim(key, claims[key]))
  end
  journal:close()
  client:close()
  return claims
end

--- Runs the case: o = { dir, seed, manifest, video_size, env, input_of }. Raises what failed.
function batch_kills.run(o)
  math.randomseed(o.seed)
  configure(o.seed, o.video_size)
  local w = { dir = o.dir, out = o.dir .. "/out", env = o.env, seen = {}, input_of = o.input_of,
              argv = { "batch", o.manifest, "--json", "--settle", "1" }, journal = o.manifest .. ".journal",
              tail = batch_run.tail(o.manifest .. ".journal") }
  local runs, started = {}, core.now()
  for _, point in ipairs(batch_kills.POINTS) do runs[#runs + 1] = one_run(w, point) end
  for _, r in ipairs(runs) do r.events = r.run:events() end
  for _ = 1, RERUNS do
    local r = one_run(w, nil)
    runs[#runs + 1], r.events = r, r.run:events()
    if r.status == 0 then break end
    r.claims = claim_reported(w, r)
  end
  describe_runs(o.seed, runs)
  io.stderr:write(("batch kills: %d runs, %.1f s\n"):format(#runs, core.now() - started))
  local last = runs[#runs]
  assert(last.status == 0, ("no rerun exited 0 (the last: %d); stderr:\n%s"):format(last.status, last.run:stderr()))
  local points = {}
  for _, r in ipairs(runs) do
    if r.killed then points[r.point] = true end
  end
  local n = 0
  for _ in pairs(points) do n = n + 1 end
  assert(n >= 5, ("killed at %d different points only"):format(n))
  check_ambiguous(runs)
  return runs
end

return batch_kills
