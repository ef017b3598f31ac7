-- The service's clock: its times read ("2025-12-26 11:33:03.146"), believed only when possible,
-- and mapped onto ours. A clock (one per client, held by its planner) learns the offset
-- local - service from submits: the submit answer came after submit_time, so each task gives an
-- upper bound, and the least of the recent ones that are not far below their median is the best,
-- so one lying submit_time cannot drag the clock away.
local servicetime = {}

local SKEW = 3 * 86400 -- a service time this far from our wall clock is a lie (time zones: < 1 day)
local LATENCY = 60     -- how much later than the service's time an answer may reach us, at most
local KEEP = 16        -- samples remembered (offsets here, run times in planner.lua)

servicetime.LATENCY = LATENCY

--- A list's median (nil when empty).
function servicetime.median(list)
  local n = #list
  if n == 0 then return nil end
  local sorted = {}
  for i, d in ipairs(list) do sorted[i] = d end
  table.sort(sorted)
  return sorted[math.floor((n + 1) / 2)]
end

--- Appends `value` to `list`, forgetting the oldest beyond KEEP.
function servicetime.remember(list, value)
  list[#list + 1] = value
  if #list > KEEP then table.remove(list, 1) end
end

--- "2025-12-26 11:33:03.146" -> seconds on a fixed scale (differences are what matter).
local hours = {} -- "YYYY-MM-DD HH" -> os.time of that hour: os.time is the costly part
local hours_kept = 0

function servicetime.parse(text)
  if type(text) ~= "string" then return nil end
  local day_hour, mi, s, frac = text:match("^(%d+%-%d+%-%d+[ T]%d+):(%d+):(%d+)%.?(%d*)")
  if not day_hour then return nil end
  local base = hours[day_hour]
  if base == nil then
    local y, mo, d, h = day_hour:match("^(%d+)%-(%d+)%-(%d+)[ T](%d+)$")
    -- pcall: a year os.time cannot take raises (a fuzzer's find); such a time is no time
    local ok, at = pcall(os.time, { year = tonumber(y), month = tonumber(mo), day = tonumber(d),
                                    hour = tonumber(h), min = 0, sec = 0, isdst = false })
    base = ok and at or false
    if hours_kept > 64 then hours, hours_kept = {}, 0 end
    hours[day_hour], hours_kept = base, hours_kept + 1
  end
  if not base then return nil end
  return base + tonumber(mi) * 60 + tonumber(s) + (frac ~= "" and tonumber(frac) / 10 ^ #frac or 0)
end

--- A service time read from `text`, if near enough to `wall` (our wall clock, epoch seconds) to
--- be true, or nil. parse reads the service's zone as ours, so a true time is off by less than a day.
function servicetime.plausible(text, wall)
  local t = servicetime.parse(text)
  if t and math.abs(t - wall) <= SKEW then return t end
  return nil
end

local Clock = {}
Clock.__index = Clock

--- A clock mapping not yet learned: `offset` (local - service) is nil until the first sample.
function servicetime.clock()
  return setmetatable({ offsets = {}, offset = nil }, Clock)
end

--- Learns from one submit: `offset` = our submit time - the service's submit_time.
function Clock:learn(offset)
  local seen = self.offsets
  servicetime.remember(seen, offset)
  local mid = servicetime.median(seen)
  local best
  for _, o in ipairs(seen) do
    if o >= mid - LATENCY and (not best or o < best) then best = o end
  end
  self.offset = best
end

return servicetime
