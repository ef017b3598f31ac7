-- Rate limits the client keeps on its own side (docs/protocol.md §10), so that the service's 429s are
-- the exception: a sliding window of the last `rate` send times, as the service counts ("N per
-- second"), with a small guard so that network jitter cannot bunch two windows' worth together.
-- A 429 pauses the limiter until the back-off has passed (http.lua caps the pause at
-- retry_max_delay: a day-long Retry-After must not freeze every query of the client).
local limiter = {}
limiter.__index = limiter

local GUARD = 0.05 -- seconds added to the window

--- A limiter of `rate` sends per second (nil or false: unlimited).
function limiter.new(rate)
  return setmetatable({ rate = rate, sent = {}, first = 1, paused_until = 0 }, limiter)
end

--- Seconds until a send may go (0: now).
function limiter:delay(now)
  local wait = math.max(0, self.paused_until - now)
  if not self.rate then
    return wait
  end
  local sent, n = self.sent, #self.sent
  -- forget sends that left the window
  while self.first <= n and sent[self.first] <= now - 1 - GUARD do
    self.first = self.first + 1
  end
  if n - self.first + 1 >= self.rate then
    wait = math.max(wait, sent[n - self.rate + 1] + 1 + GUARD - now)
  end
  if self.first > 64 and self.first > n / 2 then -- compact now and then
    local kept = {}
    for i = self.first, n do kept[#kept + 1] = sent[i] end
    self.sent, self.first = kept, 1
  end
  return wait
end

--- Records a send at `now`.
function limiter:take(now)
  if self.rate then
    self.sent[#self.sent + 1] = now
  end
end

--- Holds every send back until `now + seconds` (after a 429; `seconds` already capped). A later,
--- shorter pause never shortens it.
function limiter:pause(now, seconds)
  self.paused_until = math.max(self.paused_until, now + seconds)
end

return limiter
