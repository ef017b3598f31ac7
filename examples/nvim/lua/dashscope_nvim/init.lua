-- DashScope video jobs from Neovim (VideoRetalk, Emoji, LivePortrait): the plugin's Lua API, under
-- the commands of plugin/dashscope.lua (commands.lua turns their words into these calls).
-- Every call runs in a coroutine (async.lua) over one shared client whose `sleep` yields it, and
-- the tasks are followed by dashscope.uv from Neovim's own loop: the editor never waits on the
-- network, an upload, a submit answered slowly or a download included. What it learns goes to
-- vim.notify and the `dashscope://tasks` buffer (view.lua).
local async = require("dashscope_nvim.async")
local view = require("dashscope_nvim.view")

local plugin = {}

-- rocks_tree: a LuaRocks tree whose Lua 5.1 modules are put on the paths (false: none);
-- build_dir: a `make LUA_VERSION=luajit` build of a checkout (build/luajit), put first.
local options = { client = {}, rocks_tree = "~/.luarocks", build_dir = nil }
local OPTIONS = { client = "table", rocks_tree = { "string", "boolean" }, build_dir = "string" }
local client, driver
local handles = {} -- task id -> its handle (submitted here, or asked about by id)

--- setup{ client = {dashscope.new options}, rocks_tree = dir|false, build_dir = dir }: before the
--- first job (the client is made then). The key comes from the usual places (`:help dashscope`)
--- unless client.api_key is given.
function plugin.setup(opts)
  opts = opts or {}
  vim.validate { opts = { opts, "table" } }
  for name, value in pairs(opts) do
    if not OPTIONS[name] then error("dashscope_nvim.setup: unknown option '" .. tostring(name) .. "'", 2) end
    vim.validate { [name] = { value, OPTIONS[name] } }
  end
  if client and opts.client then
    error("dashscope_nvim.setup: the client exists already (give client options before the first job)", 2)
  end
  options = vim.tbl_deep_extend("force", options, opts)
end

-- Puts `entry` first on package[field], once.
local function prepend(field, entry)
  if not (";" .. package[field] .. ";"):find(";" .. entry .. ";", 1, true) then
    package[field] = entry .. ";" .. package[field]
  end
end

