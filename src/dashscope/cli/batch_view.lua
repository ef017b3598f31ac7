-- What a batch shows while it runs and when it ends. On a terminal, one live line (report.lua's,
-- redrawn in place) with the jobs per status, the jobs finished per minute over the last minute
-- and the time left, and a lasting line above it for each failure; elsewhere one plain line per
-- event on stderr; --quiet shows nothing but failures; --json adds one JSON object per event on
-- stdout, the summary last. It is told everything (events, counts, the summary) by batch.lua and
-- decides nothing about the jobs. Only keys, lines, task ids, statuses, paths and error codes and
-- messages are shown: the module's error values are scrubbed of the key before they reach us.
local core = require("dashscope.core") -- now(): the monotonic clock only the C core has
local report = require("dashscope.cli.report")
local text = require("dashscope.cli.text")

local batch_view = {}

local REDRAW = 0.25 -- seconds between two drawings of the live line: at most 4 a second
local WINDOW = 60   -- seconds over which the rate is measured
local MIN_SPAN = 5  -- seconds of samples before a rate (and an ETA) is shown

-- The statuses in the live line's order (those still to finish last), with their words.
local SHOWN = { { "failed", "failed" }, { "ambiguous", "ambiguous" }, { "downloading", "downloading" },
                { "running", "running" }, { "submitting", "submitting" }, { "queued", "queued" } }
local ACTIVE = { "queued", "submitting", "running", "downloading" }

local View = { __name = "dashscope.cli.BatchView" }
View.__index = View

--- A view for a batch of `o.total` jobs: o.live (draw the live line: a terminal, not --quiet),
--- o.json (events and the summary as JSON on stdout), o.quiet (nothing on stderr but failures).
function batch_view.new(o)
  local quiet = o.quiet == true
  return setmetatable({
    total = o.total or 0, json = o.json == true, quiet = quiet,
    reporter = report.new(quiet, o.live == true),
    tally = {}, samples = {}, drawn = nil,
  }, View)
end

-- A key or path on one line of a terminal: control bytes (a newline, an escape sequence) as \ddd.
local function flat(s)
  return (tostring(s):gsub("%c", function(c) return ("\\%d"):format(c:byte()) end))
end

-- "KEY (line N)", or "line N" alone when that is the key.
local function who(ev)
  local key, line = ev.key, ev.line
  if line and key and key ~= "line " .. line then
    return flat(key) .. " (line " .. line .. ")"
  end
  return key and flat(key) or (line and "line " .. line) or "?"
end

-- "CODE: message", or the message alone when it has no code.
local function error_text(e)
  if type(e) ~= "table" then return e and tostring(e) or "" end
  return (e.code and tostring(e.code) .. ": " or "") .. tostring(e.message or "")
end

local function task_of(ev)
  return ev.task_id and "task " .. ev.task_id or "no task"
end

-- Each event's words after "KIND WHO".
local DETAIL = {
  submitted = function(ev) return task_of(ev) end,
  resumed = function(ev) return task_of(ev) .. (ev.status and ", " .. ev.status or "") end,
  ended = function(ev) return task_of(ev) .. " " .. tostring(ev.status or "ended") end,
  saved = function(ev)
    return flat(ev.path or "") .. (ev.bytes and " (" .. text.bytes(ev.bytes) .. ")" or "")
  end,
  failed = function(ev) return task_of(ev) .. ": " .. error_text(ev.error) end,
  ambiguous = function(ev)
    return "sent, its answer not read" .. (ev.error and ": " .. error_text(ev.error) or "")
  end,
  resolved = function(ev) return task_of(ev) end,
  skipped = function(ev) -- a bad line (its message already starts with "line N: "), or a job done before
    if ev.error then return (error_text(ev.error):gsub("^line %d+: ", "")) end
    return ev.path and "already saved at " .. flat(ev.path) or "a bad line"
  end,
}

-- The members of an event (or a failure) that may be shown, and nothing else.
local function shown_fields(ev)
  local e = type(ev.error) == "table" and ev.error or nil
  return {
    key = ev.key, line = ev.line, task_id = ev.task_id, status = ev.status, path = ev.path,
    bytes = ev.bytes,
    error = e and { code = e.code and tostring(e.code), message = e.message and tostring(e.message) } or nil,
  }
end

-- {"event": kind, ...}: the kind first, for a reader of the stream.
local function json_event(kind, obj)
  local rest = text.json(obj)
  return '{"event":' .. text.json(kind) .. (rest == "{}" and "}" or "," .. rest:sub(2))
end

--- One event of a job: ev = { kind, key, line, task_id, status, path, bytes, error = {code, message} }.
function View:event(ev)
  if self.json then
    io.stdout:write(json_event(ev.kind, shown_fields(ev)), "\n")
    io.stdout:flush()
  end
  local detail = DETAIL[ev.kind]
  local line = ev.kind .. " " .. who(ev) .. (detail and ": " .. detail(ev) or "")
  if ev.kind == "failed" and self.quiet then
    self.reporter:fail(line)
  elseif ev.kind == "failed" or ev.kind == "ambiguous" or not self.reporter.live then
    self.reporter:say(line) -- nothing when quiet; on a terminal, above the live line
  end
end

