-- The task statuses the service speaks (docs/protocol.md §4), in one place: which mean a task is
-- running, which are final, and which the task list can filter on. Pure data; the files that act
-- on a status (task.lua, planner.lua, polls.lua, listing.lua) read it from here.
local status = {}

--- The statuses the task list filters on (docs/protocol.md §6), in the service's order.
status.LISTED = { "PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN" }

--- A task is running (it holds one of the model's slots).
status.RUNNING = { ["PRE-PROCESSING"] = true, RUNNING = true, ["POST-PROCESSING"] = true }

--- A task has ended: nothing about it changes any more.
status.TERMINAL = { SUCCEEDED = true, FAILED = true, CANCELED = true, UNKNOWN = true }

return status
