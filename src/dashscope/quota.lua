-- The quota store of one client, when its quotas are shared with other processes (the `quota`
-- option): which store (quota_shdict.lua for the workers of one nginx, quota_redis.lua for any
-- number of hosts), whether it is usable now, and the rule when it is not: fail open. A store that
-- errs or does not answer within ANSWER_TIMEOUT is given up at once (the limiters carry on with
-- their own windows), the user is told once (on_warning), and it is tried again in the background;
-- nothing ever waits on it longer than that, so a job is never lost or held by the store. The
-- service's 429s stay the final word (calls.lua pauses, http.lua retries).
--
-- What a reservation is and how the stores count is said once, here: a quota called `name` keeps,
-- in the store, the `count` latest arrival times of its reservations; a new one is the later of
-- now and the count-th latest plus `window`, and its request arrives by `lead` seconds after it
-- (a connection to open first), which is the time kept. Then no `window` holds more than `count`
-- arrivals, in whatever order leads make them.
local quota = {}

local Quota = {}
Quota.__index = Quota

-- Seconds a reservation may take to be answered before the store is given up.
quota.ANSWER_TIMEOUT = 0.25
-- Seconds between attempts to get a failed store back: from the first, doubling, to the last.
local RETRY_FIRST, RETRY_LAST = 1, 5
-- A window's guard: sends a window apart must not arrive less than one second apart. Wider than
-- the process's own (limiter.lua, 0.05 s): sends of different processes take different
-- connections, and different hosts different paths, so their delays on the way differ more than
-- one connection's (at 0.05 s, 1 run in 3 of spec/openresty_spec.lua's 30 jobs through 4 workers
-- saw two submits arrive 949 ms apart, the test server's threads late under the spec's own load;
-- at 0.075 s the closest were 1061-1065 ms). Each 0.025 s costs 2.5 % of a quota's throughput
-- (bench/README.md, SHARED).
local GUARD = 0.075
-- The most send times a quota keeps in the store: a faster rate is kept over a shorter window.
local MOST = 100

--- How a rate of `rate` per second is kept in a store: the reservations counted (`count`) and the
--- seconds they span (`window`).
function quota.window(rate)
  local count = math.max(1, math.min(MOST, math.floor(rate)))
  return count, count / rate + GUARD
end

-- The store module for the option's value `v` (already checked by check.lua's quota type).
local function store_for(v)
  if type(v) == "string" then
    return require("dashscope.quota_redis").new(v)
  end
  return require("dashscope.quota_shdict").new(v)
end

--- The quota store of a client with `settings` (nil when its quotas are its own), telling the
--- user through `warn(message, info)` (queued like every callback) when the store fails or is back.
function quota.new(settings, warn)
  if not settings.quota or not settings.rate_limits then return nil end
  local store = store_for(settings.quota)
  return setmetatable({
    store = store, warn = warn,
    state = "starting", -- "starting": the first connection is under way (reservations wait for
                        -- it); "up"; "down": the limiters keep their own windows; "probing":
                        -- connected again, not yet answered
    retry_at = nil, retry_every = RETRY_FIRST,
    reopened = false, -- tried again since it went down (its readiness then means something)
    warned = false, -- told the user it is down, not yet that it is back
  }, Quota)
end

--- What the store is, for messages and client:quota_store(): { kind, up, url }.
function Quota:describe()
  return { kind = self.store.kind, up = self.state ~= "down", state = self.state, url = self.store.url }
end

-- The store failed (`why`): the limiters go on alone; the user hears of it once per outage.
local function give_up(self, why, now)
  self.store:drop(why)
  if self.state == "down" then return end
  self.state = "down"
  self.retry_at = now + self.retry_every
  if not self.warned then
    self.warned = true
    self.warn(("quota store %s failed (%s): keeping this process's own limits until it is back")
      :format(self.store.url, why), { code = "QuotaStoreDown", store = self.store.url, reason = why })
  end
end

-- The store answered a reservation: it works (again).
local function works(self)
  if self.state == "up" then return end
  self.state, self.retry_every = "up", RETRY_FIRST
  if self.warned then
    self.warned = false
    self.warn(("quota store %s is back: quotas are shared again"):format(self.store.url),
      { code = "QuotaStoreBack", store = self.store.url })
  end
end

--- True when the limiters should ask the store now. A store that failed is tried again in the
--- background, at growing intervals; until it is ready again, no limiter waits for it.
function Quota:usable(now)
  if self.state ~= "down" then return true end
  if now >= self.retry_at then
    self.store:reopen(now)
    self.reopened = true
    self.retry_every = math.min(self.retry_every * 2, RETRY_LAST)
    self.retry_at = now + self.retry_every
  end
  return false
end

--- Asks the store for `lim`'s next send time (limiter.lua), its request arriving up to `lead`
--- seconds after it: seconds to wait from `now`; or nil and
--- when to ask again (the answer is on its way, or the store is busy for a moment); or nil when
--- the store failed (the limiter decides alone).
function Quota:reserve(lim, now, lead)
  local count, window = quota.window(lim.rate)
  local wait, err = self.store:reserve(lim.name, count, window, lead, lim, now)
  if wait == true then
    return nil, now + quota.ANSWER_TIMEOUT
  elseif wait then
    works(self)
    return wait
  elseif err == "busy" then
    return nil, now + 0.001
  end
  give_up(self, err, now)
  return nil
end

--- Moves the store on (answers read, connections made): answers wake their limiters. Returns the
--- next time it needs a step (when the oldest answer awaited is late), or nil. A store that is
--- down is tried again when a limiter next asks, not by a timer of its own: an idle client sleeps.
function Quota:step(now)
  local store = self.store
  local failed, answered = store:step(now, quota.ANSWER_TIMEOUT)
  if failed then
    give_up(self, failed, now)
  elseif answered then
    works(self)
  elseif self.state == "down" and self.reopened and store:ready() then
    self.state, self.reopened = "probing", false -- the next reservation tells whether it works
  end
  return store:next_step(quota.ANSWER_TIMEOUT)
end

--- True while a reservation's answer is awaited (a loop that cannot watch the store's socket
--- looks again soon).
function Quota:awaiting()
  return self.store:next_step(0) ~= nil
end

--- The store's socket and what to watch it for ("r", "w", "rw"), or nil.
function Quota:socket()
  return self.store:socket()
end

--- An event loop says the store's socket is ready.
function Quota:action(readable, writable)
  self.store:action(readable, writable)
end

--- Closes the store's connection (client:close). Idempotent.
function Quota:close()
  self.store:drop("closed")
  self.state = "down"
  self.retry_at = math.huge
end

return quota
