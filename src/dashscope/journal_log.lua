-- The journal's file (journal.lua owns what the records mean): JSON Lines, a header line, then one
-- record per change of a job, each a table { k = key, st = state, ... the fields that changed },
-- appended whole and on the disk before the append returns (core.open_log: O_APPEND, fdatasync,
-- an flock that the kernel drops when the process dies). Reading it back merges each job's records
-- in order; compacting rewrites one record per job into a new file that replaces the old in one
-- rename. A crash can only tear the last line: it is cut off when the file is opened. Any other
-- line that does not read means the file is not what we wrote, and is never guessed at.
local core = require("dashscope.core")
local json = require("dashscope.json")
local errors = require("dashscope.errors")

local journal_log = {}

local HEADER = { journal = "lua-dashscope", version = 1 }
local HEADER_LINE = json.encode(HEADER) .. "\n"

local function fail(code, message, path)
  return nil, errors.new { code = code, message = message, path = path }
end

-- Each field a record may hold, and its type (a file edited by hand, or by another program, must
-- not make the journal act on a value of the wrong kind: a task id goes into a URL's path).
local FIELDS = {
  k = "string", st = "string", m = "string", t = "number", e = "number", d = "string", id = "id",
  s = "string", c = "string", msg = "string", p = "string", n = "number", saving = "string|boolean",
  tmp = "string|boolean", how = "string", old = "string",
}

local function typed(value, want)
  if want == "id" then return type(value) == "string" and value:find("^[%w%-_]+$") ~= nil end
  return want:find(type(value), 1, true) ~= nil
end

-- The record of one line, or nil. A record names its job (and its new state, when it changes);
-- a field this version does not know is dropped.
local function decode(line)
  local r = json.decode(line)
  if type(r) ~= "table" or type(r.k) ~= "string" then return nil end
  for field, value in pairs(r) do
    local want = FIELDS[field]
    if not want then
      r[field] = nil
    elseif not typed(value, want) then
      return nil
    end
  end
  return r
end

-- Replays the file's text into `apply(record)`: the length of what reads (a torn last line is
-- left out), or nil and err.
local function replay(text, path, apply)
  if text == "" then return 0 end
  local header_end = text:find("\n", 1, true)
  local header = header_end and json.decode(text:sub(1, header_end - 1))
  if type(header) ~= "table" or header.journal ~= HEADER.journal then
    return fail("JournalDamaged", "not a journal of lua-dashscope: " .. path, path)
  end
  if header.version ~= HEADER.version then
    return fail("JournalDamaged", "a journal of another version (" .. tostring(header.version) .. "): " .. path, path)
  end
  local at, n = header_end + 1, 1
  while at <= #text do
    local nl = text:find("\n", at, true)
    if not nl then break end -- torn by a crash: never appended whole, so never acted upon
    n = n + 1
    local r = decode(text:sub(at, nl - 1))
    if not r then
      return fail("JournalDamaged", string.format("line %d of %s does not read as a journal record", n, path), path)
    end
    apply(r)
    at = nl + 1
  end
  return at - 1
end

--- Opens (creating) and locks the journal at `path`, replaying each record into `apply`: the log
--- (core's Log), or nil and err (JournalBusy while another journal holds it, JournalDamaged, an
--- error of the file system).
function journal_log.open(path, apply)
  local log, why, locked = core.open_log(path)
  if not log then
    if locked then
      return fail("JournalBusy", path .. " is in use by another journal (another run, or an unclosed one)", path)
    end
    return fail("JournalError", "cannot open " .. path .. ": " .. tostring(why), path)
  end
  local text, rerr = log:read()
  if not text then
    log:close()
    return fail("JournalError", "cannot read " .. path .. ": " .. tostring(rerr), path)
  end
  local good, err = replay(text, path, apply)
  if not good then
    log:close()
    return nil, err
  end
  local ok, werr = true, nil
  if good < #text then ok, werr = log:truncate(good) end
  if ok and good == 0 then ok, werr = log:append(HEADER_LINE) end
  if not ok then
    log:close()
    return fail("JournalError", "cannot write " .. path .. ": " .. tostring(werr), path)
  end
  return log
end

--- Appends one record, durably: true, or nil and err.
function journal_log.append(log, record, path)
  local ok, why = log:append(json.encode(record) .. "\n")
  if not ok then
    return fail("JournalError", "cannot write " .. path .. ": " .. tostring(why), path)
  end
  return true
end

local function dir_of(path)
  return path:match("^(.*)/[^/]*$") or "."
end

--- Rewrites the journal at `path` as `records` (one per job) in a new file that replaces it in one
--- rename, locked before it is in place: the new log, or nil and err (the old one is then kept).
function journal_log.rewrite(path, records)
  local hex = core.random_hex(8)
  local tmp = path .. ".compact-" .. (hex or "0")
  local log, why = core.open_log(tmp)
  if not log then
    return fail("JournalError", "cannot write " .. tmp .. ": " .. tostring(why), path)
  end
  local lines = { HEADER_LINE }
  for i, r in ipairs(records) do lines[i + 1] = json.encode(r) .. "\n" end
  local ok, werr = log:append(table.concat(lines))
  if ok then ok, werr = os.rename(tmp, path) end
  if not ok then
    log:close()
    os.remove(tmp)
    return fail("JournalError", "cannot compact " .. path .. ": " .. tostring(werr), path)
  end
  core.sync_dir(dir_of(path)) -- the rename made durable (a file system that cannot: as good as it gets)
  return log
end

return journal_log
