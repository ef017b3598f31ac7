-- A binary min-heap on `at` of entries { at, task }: the next asks of a lane (planner.lua), the
-- deadlines of the calls waiting for a slot on the wire (calls.lua). Pure: an entry going stale is
-- its user's business (each drops them as they reach the top).
--
-- Both operations move a hole rather than swap entries, and keep the moving entry's `at` in a
-- local: every ask and answer of every task goes through here (a fifth of the Lua work of a job,
-- bench/cost.lua), and a swap reads and writes each entry twice.
local heap = {}

local floor = math.floor

--- Adds an entry for `task` at `at`.
function heap.push(h, at, task)
  local i = #h + 1
  while i > 1 do
    local parent = floor(i / 2)
    local above = h[parent]
    if above.at <= at then break end
    h[i] = above
    i = parent
  end
  h[i] = { at = at, task = task }
end

--- Takes out the entry with the least `at` (the heap must not be empty).
function heap.pop(h)
  local n = #h
  local top, last = h[1], h[n]
  h[n] = nil
  n = n - 1
  if n == 0 then return top end
  local at, i = last.at, 1
  while true do
    local c = 2 * i
    if c > n then break end
    local child = h[c]
    if c < n and h[c + 1].at < child.at then
      c = c + 1
      child = h[c]
    end
    if child.at >= at then break end
    h[i] = child
    i = c
  end
  h[i] = last
  return top
end

return heap
