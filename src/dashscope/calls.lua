-- The calls of one client (owned by its engine): every call not finished, those on the wire, and
-- those waiting to be sent (for their quota, or backing off before a retry). A call is a table
-- { method, path or url, body (JSON text) or form, headers (extra), purpose (http.lua), expect,
-- limiter, on_done; for storage hosts classify, output, progress, timeout, max_body, deadline };
-- what every call of a kind shares may come from its metatable's __index (task.lua's queries).
-- Once started, its state (attempts, deadline, request, send_at, queued, done, body_value, err) is
-- written here only; others read it. What a request looks like and what an answer means is http.lua's.
--
-- At most `wire` calls are on the wire at once (a few per connection): the others wait here, as
-- tables, for a slot. A request (an easy handle, its headers and buffers, in C) is made only when
-- its call goes out, so 10,000 calls waiting cost their specs, not 10,000 handles queued in libcurl.
local errors = require("dashscope.errors")
local heap = require("dashscope.heap")
local http = require("dashscope.http")

local calls = {}

local NONE = {} -- an empty list, never written

-- Transfers on the wire per connection allowed (max_connections): two keeps libcurl's own queue a
-- little full, so a connection that comes free starts its next transfer without waiting for a step.
local WIRE_PER_CONNECTION = 2
-- Calls not finished beyond which the poller starts no more lone status queries (Calls:room):
-- enough that a burst of answers keeps the wire busy between steps, few enough (some 100 KB of
-- calls) that 10,000 tasks ending together wait in their lanes' heaps, not as calls.
local ROOM = 256
-- A quota counts a request when it arrives; a request that must first open its connection (and
-- its TLS) arrives that much after its send time, so close to the next one, which a warm
-- connection carries at once. A limited call sent without a recent answer from the service is
-- counted that much later (its `lead`): the connect time last measured, LEAD before any, at most
-- LEAD_MOST. WARM: how long after an answer its connection is taken to be still open.
local LEAD, LEAD_MOST, WARM = 0.3, 2, 20

local Calls = {}
Calls.__index = Calls

--- The call queue over `transport`, for a client with `settings`, sending `user_agent`.
function calls.new(transport, settings, user_agent)
  return setmetatable({
    transport = transport, settings = settings, user_agent = user_agent,
    service = http.service_headers(settings),
    all = {},     -- every call not finished
    unfinished = 0, -- how many
    sending = {}, -- request -> call, for those on the wire
    waiting = {}, -- calls waiting to be sent (quota, or back-off before a retry)
    wire = WIRE_PER_CONNECTION * (settings.max_connections or 6), -- most on the wire at once
    on_wire = 0,  -- how many are
    ready = {}, ready_head = 1, ready_tail = 0, -- FIFO of calls due, waiting for a slot on the wire
    deadlines = {}, -- heap of { at = deadline, task = call } of those: each ends by its deadline
    ended = {},   -- calls ended while waiting for a slot (cancelled), finished at the next advance
    warm_until = -math.huge, -- while a connection to the service is taken to be open
    lead = LEAD,  -- seconds a new connection takes before its request leaves (the latest measured)
  }, Calls)
end

local function send(self, call, now)
  call.request = self.transport:request(http.request(call, self.settings, self.service, self.user_agent, now))
  self.sending[call.request] = call
  self.on_wire = self.on_wire + 1
  call.attempts = call.attempts + 1
  call.send_at = nil
  self.waiting[call] = nil
end

-- Holds `call` back until `at` (clock seconds); with `heard` (its limiter's count of store answers,
-- limiter.lua) also until its limiter hears from the quota store, whichever comes first.
local function hold(self, call, at, heard)
  call.send_at, call.heard = at, heard
  self.waiting[call] = true
end

-- Puts `call` at the back of the calls waiting for a slot on the wire.
local function enqueue(self, call)
  self.waiting[call] = nil
  call.send_at, call.queued = nil, true
  self.ready_tail = self.ready_tail + 1
  self.ready[self.ready_tail] = call
  heap.push(self.deadlines, call.deadline, call)
