-- A binary min-heap on `at` of entries { at, task }: the next asks of a lane (planner.lua), the
-- deadlines of the calls waiting for a slot on the wire (calls.lua). Pure: an entry going stale is
-- its user's business (each drops them as they reach the top).
local heap = {}

--- Adds an entry for `task` at `at`.
function heap.push(h, at, task)
  local i = #h + 1
  h[i] = { at = at, task = task }
  while i > 1 do
    local parent = math.floor(i / 2)
    if h[parent].at <= at then break end
    h[i], h[parent] = h[parent], h[i]
    i = parent
  end
end

--- Takes out the entry with the least `at` (the heap must not be empty).
function heap.pop(h)
  local n = #h
  local top, last = h[1], h[n]
  h[n] = nil
  n = n - 1
  if n == 0 then return top end
  h[1] = last
  local i = 1
  while true do
    local l, r, m = 2 * i, 2 * i + 1, i
    if l <= n and h[l].at < h[m].at then m = l end
    if r <= n and h[r].at < h[m].at then m = r end
    if m == i then break end
    h[i], h[m] = h[m], h[i]
    i = m
  end
  return top
end

return heap
