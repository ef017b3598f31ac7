-- The task list for users (docs/protocol.md §6): one page as the service sends it (client:tasks), or
-- every page in turn (client:each_task), the filter's contract, and the shape of a page (which
-- polls.lua's task lists read too). client.lua defines the methods; they call here.
local check = require("dashscope.check")

local listing = {}

local STATUSES = require("dashscope.status").LISTED

-- The filter's contract, and the query parameter each field becomes.
local FILTER = {
  { name = "status", type = "enum", values = STATUSES, param = "status", doc = "only tasks in this status" },
  { name = "model", type = "string", param = "model_name", doc = "only this model's tasks, e.g. \"liveportrait\"" },
  { name = "task_id", type = "string", param = "task_id", doc = "that task only" },
  { name = "start_time", type = "time", param = "start_time",
    doc = "from: \"YYYYMMDDhhmmss\" (Beijing time) or epoch seconds (default: end_time - 24 h)" },
  { name = "end_time", type = "time", param = "end_time",
    doc = "until, the same way (default: start_time + 24 h; the span is at most 24 h)" },
  { name = "page_no", type = "integer", min = 1, param = "page_no", doc = "page number (default 1)" },
  { name = "page_size", type = "integer", min = 1, max = 100, param = "page_size", doc = "tasks per page (default 10)" },
}
listing.TASK_FILTER = FILTER

--- The shape of a task-list page: true, or nil and what is missing.
function listing.page_shape(body)
  if type(body.data) ~= "table" then
    return nil, "no data array"
  end
  return true
end

local function escape(s)
  return (tostring(s):gsub("[^%w%-_.~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

-- One page for checked filter values `f`: the page, or nil and err.
local function fetch(engine, f)
  local query = {}
  for _, rule in ipairs(FILTER) do
    if f[rule.name] ~= nil then query[#query + 1] = rule.param .. "=" .. escape(f[rule.name]) end
  end
  if not f.page_no then query[#query + 1] = "page_no=1" end
  if not f.page_size then query[#query + 1] = "page_size=10" end
  return engine:call {
    method = "GET", purpose = "query", expect = listing.page_shape, limiter = engine:limiter("tasks"),
    path = "/tasks?" .. table.concat(query, "&"),
  }
end

--- client:tasks(filter), on the client's `engine`: one page of the task list: { total, data,
--- page_no, page_size, total_page, request_id }, or nil and err.
function listing.tasks(engine, filter)
  return fetch(engine, check.fields(FILTER, filter or {}, "tasks"))
end

--- client:each_task(filter), on the client's `engine`: for item, err in client:each_task{...} do
--- ... end, over every page from filter.page_no on. A failure yields false, err and ends the loop.
function listing.each_task(engine, filter)
  local f = check.fields(FILTER, filter or {}, "each_task")
  local page, i, finished = nil, 0, false
  return function()
    while not finished do
      if page and i < #page.data then
        i = i + 1
        return page.data[i]
      end
      if page and (tonumber(page.page_no) or 0) >= (tonumber(page.total_page) or 0) then
        break
      end
      if page then f.page_no = (tonumber(page.page_no) or 1) + 1 end
      local err
      page, err = fetch(engine, f)
      i = 0
      if not page then
        finished = true
        return false, err
      end
      if #page.data == 0 then break end
    end
    finished = true
    return nil
  end
end

return listing