--- require("dashscope"), after putting the configured places on the paths (Lua 5.1's: LuaJIT).
--- Raises, saying how to install it, when it is not found.
function plugin.library()
  if options.rocks_tree then
    local tree = vim.fn.expand(options.rocks_tree)
    prepend("path", tree .. "/share/lua/5.1/?/init.lua")
    prepend("path", tree .. "/share/lua/5.1/?.lua")
    prepend("cpath", tree .. "/lib/lua/5.1/?.so")
  end
  if options.build_dir then
    local dir = vim.fn.expand(options.build_dir)
    prepend("path", dir .. "/?.lua")
    prepend("cpath", dir .. "/?.so")
  end
  local found, dashscope = pcall(require, "dashscope")
  if not found then
    error("lua-dashscope is not installed for LuaJIT: luarocks --lua-version=5.1 --local install "
      .. "dashscope, or setup{ build_dir = ... } (:checkhealth dashscope)\n" .. tostring(dashscope), 0)
  end
  return dashscope
end

--- The shared client and its driver, made on first use.
function plugin.client()
  if not client then
    local dashscope = plugin.library()
    client = dashscope.new(vim.tbl_extend("force", { sleep = async.sleep }, options.client))
    driver = require("dashscope.uv").attach(client, vim.uv or vim.loop, {
      on_error = function(err) view.error(view.message(err)) end,
    })
  end
  return client, driver
end

--- Runs fn(client) in a coroutine of the plugin: its waits never block the editor; an error it
--- raises (a misuse, a missing module or key) is notified.
function plugin.run(fn)
  async.run(function() fn(plugin.client()) end, function(err) view.error(view.message(err)) end)
end

-- The handle of task `id`: the one this session has, else a new one (client:task checks the id).
local function handle(c, id)
  handles[id] = handles[id] or c:task(id)
  return handles[id]
end

--- Follows `task` to its end: each change of status, then the video URL or the error, through
--- vim.notify and the tasks buffer. on_done(task, result, err) last, if given.
function plugin.follow(task, on_done)
  local c, d = plugin.client()
  handles[task.id] = task
  local shown = task:status()
  view.task(task.id, { model = task.model, status = shown })
  view.notify(("task %s %s"):format(task.id, shown))
  c:watch(task, {
    on_status = function(t, status)
      if status ~= shown then -- each change once, whether or not watch repeats the current status
        shown = status
        view.task(t.id, { status = status })
        view.notify(("task %s %s"):format(t.id, status))
      end
    end,
    on_done = function(t, result, err)
      view.task(t.id, { status = t:status(), video_url = result and result.video_url,
                        error = err and tostring(err) })
      if result then
        view.notify(("task %s video: %s"):format(t.id, result.video_url))
      else
        view.error(("task %s failed: %s"):format(t.id, tostring(err)))
      end
      if on_done then on_done(t, result, err) end
    end,
  })
  d:kick()
end

--- Submits a job of `method` ("videoretalk", "emoji", "liveportrait") with `fields` (URLs, or
--- dashscope.file values: uploaded first) and follows it; on_done(task, result, err) at its end.
function plugin.submit(method, fields, on_done)
  plugin.run(function(c)
    local task, err = c[method](c, fields)
    if not task then
      view.error("submit failed: " .. tostring(err))
      if on_done then on_done(nil, nil, err) end
      return
    end
    plugin.follow(task, on_done)
  end)
end

--- Runs detector `method` ("emoji_detect", "liveportrait_detect") and shows its answer.
function plugin.detect(method, fields)
  plugin.run(function(c)
    local answer, err = c[method](c, fields)
    if not answer then
      view.error(method .. " failed: " .. tostring(err))
      return
    end
    local lines = { method .. ": " .. (answer.pass and "pass" or "refused") }
    for _, key in ipairs { "message", "code", "face_bbox", "ext_bbox", "request_id" } do
      local v = answer[key]
      if v ~= nil then lines[#lines + 1] = ("%s: %s"):format(key, vim.inspect(v)) end
    end
    view.lines("detect", lines)
    view.notify(lines[1])
  end)
end

--- Asks the service for task `id` now and shows the tasks buffer; without an id, only shows it.
function plugin.status(id)
  if not id then return view.tasks() end
  plugin.run(function(c)
    local task = handle(c, id)
    local status, err = task:poll()
    if not status then
      view.error(("task %s: %s"):format(id, tostring(err)))
      return
    end
    local result = task:result() or {}
    view.task(id, { model = task.model, status = status, video_url = result.video_url })
    view.notify(("task %s %s"):format(id, status))
    view.tasks()
  end)
end

--- Cancels task `id` (the service cancels only a PENDING task).
function plugin.cancel(id)
  plugin.run(function(c)
    local ok, err = handle(c, id):cancel()
    if not ok then
      view.error(("task %s not canceled: %s"):format(id, tostring(err)))
      return
    end
    view.task(id, { status = "CANCELED" })
    view.notify(("task %s canceled"):format(id))
  end)
end

--- One page of the account's task list (`filter`: client:tasks' filter) in `dashscope://list`.
function plugin.list(filter)
  plugin.run(function(c)
    local page, err = c:tasks(filter or {})
    if not page then
      view.error("task list: " .. tostring(err))
      return
    end
    local lines = { ("page %d of %d, %d tasks"):format(page.page_no or 1, page.total_page or 1, page.total or 0) }
    for _, item in ipairs(page.data or {}) do
      lines[#lines + 1] = ("%-37s %-13s %-16s %s"):format(tostring(item.task_id), tostring(item.model_name),
        tostring(item.status), tostring(item.gmt_create or ""))
    end
    view.lines("list", lines)
    view.notify("task list: " .. lines[1])
  end)
end

--- Saves task `id`'s video to `path` (default: ID.mp4 in the current directory), waiting for the
--- task first if it has not ended; an existing file is replaced only with `overwrite`.
function plugin.download(id, path, overwrite)
  path = vim.fn.expand(path or (id .. ".mp4"))
  plugin.run(function(c)
    -- The tasks buffer shows the download's progress: in steps of 5%, or of a MiB when the size
    -- is not known ahead.
    local shown
    local function progress(done, total)
      local text = total and total > 0 and ("saving %d%%"):format(math.floor(done * 20 / total) * 5)
        or ("saving %d MiB"):format(math.floor(done / 1048576))
      if text ~= shown then
        shown = text
        view.task(id, { saving = text })
      end
    end
    local saved, err = handle(c, id):download(path, { overwrite = overwrite, on_progress = progress })
    view.task(id, { saving = false, path = saved or nil })
    if not saved then
      view.error(("task %s not saved: %s"):format(id, tostring(err)))
      return
    end
    view.notify(("task %s saved: %s"):format(id, saved))
  end)
end

--- The ids of this session's tasks, newest first.
plugin.task_ids = view.task_ids

return plugin
