-- The waits on many tasks (client:each_done, wait_all, wait_any, and task:wait through them): one
-- iterator that hands out every slot of a task array in the order the tasks end, running the
-- client's engine meanwhile, and the checks of the task arrays they take. client.lua and task.lua
-- define the methods; they call here. The engine runs the loops (engine.lua); tasks say how they
-- ended (task.lua).
local core = require("dashscope.core")
local check = require("dashscope.check")
local errors = require("dashscope.errors")

local waits = {}

local MANY_OPTIONS = {
  { name = "timeout", type = "number", min = 0, doc = "seconds (default: the client's wait_timeout)" },
  { name = "sleep", type = "function", doc = "function(seconds) used instead of blocking, e.g. ngx.sleep" },
}
waits.MANY_OPTIONS = MANY_OPTIONS

--- Raises unless `tasks` is an array (1..n, no holes) of tasks of `client`; returns n. A task may
--- appear more than once (each_done, wait_all: see there). `what` names the method.
function waits.check_tasks(client, tasks, what)
  check.open(client, "client:" .. what)
  local mt = getmetatable(tasks)
  if type(mt) == "table" and mt.__name == "dashscope.Task" then
    check.fail(what, "expects an array of tasks, got one task (pass { task })")
  end
  if type(tasks) ~= "table" then
    check.fail(what, "expects an array of tasks, got " .. type(tasks))
  end
  local n, count = #tasks, 0
  for k in pairs(tasks) do
    count = count + 1
    if type(k) ~= "number" or k < 1 or k > n or k ~= math.floor(k) then
      check.fail(what, "expects an array of tasks, got a table with the key " .. tostring(k))
    end
  end
  if count ~= n then
    check.fail(what, "expects an array of tasks without holes (nil items)")
  end
  for i = 1, n do
    local t = tasks[i]
    if type(t) ~= "table" or t._client ~= client then
      check.fail(what, "tasks[" .. i .. "] is not a task of this client")
    end
  end
  return n
end

-- Why the task `t` was given up on: the deadline passed (WaitTimeout) or the client closed.
local function reason(client, t, timeout)
  if client._closed then
    return errors.closed { task_id = t.id }
  end
  local last = t._last_error and (" (last query: " .. tostring(t._last_error) .. ")") or ""
  return errors.new {
    code = "WaitTimeout", task_id = t.id, retryable = true,
    message = string.format("task still %s after waiting %g s%s", t:status(), timeout, last),
  }
end

-- The deadline passed or the client closed: every slot of a task not seen ended goes to
-- `ready`, in the order given, with the reason.
local function give_up(w)
  local reasons = {}
  for i = 1, w.n do
    local t = w.tasks[i]
    if w.slots[t] then
      t:_unwatch(w.watch)
      w.slots[t] = nil
      reasons[t] = reason(w.client, t, w.timeout)
    end
    if reasons[t] then w.ready[#w.ready + 1] = { i, t, nil, reasons[t] } end
  end
end

-- Runs the engine until a task of the wait ends, the deadline passes or the client closes;
-- between slices of `tick.every` seconds while nothing has ended, calls tick.fn.
local function run_until_one_ends(w, tick)
  local engine, ended = w.client._engine, w.ended
  local function any() return ended[w.head] ~= nil end
  local next_tick = tick and core.now() + tick.every
  while not any() and not engine.closed do
    local stop = next_tick and math.min(w.deadline, next_tick) or w.deadline
    engine:run(any, stop, w.sleep)
    if any() or engine.closed or core.now() >= w.deadline then break end
    tick.fn()
    next_tick = core.now() + tick.every
  end
end

-- Queues `t`, seen ended.
local function ended(w, t)
  w.tail = w.tail + 1
  w.ended[w.tail] = t
end

-- The wait's state for `tasks` (checked): the array as given (the loop's body may change the
-- caller's), each task's slots (its index, or a list of them for a task given more than once)
-- until they are handed out, and the tasks seen ended (a queue from `head`: thousands may end in
-- one step). One watch, shared by every task of the wait: 10,000 tasks waited on cost their
-- slots, not a closure each.
local function start(client, tasks, n, timeout, sleep)
  local w = { client = client, tasks = {}, n = n, timeout = timeout, sleep = sleep,
              deadline = core.now() + timeout, slots = {}, ended = {}, head = 1, tail = 0, ready = {} }
  w.watch = { on_done = function(t) ended(w, t) end }
  local slots = w.slots
  for i = 1, n do
    local t = tasks[i]
    w.tasks[i] = t
    local s = slots[t]
    if s == nil then
      slots[t] = i
      if t:ended() or t._fatal then
        ended(w, t)
      else
        t:_watch(w.watch)
        client._engine:track(t)
      end
    elseif type(s) == "number" then
      slots[t] = { s, i }
    else
      s[#s + 1] = i
    end
  end
  return w
end

-- Hands out the slots of `t`, which has ended: each goes to `ready` with its outcome.
local function hand_out(w, t)
  local s, result, err = w.slots[t], t:outcome()
  w.slots[t] = nil
  if type(s) == "number" then
    w.ready[#w.ready + 1] = { s, t, result, err }
    return
  end
  for _, i in ipairs(s) do w.ready[#w.ready + 1] = { i, t, result, err } end
end

--- The iterator behind each_done, wait_all, wait_any and task:wait: slot, task, result, err for
--- every slot of `tasks` (a task given twice has two slots), slots of one task together, in the
--- order the tasks end; at the deadline (or once a callback closed the client) the slots left,
--- in the order given, with a WaitTimeout (or Aborted) error. Each task is followed once however
--- often it is given. `tick` (task:wait's on_tick): { every = seconds, fn = function() } called
--- between slices of the wait while nothing has ended.
function waits.slots(client, tasks, opts, what, tick)
  local n = waits.check_tasks(client, tasks, what)
  local o = check.fields(MANY_OPTIONS, opts or {}, what)
  local w = start(client, tasks, n, o.timeout or client._settings.wait_timeout, o.sleep)
  local left = n
  return function()
    if #w.ready == 0 and left > 0 then
      run_until_one_ends(w, tick)
      local t = w.ended[w.head]
      if t then
        w.ended[w.head], w.head = nil, w.head + 1
        hand_out(w, t)
      else
        give_up(w)
      end
    end
    local slot = table.remove(w.ready, 1)
    if not slot then
      return nil
    end
    left = left - 1
    return slot[1], slot[2], slot[3], slot[4]
  end
end

--- for task, result, err in client:each_done(tasks, opts): see client.lua.
function waits.each_done(client, tasks, opts)
  local next_slot = waits.slots(client, tasks, opts, "each_done")
  return function()
    local _, t, result, err = next_slot()
    return t, result, err
  end
end

--- client:wait_all: the results and errors, each an array in the order given.
function waits.wait_all(client, tasks, opts)
  local results, errs = { n = #tasks }, { n = #tasks }
  for i, _, result, err in waits.slots(client, tasks, opts, "wait_all") do
    results[i], errs[i] = result, err
  end
  return results, errs
end

--- client:wait_any: the first task to end, its result (or nil) and its error.
function waits.wait_any(client, tasks, opts)
  local _, t, result, err = waits.slots(client, tasks, opts, "wait_any")()
  return t, result, err
end

--- task:wait's loop: the wait for one task, with its on_tick.
function waits.wait_one(t, opts, tick)
  local _, _, result, err = waits.slots(t._client, { t }, opts, "wait", tick)()
  return result, err
end

return waits
