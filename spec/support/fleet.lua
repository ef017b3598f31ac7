-- A fleet of processes on one account (issue 12): groups of spec/support/quota_worker.lua
-- processes, each group started by a shell of its own in a working directory of its own (standing
-- for a host: nothing is shared between the groups but what the workers are told to share), in the
-- background, so that the caller can act while they run (stop the quota store, watch the server).
--
--   local fleet = require("spec.support.fleet")
--   local run = fleet.start { { tags = { "a1", "a2" }, jobs = 2, model = "videoretalk",
--                               store = URL, env = { DASHSCOPE_QUOTA_STORE = URL } }, ... }
--   run:wait(seconds)   -- true once every group has ended, false when `seconds` passed first
--   run:outcomes()      -- { [tag] = { jobs = { [i] = line }, warnings = { line... }, done = line|nil,
--                       --             stderr = text } } (the lines: quota_worker.lua's JSON objects)
--   run:remove()        -- removes the groups' directories
--   fleet.throttled(stats) -- the 429s the local server gave for its quotas (stats: /__control/stats)
--
-- The workers load the same build as the caller: LUA_PATH and LUA_CPATH are passed on with every
-- relative entry made absolute (the groups run elsewhere), the interpreter is $LUA (lua5.4 by
-- default), and whatever else the caller's environment holds (ASan's preload) is inherited. Each
-- worker runs under timeout(1), so none outlives a spec that gave up on it.
local cjson = require("cjson")
local hosts = require("spec.support.hosts")

local fleet = {}

local Run = {}
Run.__index = Run

local LUA = os.getenv("LUA") or "lua5.4"

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- The directory the caller runs in (the repository's root for busted and the bench).
local ROOT = select(2, hosts.run("pwd")):match("[^\n]+")

-- `paths` ("a;b;;") with every relative template made absolute from ROOT; ";;" (the defaults) kept.
local function absolute(paths)
  local out = {}
  for entry in paths:gmatch("[^;]+") do
    out[#out + 1] = entry:sub(1, 1) == "/" and entry or ROOT .. "/" .. entry
  end
  return table.concat(out, ";") .. ";;"
end

local HERE = debug.getinfo(1, "S").source:match("^@(.*)fleet%.lua$")
fleet.WORKER = (HERE:sub(1, 1) == "/" and "" or ROOT .. "/") .. HERE .. "quota_worker.lua"
fleet.LUA_PATH = absolute(os.getenv("LUA_PATH") or package.path)
fleet.LUA_CPATH = absolute(os.getenv("LUA_CPATH") or package.cpath)

local read = hosts.read

-- The shell script of one group: its workers in the background, then a mark that all have ended.
local function script(group, dir, seconds)
  local lines = { "cd " .. quote(dir) }
  for _, tag in ipairs(group.tags) do
    local words = { "timeout -k 5", seconds, group.wrap or "", quote(LUA), quote(fleet.WORKER), quote(tag),
                    group.jobs, group.model or "videoretalk" }
    if group.store then words[#words + 1] = quote(group.store) end
    lines[#lines + 1] = ("%s >%s.out 2>%s.err &"):format(table.concat(words, " "), quote(tag), quote(tag))
  end
  lines[#lines + 1] = "wait"
  lines[#lines + 1] = "echo ended > finished"
  return table.concat(lines, "\n")
end

--- Starts every group (see above) in the background; each worker is given `seconds` (default 60).
function fleet.start(groups, seconds)
  local run = setmetatable({ groups = {} }, Run)
  for _, group in ipairs(groups) do
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. quote(dir)))
    local env = { "env", "-u DASHSCOPE_QUOTA_STORE", "LUA_PATH=" .. quote(fleet.LUA_PATH),
                  "LUA_CPATH=" .. quote(fleet.LUA_CPATH) }
    for k, v in pairs(group.env or {}) do env[#env + 1] = k .. "=" .. quote(v) end
    assert(os.execute(("%s sh -c %s </dev/null >/dev/null 2>&1 &"):format(table.concat(env, " "),
      quote(script(group, dir, seconds or 60)))))
    run.groups[#run.groups + 1] = { dir = dir, tags = group.tags }
  end
  return run
end

--- True when every group has ended.
function Run:ended()
  for _, g in ipairs(self.groups) do
    if not read(g.dir .. "/finished") then return false end
  end
  return true
end

--- Waits until every group has ended (true) or `seconds` have passed (false).
function Run:wait(seconds)
  for _ = 1, math.ceil(seconds / 0.1) do
    if self:ended() then return true end
    os.execute("sleep 0.1")
  end
  return self:ended()
end

-- One worker's lines, sorted by kind.
local function outcome(text, stderr)
  local o = { jobs = {}, warnings = {}, stderr = stderr or "" }
  for line in (text or ""):gmatch("[^\n]+") do
    local ok, v = pcall(cjson.decode, line)
    if not ok or type(v) ~= "table" then
      o.stderr = o.stderr .. "stdout: " .. line .. "\n"
    elseif v.warning then
      o.warnings[#o.warnings + 1] = v
    elseif v.done then
      o.done = v
    elseif v.job then
      o.jobs[v.job] = v
    end
  end
  return o
end

--- What each worker printed, by tag.
function Run:outcomes()
  local out = {}
  for _, g in ipairs(self.groups) do
    for _, tag in ipairs(g.tags) do
      out[tag] = outcome(read(g.dir .. "/" .. tag .. ".out"), read(g.dir .. "/" .. tag .. ".err"))
    end
  end
  return out
end

--- The 429s the local server gave for its quotas, in all (its /__control/stats `throttled`).
function fleet.throttled(stats)
  local n = 0
  for _, count in pairs(stats.throttled or {}) do n = n + count end
  return n
end

function Run:remove()
  for _, g in ipairs(self.groups) do os.execute("rm -rf " .. quote(g.dir)) end
end

return fleet
