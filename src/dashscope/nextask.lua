-- When a task is asked next, as pure functions of its poll plan (read, never written: the plan is
-- planner.lua's) and its lane's figures (runtimes.lua). Times are on the client's clock; `s`
-- holds poll_interval and max_poll_interval.
local nextask = {}

local GROWTH = 1.5     -- geometric schedule factor while the duration is unknown
local SPARSE = 3       -- the same for tasks behind the head of a parallel lane
-- While its model's run time is unknown, a head is found at most LAG seconds after its end, or
-- LAG_SHARE of the time it has run by then, whichever is longer (and never over max_poll_interval):
-- a job of a few seconds is not found seconds late (a 5 s job in 5 questions, a 10 s one in 9);
-- a long one pays in questions (a 60 s job: 24, where the plain geometric schedule asks 10 times
-- and may find it 10 s late).
local LAG, LAG_SHARE = 1.25, 0.125
local HURRY = 8        -- the most that many tasks waiting for the lesson speed their heads up

--- A task of a lane with a known run time `d`: its next ask just after its expected end (or a
--- growing step once asked then and not done), and its expected end (the next one's start in a
--- queue, where `previous_end` is the expected end of the task before).
function nextask.known(p, learned, now, s, d, wait, previous_end)
  local start = p.started_local
  if not start then
    start = (p.submitted_local or now) + wait
    if learned.parallel == false and previous_end and previous_end > start then
      start = previous_end
    end
  end
  local due = start + d + learned:slack_for(d)
  if not p.submitted_local and not p.last_poll then
    due = now -- a task resumed by id: first see where it is
  elseif p.last_poll and p.last_poll >= start + d then
    -- asked at or after the expected end and not done: a short step that grows
    local step = math.max(0.05, 0.05 * d) * 2 ^ math.max(0, (p.late or 1) - 1)
    due = p.last_poll + math.min(step, s.max_poll_interval)
  end
  return due, start + d
end

--- A task of a lane still learning its run time (`rank`: its place in the lane of `count` tasks),
--- or nil: not now, wait for news. Tasks of one model run about as long as each other: the head
--- teaches the run time for all the others, and one probe behind it tells a queue from parallel
--- runs. In a queue the rest cannot end before the head; running in parallel they are asked
--- sparsely (a short input may end first). A head is asked on a geometric schedule from
--- poll_interval, its steps held to the lag above (measured from its start when seen running).
function nextask.unknown(p, parallel, count, rank, now, s)
  local heads = parallel == nil and 2 or 1
  local interval
  if rank <= heads or (p.last_poll == nil and p.submitted_local == nil) then
    interval = s.poll_interval * GROWTH ^ p.polls
    local since = p.started_local or p.submitted_local
    if p.last_poll and since then
      interval = math.min(interval, math.max(LAG, s.poll_interval, LAG_SHARE * (p.last_poll - since)))
    end
    -- the more tasks wait for the lesson, the more often it is worth asking (in steps of 2x, so
    -- that the heads' asks do not move, and go back into the heap, on every submit)
    local hurry = 2 ^ math.floor(math.log(math.max(1, math.sqrt(count / 10)), 2))
    interval = math.min(interval, s.max_poll_interval) / math.min(HURRY, hurry)
  elseif parallel then
    interval = s.poll_interval * 2 * SPARSE ^ p.polls
  end
  return interval and
    (p.last_poll or p.submitted_local or (now - interval)) + math.min(interval, s.max_poll_interval)
end

--- max_poll_interval is the longest a tracked task goes without a question (since `since`),
--- whatever its lane planned (a run time learned wrong, a queue waiting for news): an ask `due`
--- later is brought forward, and said capped (second result: true), since such an ask is not
--- expected to find the task ended and may go through a task list with others. A capped ask goes
--- where the lane asks anyway (`anchor`, e.g. the head of a queue at its expected end) when that is
--- in the second half of the window, so that the list and that ask go out together and the next
--- window starts from there; otherwise it is rounded down to a grid of a quarter of
--- max_poll_interval, so that tasks submitted close together fall due together and share a list.
function nextask.cap(due, since, s, anchor)
  local latest = since + s.max_poll_interval
  if due and due <= latest then
    return due, nil
  end
  if anchor and anchor <= latest and anchor >= latest - s.max_poll_interval / 2 then
    return anchor, true
  end
  local grid = s.max_poll_interval / 4
  return math.floor(latest / grid) * grid, true
end

--- Has the lane's picture moved since its last whole plan (`planned`: { d, wait, slack }), enough
--- that every task's ask moves? Small drifts are let be: an ask planned with a run time, a wait or
--- a slack 2 % of the run time off is still close to the task's end, and replanning every task
--- costs O(tasks) (the slack moves a little on nearly every answer).
function nextask.drifted(planned, learned, d, wait)
  if not planned then return true end
  local tol = 0.02 * d + 0.005
  return math.abs(d - planned.d) > tol or math.abs(wait - planned.wait) > tol
    or math.abs(learned:slack_for(d) - planned.slack) > tol
end

return nextask
