-- The batch's threads: coroutines that share one client, each free to make the client's blocking
-- calls (a submit, a download), as the requests of an nginx worker share one client through
-- ngx.sleep. The client is made with `sleep = threads.sleep`, so a call that would block yields its
-- thread for that long instead; run() resumes each thread when its time comes, steps the client
-- itself (so that the callbacks of tasks nobody waits on run), and sleeps in between. A thread's
-- error (a bug, or a trapped signal) goes on up from run(), after the thread's own cleanups ran as
-- it unwound.
local core = require("dashscope.core") -- now(), sleep(): mechanism only the C core has

local threads = {}

local Threads = {}
Threads.__index = Threads

-- The longest the scheduler sleeps while transfers are in flight: the threads look at the
-- client's sockets no less often (engine.lua's loop does the same with a `sleep`).
local IN_FLIGHT = 0.01

--- The client's `sleep` option: the running thread yields for `seconds`.
function threads.sleep(seconds)
  coroutine.yield(seconds)
end

--- The `sleep` to give the client: threads.sleep where a thread can yield from inside the client's
--- calls, nil on Lua 5.1, which cannot yield across a pcall (task:download's protected region has
--- one): there a client's call blocks the process, and the threads take turns between calls.
threads.client_sleep = (jit ~= nil or _VERSION ~= "Lua 5.1") and threads.sleep or nil

--- A scheduler for threads using `client` (made with sleep = threads.sleep).
function threads.new(client)
  return setmetatable({ client = client, list = {} }, Threads)
end

--- Starts fn(...) as a thread: it runs at the next turn of run().
function Threads:spawn(fn, ...)
  local args = { n = select("#", ...), ... }
  self.list[#self.list + 1] = { co = coroutine.create(function() return fn((table.unpack or unpack)(args, 1, args.n)) end),
                                wake = 0 }
end

-- Resumes the threads whose time has come; the earliest time one wants to wake up.
local function turn(self)
  local soonest = math.huge
  local i = 1
  while i <= #self.list do
    local th = self.list[i]
    if th.wake <= core.now() then
      local ok, delay = coroutine.resume(th.co)
      if not ok then error(delay, 0) end
      th.wake = core.now() + (tonumber(delay) or 0)
    end
    if coroutine.status(th.co) == "dead" then
      table.remove(self.list, i)
    else
      soonest = math.min(soonest, th.wake)
      i = i + 1
    end
  end
  return soonest
end

--- Runs until every thread has returned.
function Threads:run()
  while #self.list > 0 do
    local soonest = turn(self)
    if #self.list == 0 then break end
    local delay = self.client:step()
    if self.client:busy() then delay = math.min(delay, IN_FLIGHT) end
    local wait = math.min(soonest - core.now(), delay)
    if wait > 0 then core.sleep(wait) end
  end
end

return threads
