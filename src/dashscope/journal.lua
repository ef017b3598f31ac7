-- The Journal class (client:journal(path)): jobs that survive the process. Each job has a key the
-- program chooses (an output path, a line number); the journal writes, durably and before acting,
-- that a submit is about to be sent, then its task id as soon as the answer is read, the task's
-- end and the download (journal_log.lua owns the file). So a process killed at any instant leaves
-- every job in a known state, and a journal reopened on the same file gives every job back:
--
--   new        never sent, or sent and certainly never created: journal:submit sends it
--   sending    its submit is on its way in this process
--   ambiguous  sent, the answer never read (a crash, a lost answer): the task may exist
--   submitted  its task id is known; ended: the task ended (status, and why it failed); saved: its
--              video is on disk (path, bytes); refused: the service refused the submit (4xx)
--
-- An ambiguous job is never sent again behind the user's back: journal:resolve asks the task list
-- for the model's tasks created in the job's window that no job of this journal claims; exactly
-- one, with no other ambiguous job of the model in that window, is the job's task; none, once
-- `settle` seconds have passed since the submit ended, means it was never created; anything else
-- is reported, for journal:claim. Built on the client's public methods; owns the job table.
local core = require("dashscope.core")
local check = require("dashscope.check")
local errors = require("dashscope.errors")
local models = require("dashscope.models")
local localfile = require("dashscope.localfile")
local journal_log = require("dashscope.journal_log")
local journal_resolve = require("dashscope.journal_resolve")
local digest = require("dashscope.journal_digest")
local TERMINAL = require("dashscope.status").TERMINAL

local journal = {}

local Journal = { __name = "dashscope.Journal" }
Journal.__index = Journal

-- How far the service's clock may be from ours, seconds: the window a task list is asked for.
local SKEW = 60

journal.OPTIONS = {
  { name = "settle", type = "number", min = 0, max = 3600,
    doc = "seconds after an unanswered submit ended (or the journal was reopened after a crash)"
      .. " before a task list without its task means it was never created (default 15)" },
}
local DEFAULT_SETTLE = 15

local STATES = { new = true, sending = true, ambiguous = true, submitted = true, ended = true,
                 saved = true, refused = true }
local HAS_TASK = { submitted = true, ended = true, saved = true }

local function check_key(key, what)
  if type(key) ~= "string" or key == "" or #key > 1024 or key:find("%c") then
    check.fail(what, "key must be a non-empty string of at most 1024 bytes without control characters (got "
      .. (type(key) == "string" and localfile.quote(key) or type(key)) .. ")", "key", "invalid")
  end
end

local function now()
  return core.wallclock()
end

