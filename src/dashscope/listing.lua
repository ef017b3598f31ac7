-- The task list for users (docs/protocol.md §6): one page as the service sends it (client:tasks), or
-- every page in turn (client:each_task). Client methods: copied into the Client class.
local check = require("dashscope.check")

local L = {}

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
L.TASK_FILTER = FILTER

local function page_shape(body)
  if type(body.data) ~= "table" then
    return nil, "no data array"
  end
  return true
end

local function escape(s)
  return (tostring(s):gsub("[^%w%-_.~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

-- One page for checked filter values `f`: the page, or nil and err.
local function fetch(self, f)
  local query = {}
  for _, rule in ipairs(FILTER) do
    if f[rule.name] ~= nil then query[#query + 1] = rule.param .. "=" .. escape(f[rule.name]) end
  end
  if not f.page_no then query[#query + 1] = "page_no=1" end
  if not f.page_size then query[#query + 1] = "page_size=10" end
  return self:_call {
    method = "GET", kind = "query", expect = page_shape, limiter = self._limits.tasks,
    path = "/tasks?" .. table.concat(query, "&"),
  }
end

local function checked(self, method, filter, level)
  if type(self) ~= "table" or not self._transport then
    check.fail(method, "call it as client:" .. method .. "(...)", level + 1)
  end
  check.open(self, "client:" .. method, level + 1)
  local f = check.fields(FILTER, filter or {}, method, level + 1)
  return f -- not a tail call: the levels above count this frame
end

--- client:tasks(filter): one page of the task list: { total, data, page_no, page_size,
--- total_page, request_id }, or nil and err.
function L:tasks(filter)
  return fetch(self, checked(self, "tasks", filter, 2))
end

--- client:each_task(filter): for item, err in client:each_task{...} do ... end, over every page
--- from filter.page_no on. A failure yields false, err and ends the loop.
function L:each_task(filter)
  local f = checked(self, "each_task", filter, 2)
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
      page, err = fetch(self, f)
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

return L
