-- The quota store of the workers of one nginx: an OpenResty shared dict (`lua_shared_dict`), given
-- as `dashscope.new{ quota = ngx.shared.NAME }`. The reservation rule is quota.lua's. A dict has no
-- multi-key transaction, so a reservation holds a lock for the few operations it takes: the lock
-- is a key added with `add` (atomic across the workers) that expires by itself, so a worker that
-- dies holding it stops nobody for more than LOCK_TTL. Nothing here waits: a lock held by another
-- worker answers "busy", and the limiter asks again a millisecond later. Every worker reads the
-- same monotonic clock (CLOCK_MONOTONIC is the host's), so their times compare.
local quota_shdict = {}

local Store = {}
Store.__index = Store

local LOCK_TTL = 0.01 -- seconds

--- A store over the shared dict `dict`.
function quota_shdict.new(dict)
  return setmetatable({ kind = "shdict", url = "shared dict", dict = dict, failed = nil }, Store)
end

-- The times kept under `key`, oldest first.
local function times_of(dict, key)
  local text = dict:get(key)
  local times = {}
  if type(text) == "string" then
    for t in text:gmatch("[^,]+") do times[#times + 1] = tonumber(t) end
  end
  return times
end

-- The reservation rule (quota.lua) over `times` (in order): the send time, and the times to keep.
local function next_time(times, count, window, lead, now)
  local at, n = now, #times
  if n >= count and times[n - count + 1] + window > at then at = times[n - count + 1] + window end
  times[n + 1] = at + lead
  table.sort(times)
  local kept = {}
  for i = math.max(1, n + 2 - count), n + 1 do kept[#kept + 1] = string.format("%.6f", times[i]) end
  return at, table.concat(kept, ","), times[n + 1]
end

--- A reservation for the quota `name` at `now`: seconds to wait; or nil and "busy" (another worker
--- holds the lock: ask again), or nil and why the dict failed.
function Store:reserve(name, count, window, lead, _, now)
  local dict, key = self.dict, "dashscope:" .. name
  local lock = key .. ":lock"
  local ok, err = dict:add(lock, true, LOCK_TTL)
  if not ok then
    if err == "exists" then return nil, "busy" end
    return nil, "shared dict: " .. tostring(err)
  end
  local at, kept, latest = next_time(times_of(dict, key), count, window, lead, now)
  -- kept while its reservations matter: until the latest one's window has passed
  local stored, serr = dict:set(key, kept, latest - now + window + 1)
  dict:delete(lock)
  if not stored then
    return nil, "shared dict: " .. tostring(serr)
  end
  return at - now
end

-- Nothing moves in the background and nothing is connected: a dict answers at once, always.
local function none() end
Store.step, Store.next_step, Store.reopen, Store.drop, Store.socket, Store.action = none, none, none, none, none, none
function Store.ready() return true end

return quota_shdict