--- The jobs per status now: c = { queued, submitting, running, downloading, done, failed, ambiguous }.
function View:counts(c)
  self.tally = c
end

-- Remembers (now, jobs finished) and forgets the samples older than the window, keeping the last
-- of those as the window's start; the jobs per minute over the window, or nil while it is short.
local function rate(self, now, finished)
  local samples = self.samples
  samples[#samples + 1] = { now, finished }
  while #samples > 2 and samples[2][1] <= now - WINDOW do
    table.remove(samples, 1)
  end
  local span = now - samples[1][1]
  if span < MIN_SPAN then return nil end
  return (finished - samples[1][2]) * 60 / span
end

--- The live line's words for counts `c`, `per_min` (or nil) and the batch's total.
function batch_view.line(c, per_min, total)
  local done = c.done or 0
  local parts = { ("%d/%d done"):format(done, total) }
  for _, s in ipairs(SHOWN) do
    local n = c[s[1]] or 0
    if n > 0 then parts[#parts + 1] = n .. " " .. s[2] end
  end
  local left = 0
  for _, s in ipairs(ACTIVE) do left = left + (c[s] or 0) end
  if per_min then
    parts[#parts + 1] = ("%.1f jobs/min"):format(per_min)
    if per_min > 0 and left > 0 then
      parts[#parts + 1] = "ETA " .. text.seconds(left * 60 / per_min)
    end
  end
  return table.concat(parts, ", ")
end

--- Redraws the live line (a terminal only), at most 4 times a second; `now` is core.now()'s clock.
function View:tick(now)
  if not self.reporter.live then return end
  now = now or core.now()
  if self.drawn and now - self.drawn < REDRAW then return end
  self.drawn = now
  local c = self.tally
  local per_min = rate(self, now, (c.done or 0) + (c.failed or 0))
  self.reporter:show(batch_view.line(c, per_min, self.total))
end

-- "[a, b]": cjson has no empty array (an empty table is "{}"), so the list is written by hand.
local function json_list(items)
  local out = {}
  for i, item in ipairs(items or {}) do out[i] = text.json(shown_fields(item)) end
  return "[" .. table.concat(out, ",") .. "]"
end

local function json_summary(s, total)
  local c = {}
  for k, v in pairs(s.counts or {}) do c[k] = v end
  local head = json_event("summary", { total = total, counts = c, elapsed = s.elapsed, journal = s.journal,
                                       journal_bytes = s.journal_bytes })
  return head:sub(1, -2) .. ',"failures":' .. json_list(s.failures) .. ',"ambiguous":' .. json_list(s.ambiguous) .. "}"
end

-- The summary's words: a headline, then every failure and every ambiguous job, with what to do.
local function summary_lines(s, total)
  local c, lines = s.counts or {}, {}
  local head = ("batch: %d of %d done"):format(c.done or 0, total)
  if (c.failed or 0) > 0 then head = head .. ", " .. c.failed .. " failed" end
  if (c.ambiguous or 0) > 0 then head = head .. ", " .. c.ambiguous .. " ambiguous" end
  lines[1] = head .. " in " .. text.seconds(s.elapsed or 0) .. (s.journal and " (journal " .. flat(s.journal) .. ")" or "")
  local failures, ambiguous = s.failures or {}, s.ambiguous or {}
  if #failures > 0 then lines[#lines + 1] = "failed (" .. #failures .. "):" end
  for _, f in ipairs(failures) do
    lines[#lines + 1] = "  " .. who(f) .. ", " .. task_of(f) .. ": " .. error_text(f.error)
  end
  if #ambiguous > 0 then
    lines[#lines + 1] = "ambiguous (" .. #ambiguous .. "): sent, but the answer was never read, so the task "
      .. "may exist; a job is never submitted again behind your back:"
  end
  for _, a in ipairs(ambiguous) do
    local e = type(a.error) == "table" and a.error or {}
    lines[#lines + 1] = "  " .. who(a) .. (a.error and ": " .. error_text(a.error) or "")
      .. (e.retry_in and " (may resolve in " .. text.seconds(e.retry_in) .. ")" or "")
  end
  if #ambiguous > 0 then
    lines[#lines + 1] = "  run the same command again to resolve them from the task list (a job takes the one "
      .. "task of its model created while it was sent, when there is exactly one); to look yourself: "
      .. text.PROG .. " list --model MODEL"
  end
  return lines, #failures + #ambiguous > 0
end

--- The batch's end: s = { counts, elapsed (seconds), failures = { {key, line, task_id, error} ...},
--- ambiguous = { the same }, journal = path, journal_bytes = its size (JSON only) }. On stderr (with --quiet only when something failed);
--- with --json also one object on stdout, {"event":"summary", ...}, the last.
function View:summary(s)
  self.reporter:clear()
  if self.json then
    io.stdout:write(json_summary(s, self.total), "\n")
    io.stdout:flush()
  end
  local lines, troubled = summary_lines(s, self.total)
  if self.quiet and troubled then
    for _, line in ipairs(lines) do io.stderr:write(line, "\n") end
    io.stderr:flush()
  else
    for _, line in ipairs(lines) do self.reporter:say(line) end
  end
end

--- Takes the live line away.
function View:close()
  self.reporter:clear()
end

return batch_view
