-- The plugin's calls run in coroutines so that nothing blocks the editor: a submit, an upload, a
-- download or a status query waits through the client's `sleep` option, which is `async.sleep`
-- here. Inside a coroutine started by async.run it yields, and a timer resumes it; the editor
-- handles keys, redraws and runs other timers meanwhile, and the client's sockets go on being
-- driven by dashscope.uv. Owns the coroutines it starts; knows nothing of the client.
local async = {}

-- The coroutines async.run started (weak: a finished one goes). Only those yield in sleep: a
-- coroutine of someone else's (a caller using the shared client from their own scheduler) would
-- hand our timer's resume to code that does not expect it.
local ours = setmetatable({}, { __mode = "k" })

-- Resumes `co`; an error of the plugin itself (run's body catches the caller's) goes to on_error.
local function resume(co, on_error)
  local ok, err = coroutine.resume(co)
  if not ok then on_error(err) end
end

--- The client's `sleep`: waits `seconds` without blocking the editor. Outside async.run (the
--- shared client used from a caller's own code), it waits with vim.wait: timers and sockets go on,
--- but the editor's keys wait that long.
function async.sleep(seconds)
  local ms = math.max(0, math.ceil(seconds * 1000))
  local co = coroutine.running()
  local entry = co and ours[co]
  if not entry then
    vim.wait(ms)
    return
  end
  -- vim.defer_fn: a libuv timer whose callback is scheduled on the main loop, where the whole
  -- Neovim API may be called (the coroutine goes on to notify and to write buffers).
  vim.defer_fn(function() resume(co, entry.on_error) end, ms)
  coroutine.yield()
end

--- Runs fn() in a coroutine of ours: its sleeps yield. An error it raises goes to on_error(err).
function async.run(fn, on_error)
  local co
  co = coroutine.create(function()
    local ok, err = pcall(fn)
    if not ok then on_error(err) end
  end)
  ours[co] = { on_error = on_error }
  resume(co, on_error)
end

return async
