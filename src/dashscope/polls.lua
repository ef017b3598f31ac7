-- Asking about the due tasks of a lane (the engine's step calls polls.ask): one status query each,
-- or, when many are due at once, pages of the task list (docs/protocol.md §6) that say which of
-- them ended; only those are then queried for their results, and the others count as asked.
-- Which tasks are due, and which may be listed, is the planner's (planner.lua); this file sends
-- the questions through the engine's methods and writes no one's fields.
local listing = require("dashscope.listing")
local TERMINAL = require("dashscope.status").TERMINAL

local polls = {}

local LIST_MIN = 4        -- due tasks of one lane from which one task list beats one query each
local LIST_PAGE = 100

-- The service time from which a task list covers every task of `due`, or nil when a list will not
-- do. Tasks asked early for max_poll_interval's sake (capped) have mostly not ended, so from two
-- on a list page beats a query each; and where one page holds the whole lane, it asks every task
-- of the lane at once, so even one due task is asked through it (the others' next asks move on).
local function list_from(engine, lane, due, capped)
  local offset = engine.clock.offset
  local least = LIST_MIN
  if lane.count > 1 and lane.count <= LIST_PAGE then
    least = 1
  elseif capped == #due then
    least = 2
  end
  if #due < least or lane.model == "?" or not offset then
    return nil
  end
  local submitted = lane:submitted_since(due)
  return submitted and submitted - offset
end

-- Applies what a task list said (`statuses`: id -> status) to the due tasks, and to every other
-- task of the lane it placed: the ended (or, of the due, the unplaced) are fetched next, the
-- others count as asked.
local function listed(engine, lane, due, statuses, err)
  local at = engine:now()
  local function apply(t, status)
    if not status or TERMINAL[status] then
      lane:ask_at(t, at) -- ended (or not placed): its own query comes next
    else
      engine:asked(t, at)
      t:_heard(status)
      engine:answered(t, nil, nil)
    end
  end
  for _, t in ipairs(due) do
    local status = statuses[t.id]
    statuses[t.id] = nil
    apply(t, not err and status or nil)
  end
  for id, status in pairs(statuses) do
    local t = lane:placeable(id)
    if t then apply(t, status) end
  end
  if not err then lane:learn_from_list() end
end

-- Reads pages of the task list (newest first) until every task of `due` is placed, or the pages
-- run out (at most as many as the lane's tracked tasks fill, and one more: a server that pages on
-- and on is not followed), then applies what they said about every task of the lane.
local function list(engine, lane, due, start_time)
  local statuses, unplaced, wanted = {}, #due, {}
  local most = math.ceil(lane.count / LIST_PAGE) + 1
  for _, t in ipairs(due) do wanted[t.id] = true end
  local function page(no)
    engine:start {
      method = "GET", purpose = "query", expect = listing.page_shape, limiter = engine:limiter("tasks"),
      path = string.format("/tasks?model_name=%s&start_time=%s&page_no=%d&page_size=%d",
        lane.model, start_time, no, LIST_PAGE),
      on_done = function(body, err)
        for _, item in ipairs(body and body.data or {}) do
          local id = type(item) == "table" and type(item.status) == "string" and item.task_id
          if type(id) == "string" and not statuses[id] then -- an unreadable status: not placed
            statuses[id] = item.status
            if wanted[id] then unplaced = unplaced - 1 end
          end
        end
        local pages = body and tonumber(body.total_page) or 0
        if not err and unplaced > 0 and no < pages and no < most then
          return page(no + 1)
        end
        listed(engine, lane, due, statuses, err)
      end,
    }
  end
  page(1)
end

--- Asks about `due` (tasks of `lane` whose asks have come): queried one by one, the tasks a list
--- said ended and those asked at their expected end; the others through a task list when one
--- covers them (planner.lua's Lane:split_due says which is which).
function polls.ask(engine, lane, due)
  local one_by_one, listable, capped = lane:split_due(due)
  for _, t in ipairs(one_by_one) do t:_query() end
  local from = list_from(engine, lane, listable, capped)
  if not from then
    for _, t in ipairs(listable) do t:_query() end
    return
  end
  lane:listing(listable)
  list(engine, lane, listable, os.date("%Y%m%d%H%M%S", math.floor(from) - 1))
end

return polls
