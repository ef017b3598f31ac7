-- Drives a client from a libuv loop (the luv API: Neovim's vim.loop, or require "luv"). One poll
-- handle per socket libcurl wants watched and one timer for the client's next piece of work; so
-- while tasks wait between status queries nothing fires but the timer, at the next due query.
--
--   local driver = require("dashscope.uv").attach(client, vim.loop, { on_error = fn })
--   client:watch(task, { on_status = ..., on_done = ... })
--   driver:kick()      -- after work added from outside a blocking call (blocking calls re-sync it)
--   driver:detach()
--
-- Owns its handles only; every decision about what to send and when stays in client.lua. Errors
-- raised while driving (a callback's, or the client's) are caught and given to on_error: they never
-- reach the loop.
local uv = {}

local Driver = {}
Driver.__index = Driver

local function default_on_error(err)
  io.stderr:write("dashscope.uv: ", tostring(err), "\n")
end

-- Hands an error to on_error; one raised by on_error itself goes to stderr, never to the loop.
function Driver:_report(err)
  local ok, again = pcall(self.on_error, err)
  if not ok then
    default_on_error(again)
  end
end

-- Seconds to whole milliseconds, rounded up: a small positive delay must not become a busy 0 ms.
local function ms(seconds)
  return math.max(0, math.ceil(seconds * 1000))
end

-- Brings the handles in line with the client: a poll per wanted socket, the timer at `delay`.
function Driver:_sync(delay)
  local client, polls = self.client, self.polls
  local want = client:sockets()
  for fd, poll in pairs(polls) do
    if not want[fd] then
      polls[fd] = nil
      poll:stop()
      poll:close()
    end
  end
  for fd, mode in pairs(want) do
    local poll = polls[fd]
    if not poll then
      poll = assert(self.uv.new_socket_poll(fd))
      polls[fd] = poll
    end
    -- Restarted even when the mode is the same: libcurl may have closed this fd and opened another
    -- socket under the same number, which epoll forgot at the close; a restart registers it again.
    poll:start(mode, self._on_poll[fd] or self:_poll_callback(fd))
  end
  self.timer:stop()
  if client:busy() then
    self.timer:start(ms(delay), 0, self._on_timer)
  end
end

-- Runs one drive of the client (`method` is "step" or "socket_ready") under pcall, then re-syncs.
function Driver:_drive(method, ...)
  if self.detached then return end
  local client = self.client
  local ok, delay = pcall(client[method], client, ...)
  if not ok then
    self:_report(delay)
    -- Again at once (events queued behind a callback that raised), then once a second while the
    -- errors go on, rather than spin.
    delay = self._failing and 1 or 0
  end
  self._failing = not ok
  if self.detached then return end -- a callback may have detached us
  local synced, err = pcall(self._sync, self, delay)
  if not synced then
    self:_report(err)
  end
end

function Driver:_poll_callback(fd)
  local callback = function(err, events)
    -- An error on the socket (err set): let libcurl find it by reading and writing.
    local r = err ~= nil or (events or ""):find("r", 1, true) ~= nil
    local w = err ~= nil or (events or ""):find("w", 1, true) ~= nil
    self:_drive("socket_ready", fd, r, w)
  end
  self._on_poll[fd] = callback
  return callback
end

--- Steps the client from the loop at once and re-syncs the handles. Every blocking call of the
--- client (submit, poll, wait, cancel) does this when it returns; call it after adding work in
--- another way, e.g. client:watch on a task from client:task(id).
function Driver:kick()
  if self.detached then return end
  -- Sockets now (a closed fd must leave the loop before it polls again), the step from the loop.
  local ok, err = pcall(self._sync, self, 0)
  if not ok then
    self:_report(err)
  end
end

--- Stops and closes every handle; the client is left as it is (close it yourself, after this).
--- Idempotent.
function Driver:detach()
  if self.detached then return end
  self.detached = true
  self.client._engine:on_after_run(self, nil)
  for fd, poll in pairs(self.polls) do
    self.polls[fd] = nil
    poll:stop()
    poll:close()
  end
  self.timer:stop()
  self.timer:close()
end

--- Attaches a driver to `client` on the luv module `luv` (vim.loop, require "luv"). opts.on_error(err)
--- receives every error raised while driving (default: a line on stderr).
function uv.attach(client, luv, opts)
  opts = opts or {}
  local self = setmetatable({
    client = client, uv = luv, polls = {}, _on_poll = {},
    timer = luv.new_timer(),
    on_error = opts.on_error or default_on_error,
  }, Driver)
  self._on_timer = function() self:_drive("step") end
  -- After any blocking call of the client (a submit, poll, wait or cancel), re-sync at once: a
  -- socket it closed must leave the loop before libuv polls it again.
  client._engine:on_after_run(self, function() self:kick() end)
  self:kick()
  return self
end

return uv
