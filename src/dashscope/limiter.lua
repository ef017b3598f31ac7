-- Rate limits the client keeps on its own side (docs/protocol.md §10), so that the service's 429s are
-- the exception: a sliding window of the last `rate` send times, as the service counts ("N per
-- second"), with a small guard so that network jitter cannot bunch two windows' worth together.
-- A 429 pauses the limiter until the back-off has passed (http.lua caps the pause at
-- retry_max_delay: a day-long Retry-After must not freeze every query of the client).
--
-- With a shared quota store (quota.lua) the window is the account's, kept by the store for every
-- process: the limiter asks it for one send time at a time (a reservation), and sends when that
-- time comes. Its own window goes on counting this process's sends, so that when the store fails
-- the limiter carries on alone at once, from what it knows (and a store back from a restart
-- cannot make it send faster than its own window allows). Holding only one reservation not yet
-- used is what makes the store fair: a process with a thousand calls due queues one at a time
-- behind the others' reservations, not a thousand at once in front of them.
local limiter = {}
limiter.__index = limiter

local GUARD = 0.05 -- seconds added to the window
limiter.GUARD = GUARD -- (read by bench/batch.lua: the floor it sets under a quota-bound batch)
-- A reservation is used within this long after its time, or given up and asked again: sent
-- later, it could come too close to the reservations the store has made since (the guard is
-- what absorbs the gap, and the answer's own way back takes some of it).
local LATE = 0.02

--- A limiter of `rate` sends per second (nil or false: unlimited). `quota` (quota.lua, optional):
--- the store shared with other processes, where this limiter's window is called `name`.
function limiter.new(rate, quota, name)
  return setmetatable({ rate = rate, sent = {}, first = 1, paused_until = 0,
    quota = quota, name = name,
    granted = nil, -- clock time of the store's reservation not yet used
    asking = nil,  -- while the store's answer is awaited: when to stop waiting for it
    answers = 0,   -- answers of the store so far (calls.lua wakes the calls held for one)
  }, limiter)
end

-- Seconds until this process's own window lets a send go.
local function own_delay(self, now)
  local sent, n = self.sent, #self.sent
  -- forget sends that left the window
  while self.first <= n and sent[self.first] <= now - 1 - GUARD do
    self.first = self.first + 1
  end
  local wait = 0
  if n - self.first + 1 >= self.rate then
    wait = sent[n - self.rate + 1] + 1 + GUARD - now
  end
  if self.first > 64 and self.first > n / 2 then -- compact now and then
    local kept = {}
    for i = self.first, n do kept[#kept + 1] = sent[i] end
    self.sent, self.first = kept, 1
  end
  return wait
end

-- Seconds until the store's reservation lets a send go, asking for one when none is held; nil
-- when the store is not to be used now (down: the own window decides).
local function shared_delay(self, now, lead)
  if self.granted and now > self.granted + LATE then
    self.granted = nil -- missed: its slot may be too close to later ones
  end
  if self.granted then return self.granted - now end
  if self.asking then
    if now < self.asking then return self.asking - now end
    self.asking = nil -- unanswered: quota.lua has marked the store down by now
  end
  local wait, pending_until = self.quota:reserve(self, now, lead)
  if wait then
    self.granted = now + wait
    return wait
  elseif pending_until then
    self.asking = pending_until
    return pending_until - now
  end
  return nil
end

--- Seconds until a send may go (0: now). `lead`: seconds after it that the request will arrive
--- at the latest (calls.lua: a connection to open first), which the store's reservation counts.
function limiter:delay(now, lead)
  local wait = math.max(0, self.paused_until - now)
  if not self.rate or wait > 0 then
    return wait
  end
  -- The own window first, also with a store: it holds the sends made while the store was down,
  -- which a store that lost its memory (a Redis restarted) does not know of. Nothing is reserved
  -- while it says wait.
  local own = own_delay(self, now)
  if own > 0 then return own end
  local shared = self.quota and self.quota:usable(now) and shared_delay(self, now, lead or 0)
  return shared and math.max(0, shared) or 0
end

--- Records a send at `now`, counted `lead` seconds later (its arrival at the latest; the times
--- stay in order). It uses the store's reservation, if one was held.
function limiter:take(now, lead)
  if self.rate then
    local sent = self.sent
    sent[#sent + 1] = math.max(now + (lead or 0), sent[#sent] or now)
    self.granted = nil
  end
end

--- The store answers a reservation: `wait` seconds from `now`, or nil when it failed (the own
--- window decides). Wakes the calls held for the answer (calls.lua compares `answers`).
function limiter:answered(wait, now)
  self.asking = nil
  self.granted = wait and now + wait or nil
  self.answers = self.answers + 1
end

--- Holds every send back until `now + seconds` (after a 429; `seconds` already capped). A later,
--- shorter pause never shortens it.
function limiter:pause(now, seconds)
  self.paused_until = math.max(self.paused_until, now + seconds)
end

return limiter