-- Replays one record into the job table.
local function apply(self, r)
  local job = self._by_key[r.k]
  if not job then
    job = { key = r.k }
    self._by_key[r.k] = job
    self._order[#self._order + 1] = r.k
  end
  if r.st == "new" and job.id then -- retried: its old task still counts as claimed
    job.old = (job.old and job.old .. "," or "") .. job.id
    job.id, job.s, job.c, job.msg, job.p, job.n = nil, nil, nil, nil, nil, nil
  end
  for field, value in pairs(r) do
    if field ~= "k" then job[field] = value end
  end
  if job.id then self._claimed[job.id] = r.k end
  for id in (r.old or ""):gmatch("[^,]+") do self._claimed[id] = r.k end
  local contract = job.m and models[job.m]
  if not STATES[job.st] or (job.m and not (contract and not contract.synchronous)) then
    job.st, job.m = "ambiguous", contract and not contract.synchronous and job.m or nil -- never resent blindly
  end
end

-- Writes `changes` to job `key` (created when new): durable before it returns; true, or nil, err.
function Journal:_write(key, changes)
  changes.k = key
  local ok, err = journal_log.append(self._log, changes, self.path)
  if not ok then return nil, err end
  apply(self, changes)
  return true
end

--- client:journal(path, opts): opens (creating) the journal at `path`, locked by this process: the
--- Journal, or nil and err (JournalBusy, JournalDamaged, JournalError).
function journal.open(client, path, opts)
  if type(path) ~= "string" or path == "" or path:find("%z") then
    check.fail("client:journal", "path must be a non-empty string without NUL", "path", "invalid")
  end
  local o = check.fields(journal.OPTIONS, opts or {}, "client:journal")
  local self = setmetatable({
    path = path, _client = client, _settle = o.settle or DEFAULT_SETTLE, _opened_at = now(),
    _by_key = {}, _order = {}, _claimed = {}, _handles = {},
  }, Journal)
  local log, err = journal_log.open(path, function(r) apply(self, r) end)
  if not log then return nil, err end
  self._log = log
  for _, job in pairs(self._by_key) do
    if job.st == "sending" then job.st = "ambiguous" end -- its process is gone: we hold the lock
  end
  return self
end

function Journal:__tostring()
  return string.format("dashscope.Journal (%s, %d jobs%s)", self.path, #self._order, self._log and "" or ", closed")
end

local function open(self, what)
  if not self._log then check.fail(what, "the journal is closed", nil, "closed") end
end

-- What a job is, for the user: a copy, with the record's short names spelled out.
local function view(job)
  local contract = job.m and models[job.m]
  return {
    key = job.key, state = job.st, method = job.m, model = contract and contract.model,
    task_id = job.id, status = job.s, path = job.p, bytes = job.n, at = job.t,
    error = job.c and { code = job.c, message = job.msg } or nil,
  }
end

--- What the journal knows of job `key`: { key, state, method, model, task_id, status, path, bytes,
--- at (when its submit was sent, wall clock), error = { code, message } }, or nil.
function Journal:job(key)
  open(self, "journal:job")
  local job = self._by_key[key]
  return job and view(job)
end

--- for key, job in journal:jobs() do ... end: every job, in the order they were first written.
function Journal:jobs()
  open(self, "journal:jobs")
  local i = 0
  return function()
    i = i + 1
    local key = self._order[i]
    if key then return key, view(self._by_key[key]) end
  end
end

-- Records the end of a task this journal follows (a watcher's on_done).
local function ended(self, key, t, err)
  local job = self._by_key[key]
  if not self._log or not job or job.id ~= t.id or not TERMINAL[t:status()] or job.st ~= "submitted" then
    return
  end
  local changes = { st = "ended", s = t:status() }
  if t:status() ~= "SUCCEEDED" and err then
    changes.c, changes.msg = tostring(err.code), tostring(err.message):sub(1, 300)
  end
  self:_write(key, changes) -- a failed write leaves it "submitted": the next run asks again
  -- A batch of 10,000 keeps the handles of ended tasks only until their video is saved: the handle
  -- holds the video's URL, so that the download needs no status query on the busy /tasks quota.
  if changes.s ~= "SUCCEEDED" then self._handles[key] = nil end
end

--- The task handle of job `key` (submitted, ended or saved), followed so that its end is written;
--- nil for a job without a task.
function Journal:task(key)
  open(self, "journal:task")
  local job = self._by_key[key]
  if not job or not HAS_TASK[job.st] then return nil end
  local t = self._handles[key]
  if t and t.id == job.id then return t end
  t = self._client:task(job.id, models[job.m] and models[job.m].model)
  self._handles[key] = t
  if job.st == "submitted" then
    self._client:watch(t, { on_done = function(done, _, err) ended(self, key, done, err) end })
  end
  return t
end

local function ambiguous(job, message, fields)
  fields.code, fields.job_key, fields.message = "Ambiguous", job.key, "job " .. job.key .. ": " .. message
  return nil, errors.new(fields)
end

--- journal:resolve(key): settles an ambiguous job from the task list: "submitted" (its task was
--- found: the one task of its model created in its window that no job claims), "new" (none was,
--- `settle` seconds after its submit ended: it was never created), or nil and err (Ambiguous:
--- err.retry_in seconds when asking later may settle it, err.candidates the task ids it could be).
--- Other states are returned as they are.
function Journal:resolve(key)
  open(self, "journal:resolve")
  local job = self._by_key[key]
  if not job or job.st ~= "ambiguous" then return job and job.st end
  if not (job.m and job.t) then
    return ambiguous(job, "its record does not say which model, or when: claim it with journal:claim",
      { retryable = false })
  end
  local from, to = journal_resolve.window(job, self._opened_at, SKEW)
  local busy = journal_resolve.rival(self._by_key, job, from, to, self._opened_at, SKEW)
  if busy and busy:find("on its way") then
    return ambiguous(job, busy .. "; asked again once it is answered", { retryable = true, retry_in = 1 })
  end
  local model = models[job.m].model
  local found, err = journal_resolve.unclaimed(self._client, model, from, to, self._claimed)
  if not found then return nil, errors.with(err, { job_key = key }) end
  if #found == 1 and not busy then
    self:_write(key, { st = "submitted", id = found[1], how = "found in the task list" })
    return "submitted"
  elseif #found == 0 then
    local wait = (job.e or self._opened_at) + self._settle - now()
    if wait > 0 then
      return ambiguous(job, string.format("no task yet; the list is asked again in %.1f s", wait),
        { retryable = true, retry_in = wait })
    end
    self:_write(key, { st = "new", how = "not in the task list" })
    return "new"
  end
  return ambiguous(job, string.format("%d tasks of %s created around its submit belong to no job%s: claim its own"
    .. " with journal:claim(key, task_id), or journal:claim(key, false) if none is", #found, model,
    busy and " (and " .. busy .. ")" or ""), { retryable = false, candidates = found })
end

--- journal:claim(key, task_id | false): the user's answer for an ambiguous job: its task is
--- task_id (which no other job may claim), or (false) it was never created and may be sent again.
function Journal:claim(key, task_id)
  open(self, "journal:claim")
  local job = self._by_key[key]
  if not job or job.st ~= "ambiguous" then
    check.fail("journal:claim", "job " .. tostring(key) .. " is not ambiguous (" .. (job and job.st or "unknown") .. ")",
      "key", "invalid")
  end
  if task_id == false then
    return self:_write(key, { st = "new", how = "claimed by the user: never created" })
  end
  if type(task_id) ~= "string" or not task_id:find("^[%w%-_]+$") then
    check.fail("journal:claim", "task_id must be a task id string, or false", "task_id", "invalid")
  end
  if self._claimed[task_id] then
    check.fail("journal:claim", "task " .. task_id .. " belongs to job " .. self._claimed[task_id], "task_id", "invalid")
  end
  return self:_write(key, { st = "submitted", id = task_id, how = "claimed by the user" })
end

-- The error of job `key` in state `st` that cannot be sent as it is.
local function not_sendable(job)
  if job.st == "refused" then
    return errors.new { code = job.c or "Refused", message = "the service refused this job's submit earlier ("
      .. tostring(job.msg) .. "); journal:retry(key) sends it again", job_key = job.key }
  end
  return errors.new { code = "Busy", message = "this job's submit is on its way (from another coroutine)", job_key = job.key }
end

-- How the outcome of a submit is written: its task, or what its error says about the service.
local function sent(self, key, t, err)
  if t then
    local ok, werr = self:_write(key, { st = "submitted", id = t.id, s = t:status() })
    if not ok then return nil, werr end -- (the task goes on: the next run finds it in the list)
    self._handles[key] = nil
    return self:task(key)
  end
  local changes = { c = tostring(err.code), msg = tostring(err.message):sub(1, 300), e = now() }
  if err.task_may_exist then
    changes.st = "ambiguous"
  elseif err.status and err.status ~= 429 then
    changes.st = "refused" -- the service read it and created nothing: sent again only on retry
  else
    changes.st = "new" -- never reached the service (or a 429 to the deadline): created nothing
  end
  self:_write(key, changes)
  return nil, errors.with(err, { job_key = key })
end

--- journal:submit(key, method, fields): job `key`'s task. The first time, writes that the submit
--- is on its way, sends it as client[method](fields) would, and writes its task id; afterwards,
--- the same task without a request. An ambiguous job is resolved first (journal:resolve). The
--- task, or nil and err (also JobChanged: the key was sent with other fields).
function Journal:submit(key, method, fields)
  open(self, "journal:submit")
  check_key(key, "journal:submit")
  local contract = type(method) == "string" and models[method]
  if not contract or contract.synchronous then
    check.fail("journal:submit", "method must be the method of an async model (videoretalk, emoji,"
      .. " liveportrait), got " .. tostring(method), "method", "invalid")
  end
  check.fields(contract.fields, fields, method) -- misuse raises before anything is written
  local d = digest(method, fields)
  local job = self._by_key[key]
  if job and job.st ~= "new" and job.d and job.d ~= d then
    return nil, errors.new { code = "JobChanged", job_key = key, task_id = job.id, message = "job " .. key
      .. " was submitted earlier with other fields: give the new job a key of its own" }
  end
  local state = job and job.st
  if state == "ambiguous" then
    local resolved, err = self:resolve(key)
    if not resolved then return nil, err end
    state = resolved
  end
  if HAS_TASK[state] then return self:task(key) end
  if state == "refused" or state == "sending" then return nil, not_sendable(job) end
  local ok, werr = self:_write(key, { st = "sending", m = method, t = now(), d = d })
  if not ok then return nil, werr end
  local t, err = self._client[method](self._client, fields)
  return sent(self, key, t, err)
end

--- journal:download(key, path, opts): job `key`'s video to `path` (task:download's options), the
--- download written in the journal: the path, or nil and err. A job saved to that path before, whose
--- file is still there with its size, gives the path at once.
function Journal:download(key, path, opts)
  open(self, "journal:download")
  check_key(key, "journal:download")
  if type(path) ~= "string" or path == "" then
    check.fail("journal:download", "path must be a non-empty string (got " .. type(path) .. ")", "path", "invalid")
  end
  local job = self._by_key[key]
  if job and job.st == "saved" and job.p == path and core.file_check(path) == job.n then
    return path
  end
  local t = self:task(key)
  if not t then
    return nil, errors.new { code = "NoTask", job_key = key,
      message = "job " .. key .. " has no task to download (" .. (job and job.st or "unknown") .. ")" }
  end
  if job.saving == path and job.st ~= "saved" then
    -- A download to `path` began in a run that stopped: its temporary file goes, and a file at
    -- `path` now was put in place whole by it (task:download writes the temporary file, then
    -- renames it).
    if job.tmp then os.remove(job.tmp) end
    local size = core.file_check(path)
    if size then
      self:_write(key, { st = "saved", p = path, n = size })
      return path
    end
  end
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  local on_temp = o.on_temp
  o.on_temp = function(tmp)
    self:_write(key, { saving = path, tmp = tmp }) -- before the file is made
    if on_temp then on_temp(tmp) end
  end
  local done, err = t:download(path, o)
  if not done then
    if job.saving then self:_write(key, { saving = false, tmp = false }) end -- removed: nothing of ours is there
    return nil, errors.with(err, { job_key = key })
  end
  self:_write(key, { st = "saved", p = path, n = core.file_check(path) })
  self._handles[key] = nil
  return done
end

--- journal:retry(key): a job that ended without success, or that the service refused, becomes new:
--- the next journal:submit sends it again (its old task stays claimed).
function Journal:retry(key)
  open(self, "journal:retry")
  local job = self._by_key[key]
  local retryable = job and (job.st == "refused" or (job.st == "ended" and job.s ~= "SUCCEEDED"))
  if not retryable then
    check.fail("journal:retry", "only a job that ended without success, or was refused, can be retried (job "
      .. tostring(key) .. " is " .. (job and job.st or "unknown") .. ")", "key", "invalid")
  end
  return self:_write(key, { st = "new" })
end

--- Bytes of the journal's file now.
function Journal:size()
  open(self, "journal:size")
  return self._log:size()
end

--- Rewrites the journal with one record per job (what a long run appended shrinks to what it
--- knows now). true, or nil and err (the journal is then as it was).
function Journal:compact()
  open(self, "journal:compact")
  local records = {}
  for i, key in ipairs(self._order) do
    local r = {}
    for field, value in pairs(self._by_key[key]) do r[field] = value end
    r.key, r.k = nil, key
    if r.st == "saved" then r.saving, r.tmp = nil, nil end -- the download it began has ended
    records[i] = r
  end
  local log, err = journal_log.rewrite(self.path, records)
  if not log then return nil, err end
  self._log:close()
  self._log = log
  return true
end

--- Closes the journal's file (and its lock). Idempotent; the jobs' tasks go on.
function Journal:close()
  if self._log then
    self._log:close()
    self._log = nil
  end
end
Journal.__close = Journal.close

return journal
