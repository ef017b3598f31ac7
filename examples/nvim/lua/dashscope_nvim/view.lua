-- What the plugin shows: notifications, and its scratch buffers. `dashscope://tasks` holds a row
-- for every task of this session (model, status, video URL or error, the file it was saved to),
-- kept up to date as the tasks move; other answers (a detection, a page of the task list) get a
-- buffer of their own. Owns the rows and the buffers; never calls the client.
local view = {}

local rows, order = {}, {} -- task id -> row; ids in the order first seen
local buffers = {} -- name -> the scratch buffer made for it

-- Errors raised at the plugin's call read better without "init.lua:28: ".
function view.message(err)
  return (tostring(err):gsub("^[^\n]-:%d+: ", ""))
end

--- A notification, always from the main loop: the client's callbacks run inside libuv callbacks,
--- where most of Neovim's API is off limits (E5560). vim.schedule keeps their order.
function view.notify(text, level)
  vim.schedule(function()
    vim.notify("dashscope: " .. text, level or vim.log.levels.INFO)
  end)
end

function view.error(text)
  view.notify(text, vim.log.levels.ERROR)
end

-- A scratch buffer named `name` (made once), its lines replaced by `lines`.
local function fill(name, lines)
  local buf = buffers[name]
  if not (buf and vim.api.nvim_buf_is_valid(buf)) then
    buf = vim.api.nvim_create_buf(false, true)
    vim.api.nvim_buf_set_name(buf, name)
    vim.api.nvim_buf_set_option(buf, "filetype", "dashscope")
    buffers[name] = buf
  end
  vim.api.nvim_buf_set_option(buf, "modifiable", true)
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
  vim.api.nvim_buf_set_option(buf, "modifiable", false)
  return buf
end

-- Shows `buf` in a window: the one showing it already, else a new split.
local function show(buf)
  local win = vim.fn.bufwinid(buf)
  if win == -1 then
    vim.cmd("split")
    vim.api.nvim_win_set_buf(0, buf)
  else
    vim.api.nvim_set_current_win(win)
  end
end

local function task_lines()
  local lines = { "task id                               model         status           result" }
  for _, id in ipairs(order) do
    local r = rows[id]
    lines[#lines + 1] = ("%-37s %-13s %-16s %s"):format(id, r.model or "?", r.status or "?",
      r.saving or r.path and ("saved: " .. r.path) or r.video_url or r.error or "")
  end
  return lines
end

--- Records what is known of task `id` (fields: model, status, video_url, error, path, and saving:
--- a download's progress, false once it has ended) and refreshes `dashscope://tasks` if it exists.
function view.task(id, fields)
  local r = rows[id]
  if not r then
    r = {}
    rows[id] = r
    order[#order + 1] = id
  end
  for k, v in pairs(fields) do r[k] = v end
  local function refresh()
    if buffers["dashscope://tasks"] then fill("dashscope://tasks", task_lines()) end
  end
  -- At once from the main loop (a coroutine of the plugin's); from a libuv callback, later.
  if vim.in_fast_event() then vim.schedule(refresh) else refresh() end
end

--- The ids of this session's tasks, newest first (for completion).
function view.task_ids()
  local ids = {}
  for i = #order, 1, -1 do ids[#ids + 1] = order[i] end
  return ids
end

--- Opens `dashscope://tasks`.
function view.tasks()
  show(fill("dashscope://tasks", task_lines()))
end

--- Opens the scratch buffer `dashscope://NAME` holding `lines`.
function view.lines(name, lines)
  show(fill("dashscope://" .. name, lines))
end

return view
