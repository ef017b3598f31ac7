-- What a lane (planner.lua) has learned about its model's tasks, from the answers: how long they
-- run (the median of the recent runs: end_time - scheduled_time, both in the service's clock, so
-- skew cancels out), how long they wait to start in a parallel lane, whether the service queues
-- them (docs/protocol.md §10) or runs them in parallel, when the last one ended (our clock), and
-- how long after the expected end a task is asked (the slack: grows when asked too early, shrinks
-- otherwise). Pure figures: which answer to believe is the planner's call.
local servicetime = require("dashscope.servicetime")

local runtimes = {}

local Runtimes = {}
Runtimes.__index = Runtimes

local median, remember = servicetime.median, servicetime.remember

--- Nothing learned yet: durations and waits empty, parallel unknown (nil), no slack.
function runtimes.new()
  return setmetatable({ durations = {}, waits = {}, parallel = nil, slack = nil, last_end_local = nil }, Runtimes)
end

--- The least slack for a run time of `duration` seconds.
function runtimes.margin(duration)
  return 0.02 + 0.01 * duration
end

--- The typical run time, or nil before the first task has succeeded.
function Runtimes:duration()
  if self.durations_median == nil then self.durations_median = median(self.durations) or false end
  return self.durations_median or nil
end

--- The typical delay from submit to start in a parallel lane (0 until one is seen).
function Runtimes:start_delay()
  if self.waits_median == nil then self.waits_median = median(self.waits) or 0 end
  return self.waits_median
end

--- The slack for a run time of `d` seconds.
function Runtimes:slack_for(d)
  return self.slack or runtimes.margin(d)
end

--- Whether the service runs the lane's tasks in parallel (a task seen running while another of
--- ours runs) or queues them (one seen PENDING meanwhile). Decided once.
function Runtimes:learn_parallel(parallel)
  if self.parallel == nil then self.parallel = parallel end
end

--- A task ended at `at` (our clock).
function Runtimes:learn_end(at)
  self.last_end_local = math.max(self.last_end_local or 0, at)
end

--- A run of `run` seconds (believed), and, when given and the lane is parallel, a wait to start.
function Runtimes:learn_run(run, wait)
  remember(self.durations, run)
  self.durations_median = nil
  if wait and self.parallel then
    remember(self.waits, wait)
    self.waits_median = nil
  end
end

--- After a task was asked at its expected end: it had `ended` or not. Tunes the slack so that few
--- are asked too early (a second query) and none much too late (lag).
function Runtimes:tune_slack(ended)
  local d = self:duration()
  if not d then return end
  local slack = self:slack_for(d)
  if ended then
    self.slack = math.max(runtimes.margin(d), slack * 0.97)
  else
    self.slack = math.min(slack * 1.5 + 0.005, 0.1 * d + 0.1)
  end
end

return runtimes
