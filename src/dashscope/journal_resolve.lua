-- Finding the task of an ambiguous job (journal.lua decides what to do with what is found): the
-- window its task, if any, was created in, and the model's tasks of that window that no job of the
-- journal claims, from the task list (client:each_task). The list's times are the service's
-- (epoch milliseconds in `gmt_create`), so the window is widened by how far the clocks may differ.
local models = require("dashscope.models")

local journal_resolve = {}

--- The window of an ambiguous `job` { t = when its submit was about to be sent, e = when it ended
--- without an answer }, both wall-clock seconds; a job whose run stopped has no `e`: `stopped` (when
--- the journal was reopened) bounds it. `skew`: seconds the clocks may differ. from, to.
function journal_resolve.window(job, stopped, skew)
  return job.t - skew, (job.e or stopped) + skew
end

--- Do two windows overlap?
function journal_resolve.overlap(a_from, a_to, b_from, b_to)
  return a_from <= b_to and b_from <= a_to
end

local function created_at(item)
  local ms = tonumber(item.gmt_create)
  return ms and ms / 1000
end

--- The task ids of `model` created between `from` and `to` (wall-clock seconds) that `claimed` (a
--- set of task ids) does not hold, from every page of the task list: a list, or nil and err.
function journal_resolve.unclaimed(client, model, from, to, claimed)
  local found = {}
  for item, err in client:each_task { model = model, start_time = math.floor(from), end_time = math.ceil(to),
                                      page_size = 100 } do
    if item == false then return nil, err end
    local id, at = item.task_id, created_at(item)
    if type(id) == "string" and not claimed[id] and (not at or (at >= from and at <= to)) then
      found[#found + 1] = id
    end
  end
  return found
end

--- Another job of `jobs` (the journal's, by key: read only) whose task may be among those found
--- for `job`'s window [from, to]: one of its model whose submit is on its way here (its answer will
--- claim it), or another ambiguous one whose window overlaps. Why, or nil.
function journal_resolve.rival(jobs, job, from, to, stopped, skew)
  local model = models[job.m].model
  for _, other in pairs(jobs) do
    if other ~= job and other.m and other.t and models[other.m].model == model then
      if other.st == "sending" then return "a submit of the same model is on its way" end
      if other.st == "ambiguous" then
        local o_from, o_to = journal_resolve.window(other, stopped, skew)
        if journal_resolve.overlap(from, to, o_from, o_to) then return "job " .. other.key .. " is ambiguous too" end
      end
    end
  end
end

return journal_resolve
