-- Asking in proportion to need (issue 11): thousands of tasks that wait are placed by pages of the
-- task list, not asked one by one; a lane that fits on one page is asked through it whole. The
-- request rates themselves are measured in bench/ (the WAIT10000 row), not here.
local helper = require("spec.support.helper")
local now = require("dashscope.core").now

-- Submits n liveportrait jobs, then drives the client for `seconds`; returns the requests the
-- server received meanwhile (its log from the last submit on).
local function wait_a_while(client, n, seconds)
  for i = 1, n do assert(client:liveportrait(helper.liveportrait_fields(i))) end
  local log = helper.log()
  local from = #log
  local stop = now() + seconds
  while now() < stop do
    client._transport:wait(math.min(client:step(), 0.01, math.max(0, stop - now())))
  end
  log = helper.log()
  local after = {}
  for i = from + 1, #log do after[#after + 1] = log[i] end
  return after
end

-- The task ids that were asked by status queries of their own in `requests`.
local function queried(requests)
  local ids, n = {}, 0
  for _, r in ipairs(requests) do
    local id = r.path:match("/tasks/([^/?]+)$")
    if id and not ids[id] then
      ids[id], n = true, n + 1
    end
  end
  return n
end

describe("a client with thousands of tasks waiting", function()
  it("places them all with pages of the task list, past 20 pages, and queries none but the lane's heads", function()
    -- 2150 submits take a minute under valgrind, and this path runs no C code the rest of the
    -- suite does not run there
    if helper.UNDER_VALGRIND then return pending("2150 tasks: not under valgrind") end
    helper.reset { concurrency = 0, durations = { pending = 120, running = 1 } }
    local client = helper.client { poll_interval = 0.2, max_poll_interval = 1 }
    local requests = wait_a_while(client, 2150, 2.5) -- 22 pages of 100
    local pages = 0
    for _, r in ipairs(requests) do
      if r.path:find("/tasks?", 1, true) then pages = pages + 1 end
    end
    assert.truthy(pages >= 22, "pages read: " .. pages)
    -- the oldest (and one probe behind it) are asked while the run time is unknown; every other
    -- task waits for a page that places it, but for one whose capped ask falls due alone now and
    -- then (a page for one task is no better than its query). Before: 150 of 2150 queried.
    assert.truthy(queried(requests) <= 10, queried(requests) .. " tasks queried on their own")
    client:close()
  end)
end)

describe("a lane that fits on one page", function()
  it("asks its head through the page, which places the tasks queued behind it too", function()
    helper.reset { concurrency = 1, durations = { pending = 0, running = 30 } }
    local client = helper.client { poll_interval = 0.1, max_poll_interval = 1 }
    local requests = wait_a_while(client, 6, 2)
    -- the first question of each head is a query (the list's time filter needs the service's
    -- clock, learned from an answer); from then on the head's questions are pages, and no task
    -- queued behind goes a max_poll_interval without one
    assert.truthy(queried(requests) <= 2, queried(requests) .. " tasks queried on their own")
    local pages = 0
    for _, r in ipairs(requests) do
      if r.path:find("/tasks?", 1, true) then pages = pages + 1 end
    end
    assert.truthy(pages >= 3, "pages read: " .. pages)
    client:close()
  end)
end)
