-- Reads a log that holds busted's JSON output (-o json) among other lines, prints each failure and
-- error, and closes with the line "N passed, N failed" (", N skipped" when some were pending).
-- Exits 0 only when busted's JSON was found and nothing failed.
local cjson = require("cjson")

local path = assert(arg[1], "usage: busted-summary.lua LOG")
local report
for line in io.lines(path) do
  if line:find('^{"pendings":') or line:find('^{.*"successes":') then
    local ok, value = pcall(cjson.decode, line)
    if ok then report = value end
  end
end
if not report then
  print("no busted JSON report found in " .. path)
  print("0 passed, 1 failed")
  os.exit(1)
end

local function show(kind, list)
  for _, item in ipairs(list) do
    local trace = item.trace or {}
    print(("%s: %s\n  %s:%s\n  %s"):format(kind, item.name or "?", trace.short_src or "?",
      trace.currentline or "?", tostring(item.message):gsub("\n", "\n  ")))
  end
end
show("FAILED", report.failures)
show("ERROR", report.errors)

local failed = #report.failures + #report.errors
local line = ("%d passed, %d failed"):format(#report.successes, failed)
if #report.pendings > 0 then
  line = line .. (", %d skipped"):format(#report.pendings)
end
print(line)
os.exit(failed == 0 and 0 or 1)
