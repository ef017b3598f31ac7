-- Reads a log that holds busted's JSON output (-o json) among other lines, prints each failure and
-- error, and closes with the line "N passed, N failed" (", N skipped" when some were pending).
-- `make test` runs the suite once per interpreter, each run after a line "== busted under NAME
-- (BUILD)": every JSON report in the log is counted, one line per run comes first, and the closing
-- line sums them all. A run that started but left no report counts as one failure.
-- Exits 0 only when busted's JSON was found and nothing failed.
local cjson = require("cjson")

local path = assert(arg[1], "usage: busted-summary.lua LOG")

local runs = {}     -- { name, report } in log order
local current       -- the run whose report is still to come
for line in io.lines(path) do
  local name = line:match("^== busted under (.+)$")
  if name then
    current = { name = name }
    runs[#runs + 1] = current
  elseif line:find('^{"pendings":') or line:find('^{.*"successes":') then
    local ok, value = pcall(cjson.decode, line)
    if ok and type(value) == "table" then
      if not current or current.report then -- a report without its own header line
        current = { name = "busted" }
        runs[#runs + 1] = current
      end
      current.report = value
    end
  end
end
if #runs == 0 then
  print("no busted JSON report found in " .. path)
  print("0 passed, 1 failed")
  os.exit(1)
end

local function show(run, kind, list)
  for _, item in ipairs(list or {}) do
    local trace = item.trace or {}
    print(("%s (%s): %s\n  %s:%s\n  %s"):format(kind, run.name, item.name or "?",
      trace.short_src or "?", trace.currentline or "?", (tostring(item.message):gsub("\n", "\n  "))))
  end
end

local function counts(passed, failed, skipped)
  local line = ("%d passed, %d failed"):format(passed, failed)
  if skipped > 0 then
    line = line .. (", %d skipped"):format(skipped)
  end
  return line
end

local passed, failed, skipped = 0, 0, 0
local lines = {}
for _, run in ipairs(runs) do
  local r = run.report
  local p, f, s
  if r then
    show(run, "FAILED", r.failures)
    show(run, "ERROR", r.errors)
    p, f, s = #(r.successes or {}), #(r.failures or {}) + #(r.errors or {}), #(r.pendings or {})
  else
    print(("ERROR (%s): busted left no JSON report (crashed or did not start)"):format(run.name))
    p, f, s = 0, 1, 0
  end
  passed, failed, skipped = passed + p, failed + f, skipped + s
  -- "busted under X:" and not "X:": only the closing line may read as a runner's summary
  lines[#lines + 1] = ("busted under %s: %s"):format(run.name, counts(p, f, s))
end
if #runs > 1 or runs[1].name ~= "busted" then
  for _, line in ipairs(lines) do print(line) end
end
print(counts(passed, failed, skipped))
os.exit(failed == 0 and 0 or 1)