end

-- Takes the calls waiting for a slot whose deadline has come out of the queue, into `late`; returns
-- `late` and the next deadline of a call still waiting (or nil). An entry whose call left the queue
-- is stale, and dropped as it reaches the top (a call queued again has another entry, at the same
-- deadline).
local function queue_deadlines(self, now, late)
  local h = self.deadlines
  while h[1] and (not h[1].task.queued or h[1].at <= now) do
    local call = heap.pop(h).task
    if call.queued then
      call.queued = nil
      late = late or {}
      late[#late + 1] = call
    end
  end
  return late, h[1] and h[1].at
end

-- Sends `call` now if a slot on the wire is free and its limiter lets it; else queues it for a
-- slot or sets when to try again. True when sent.
local function try_send(self, call, now)
  if self.on_wire >= self.wire then
    enqueue(self, call)
    return false
  end
  local lim = call.limiter
  local lead = lim and now >= self.warm_until and self.lead or 0
  local wait = lim and lim:delay(now, lead) or 0
  if wait > 0 then
    hold(self, call, now + wait, lim.answers)
    return false
  end
  if lim then
    lim:take(now, lead)
  end
  send(self, call, now)
  return true
end

--- Queues `call` at `now`: it goes out as soon as its limiter allows; `on_done(body, err, call)`
--- runs from a step when the call has finished (after any retries).
function Calls:start(call, now)
  call.attempts = 0
  call.deadline = call.deadline or now + self.settings.call_timeout
  if not self.all[call] then self.unfinished = self.unfinished + 1 end
  self.all[call] = true
  try_send(self, call, now)
  return call
end

local function finish(self, call, body, err)
  if self.all[call] then self.unfinished = self.unfinished - 1 end
  self.all[call] = nil
  self.waiting[call] = nil
  call.queued = nil
  if err then
    -- Stamped here, once, before the call's owner sees it: the error was made for this call (by
    -- its classify), and a classify may remember it by identity (files.lua's expired policies).
    err.attempts = call.attempts
  end
  call.done, call.body_value, call.err = true, body, err
  if call.on_done then
    call.on_done(body, err, call)
  end
end

--- Ends `call` at once with `err` (a call that never went out: the client was closed).
function calls.refuse(call, err)
  call.attempts = 0
  call.done, call.err = true, err
  if call.on_done then call.on_done(nil, err, call) end
  return call
end

-- Classifies a finished transfer: retried (held for its back-off) or finished.
local function settle(self, call, now)
  local settings = self.settings
  local resp, terr = call.request:response()
  if resp and call.path then -- an answer of the service: its connection is warm, for a while
    self.warm_until = now + WARM
    if resp.new_connection and resp.pretransfer then
      self.lead = math.min(resp.pretransfer, LEAD_MOST)
    end
  end
  call.request:close()
  call.request = nil
  local body, err, retry_after = (call.classify or http.classify)(call.purpose, resp, terr, call.expect)
  if err and err.status == 429 and call.limiter then -- the quota is spent: everybody waits (capped)
    call.limiter:pause(now, math.min(retry_after or http.backoff(settings, call.attempts), settings.retry_max_delay))
  end
  local delay = http.retry_delay(settings, call, err, retry_after, now)
  if delay then
    call.last_err = err
    hold(self, call, now + delay)
  else
    finish(self, call, body, err)
  end
end

local function timed_out(self, why)
  return errors.new { code = "Timeout", retryable = true,
    message = string.format("not sent within call_timeout (%g s): still waiting for %s",
      self.settings.call_timeout, why) }
end

-- Sends the calls waiting for a slot, in order, while slots are free (queue_deadlines has taken
-- out those whose time is up). True when a transfer was started.
local function fill_wire(self, now)
  local started, ready = false, self.ready
  while self.ready_head <= self.ready_tail and self.on_wire < self.wire do
    local call = ready[self.ready_head]
    ready[self.ready_head] = nil
    self.ready_head = self.ready_head + 1
    if call.queued then -- else cancelled or timed out meanwhile
      call.queued = nil
      started = try_send(self, call, now) or started
    end
  end
  return started
end

--- Moves every call on: finished transfers are classified, retried or completed; calls whose
--- time has come are sent when their limiter and a slot on the wire allow. Returns the earliest
--- time a waiting call wants to go (or nil) and whether a transfer was started.
function Calls:advance(now)
  local settled, sending = self.transport:settled(), self.sending -- what finished since the last step
  if settled then
    for i, request in ipairs(settled) do -- first all taken off the wire, then settled in order
      local call = sending[request]
      sending[request] = nil
      settled[i] = call or false
      if call then self.on_wire = self.on_wire - 1 end
    end
    for _, call in ipairs(settled) do
      if call then settle(self, call, now) end
    end
  end
  -- soonest: the earliest of a queued call's deadline and a held call's time
  local late, soonest = queue_deadlines(self, now, nil)
  local started = fill_wire(self, now)
  local expired
  for call in pairs(self.waiting) do
    if now >= call.deadline then -- still held back (quota, back-off) when its time is up
      expired = expired or {}
      expired[#expired + 1] = call
    elseif now >= call.send_at or (call.heard and call.heard ~= call.limiter.answers) then
      started = try_send(self, call, now) or started
    end
    local at = call.send_at and math.min(call.send_at, call.deadline)
    if at and (not soonest or at < soonest) then
      soonest = at
    end
  end
  -- Finished after the walk: their callbacks may start new calls.
  for _, call in ipairs(late or NONE) do
    finish(self, call, nil, call.last_err or timed_out(self, "a connection"))
  end
  for _, call in ipairs(expired or NONE) do
    finish(self, call, nil, call.last_err or timed_out(self, "the quota"))
  end
  local ended = self.ended
  if #ended > 0 then
    self.ended = {}
    for _, call in ipairs(ended) do
      finish(self, call, nil, (call.classify or http.classify)(call.purpose, nil,
        { outcome = "aborted", message = "request cancelled", sent = false }, call.expect))
    end
  end
  return soonest, started
end

--- Stops the attempt of `call` on the wire, if any: it finishes (or is retried) at the next step.
--- A call waiting for a slot on the wire ends as an attempt cancelled before it was sent would.
function Calls:cancel(call)
  if call.request then
    call.request:cancel()
  elseif call.queued then
    call.queued = nil
    self.ended[#self.ended + 1] = call
  end
end

--- How many more calls may start before they would only wait behind others (for a slot on the
--- wire, or their quota): the poller sends no more lone status queries than this at once, and
--- the other due tasks stay in their lane's heap, where they cost nothing more, so that 10,000
--- tasks ending together are not 10,000 calls held at once (nor walked on every step while
--- their quota holds them back).
function Calls:room()
  return ROOM - self.unfinished
end

--- True while any call is not finished.
function Calls:busy()
  return next(self.all) ~= nil
end

--- Drops every call (client:close): their requests are closed and the queue emptied. Returns the
--- calls that had not finished, each with whether a request of it was on the wire, for calls.abort.
function Calls:drop()
  local dropped = {}
  for call in pairs(self.all) do
    dropped[#dropped + 1] = { call = call, sent = call.request ~= nil }
    if call.request then call.request:close() end
  end
  self.all, self.sending, self.waiting, self.unfinished = {}, {}, {}, 0
  self.on_wire, self.ready, self.ready_head, self.ready_tail, self.ended = 0, {}, 1, 0, {}
  self.deadlines = {}
  return dropped
end

--- Ends the calls Calls:drop returned with an Aborted error (a submit on the wire says the task
--- may exist).
function calls.abort(dropped)
  for _, d in ipairs(dropped) do
    local call = d.call
    if not call.done then
      local err = errors.closed { sent = d.sent and call.purpose == "submit", attempts = call.attempts }
      call.done, call.err = true, err
      if call.on_done then call.on_done(nil, err, call) end
    end
  end
end

return calls
