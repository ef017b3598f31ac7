-- Runs of `bin/dashscope batch` as processes of their own, in the background, for spec/batch_spec.lua
-- (and bench/batch.lua): start one, watch its journal (JSON Lines) and its output directory while
-- it runs, kill it with SIGKILL at a chosen moment, then read its exit status and its --json events.
-- It owns the run's scratch files (stdout, stderr, pid, status beside the manifest); it never
-- touches the journal or the outputs, which are the CLI's.
--
--   local batch_run = require("spec.support.batch_run")
--   local run = batch_run.start(dir, { "batch", manifest, "--json" }, env)
--   run:status()      -- the exit status once the process has ended, else nil
--   run:wait(s)       -- the exit status, or nil when `s` seconds passed first
--   run:kill()        -- SIGKILL, then waits for the status (137)
--   run:events()      -- its stdout's JSON objects, in order; run:stderr() its stderr
--   local tail = batch_run.tail(journal_path); tail:poll()  -- the journal's new whole lines, decoded
local cjson = require("cjson")
local core = require("dashscope.core")
local hosts = require("spec.support.hosts")

local batch_run = {}

local Run = {}
Run.__index = Run
local Tail = {}
Tail.__index = Tail

batch_run.LUA = os.getenv("LUA") or "lua5.4"
batch_run.SCRIPT = "bin/dashscope"

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
batch_run.quote = quote

local read = hosts.read
batch_run.read = read

--- The size of the file at `path` in bytes, or nil when it cannot be opened.
function batch_run.size(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local n = f:seek("end")
  f:close()
  return n
end

batch_run.sleep = core.sleep

-- The environment words of a run: the given variables, quoted.
local function env_words(env)
  local names, words = {}, { "env" }
  for k in pairs(env or {}) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do words[#words + 1] = k .. "=" .. quote(env[k]) end
  return table.concat(words, " ")
end

local serial = 0

--- Starts `LUA bin/dashscope ARGS...` in the background (cwd: the caller's, the repository's root),
--- its scratch files in `dir`; `env` (a table) adds variables. `prefix` (optional) goes before the
--- interpreter (e.g. a wrapper of the bench). The run, once its pid is known.
function batch_run.start(dir, argv, env, prefix)
  serial = serial + 1
  local base = ("%s/run%d"):format(dir, serial)
  local words = {}
  for i, a in ipairs(argv) do words[i] = quote(a) end
  local cmd = ("%s %s %s %s"):format(env_words(env), prefix or quote(batch_run.LUA),
    prefix and "" or quote(batch_run.SCRIPT), table.concat(words, " "))
  -- The shell waits for the child to write its status; the pid is the interpreter's own ($!).
  local script = ("%s >%s 2>%s </dev/null & echo $! >%s.tmp && mv %s.tmp %s; wait $!; echo $? >%s.tmp; mv %s.tmp %s")
    :format(cmd, quote(base .. ".out"), quote(base .. ".err"), quote(base .. ".pid"), quote(base .. ".pid"),
      quote(base .. ".pid"), quote(base .. ".status"), quote(base .. ".status"), quote(base .. ".status"))
  assert(os.execute("sh -c " .. quote(script) .. " >/dev/null 2>&1 &"))
  local run = setmetatable({ base = base }, Run)
  for _ = 1, 1000 do
    local pid = tonumber(read(base .. ".pid") or "")
    if pid then
      run.pid = pid
      return run
    end
    batch_run.sleep(0.005)
  end
  error("the batch process did not start: " .. tostring(read(base .. ".err")))
end

function Run:status()
  return tonumber(read(self.base .. ".status") or "")
end

function Run:wait(seconds)
  local deadline = core.now() + seconds
  repeat
    local s = self:status()
    if s then return s end
    batch_run.sleep(0.02)
  until core.now() > deadline
  return nil
end

--- SIGKILL (the process may have ended already: then its own status stays), and its status.
function Run:kill()
  os.execute("kill -KILL " .. self.pid .. " 2>/dev/null")
  return assert(self:wait(30), "no status 30 s after SIGKILL")
end

function Run:stdout() return read(self.base .. ".out") or "" end
function Run:stderr() return read(self.base .. ".err") or "" end

--- Every JSON object on stdout (a line cut short by a kill is left out), in order.
function Run:events()
  local out = {}
  for line in self:stdout():gmatch("[^\n]+") do
    local ok, v = pcall(cjson.decode, line)
    if ok and type(v) == "table" then out[#out + 1] = v end
  end
  return out
end

--- A reader of the journal at `path` that gives its new whole lines on each poll.
function batch_run.tail(path)
  return setmetatable({ path = path, offset = 0, partial = "", lines = {} }, Tail)
end

--- The lines completed since the last poll, each { text =, record = decoded or nil }.
function Tail:poll()
  local f = io.open(self.path, "rb")
  if not f then return {} end
  local size = f:seek("end")
  if size < self.offset then -- compacted (a new file): read it from its start
    self.offset, self.partial = 0, ""
  end
  f:seek("set", self.offset)
  local chunk = f:read("*a") or ""
  f:close()
  self.offset = self.offset + #chunk
  local text = self.partial .. chunk
  local new = {}
  local last = 1
  for line, stop in text:gmatch("([^\n]*)\n()") do
    local ok, v = pcall(cjson.decode, line)
    new[#new + 1] = { text = line, record = ok and type(v) == "table" and v or nil }
    self.lines[#self.lines + 1] = new[#new]
    last = stop
  end
  self.partial = text:sub(last)
  return new
end

--- The last whole line read so far, or nil.
function Tail:last()
  return self.lines[#self.lines]
end

--- The names of the files in `dir` (ls -A), as a set.
function batch_run.listing(dir)
  local p = assert(io.popen("ls -A " .. quote(dir) .. " 2>/dev/null"))
  local names = {}
  for name in p:read("*a"):gmatch("[^\n]+") do names[name] = true end
  p:close()
  return names
end

--- The fake video the local server serves, `size` bytes (spec/server/README.md): an MP4 ftyp box,
--- then byte i of the rest (from 0) is (i * 31 + 7) mod 256; the pattern repeats every 256 bytes.
function batch_run.server_video(size)
  local head = "\0\0\0\32ftypisom\0\0\2\0isomiso2avc1mp41"
  local period = {}
  for i = 0, 255 do period[#period + 1] = string.char((i * 31 + 7) % 256) end
  local body = string.rep(table.concat(period), math.ceil(math.max(0, size - #head) / 256))
  return (head .. body):sub(1, size)
end

return batch_run
