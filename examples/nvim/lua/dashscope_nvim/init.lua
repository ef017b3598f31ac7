-- DashScope LivePortrait jobs from Neovim. The submit is one blocking HTTP call (short: the
-- service answers at once with a task id); from then on the task is followed from Neovim's own
-- event loop by dashscope.uv, which sleeps until a socket is ready or the next status query is
-- due, so the editor never waits on the service. Progress and the result go through vim.notify.
local M = {}

local options = { client = {} }
local client, driver

-- An error raised at the plugin's call (a bad field, no key) reads better without "init.lua:28: ".
local function message(err)
  return (tostring(err):gsub("^[^\n]-:%d+: ", ""))
end

-- Callbacks run from libuv callbacks, where most of the API is off limits (E5560): notify later.
-- vim.schedule keeps the order.
local function notify(text, level)
  vim.schedule(function()
    vim.notify("dashscope: " .. text, level or vim.log.levels.INFO)
  end)
end

--- setup{ client = { ...dashscope.new options... } }: before the first job. The key comes from
--- DASHSCOPE_API_KEY (or the key file) unless client.api_key is given.
function M.setup(opts)
  options = vim.tbl_deep_extend("force", options, opts or {})
end

--- The client and its driver, made on first use.
function M.client()
  if not client then
    local dashscope = require("dashscope")
    client = dashscope.new(options.client)
    driver = require("dashscope.uv").attach(client, vim.loop, {
      on_error = function(err) notify(message(err), vim.log.levels.ERROR) end,
    })
  end
  return client, driver
end

--- liveportrait{ image_url, audio_url, template_id?, on_done? = fn(task, result, err) }: submits
--- a job and follows it. Returns the task, or nil when the submit failed (already notified).
function M.liveportrait(job)
  local ok, c, d = pcall(M.client)
  if not ok then
    notify(message(c), vim.log.levels.ERROR)
    return nil
  end
  -- A field the contract refuses raises before anything is sent.
  local submitted, task, err = pcall(c.liveportrait, c, {
    image_url = job.image_url, audio_url = job.audio_url, template_id = job.template_id,
  })
  d:kick() -- the submit ran the client outside the driver: re-sync its sockets
  if not submitted then
    notify(message(task), vim.log.levels.ERROR)
    return nil
  end
  if not task then
    notify("submit failed: " .. tostring(err), vim.log.levels.ERROR)
    return nil
  end
  local shown = task:status()
  notify(("task %s %s"):format(task.id, shown))
  c:watch(task, {
    on_status = function(t, status)
      if status ~= shown then -- each change once, whether or not watch repeats the current status
        shown = status
        notify(("task %s %s"):format(t.id, status))
      end
    end,
    on_done = function(t, result, e)
      if result then
        notify(("task %s video: %s"):format(t.id, result.video_url))
      else
        notify(("task %s failed: %s"):format(t.id, tostring(e)), vim.log.levels.ERROR)
      end
      if job.on_done then job.on_done(t, result, e) end
    end,
  })
  d:kick()
  return task
end

return M
