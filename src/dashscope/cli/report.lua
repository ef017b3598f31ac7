-- What the user sees on stderr, and a failure's JSON object on stdout. On a terminal, one status
-- line redrawn in place ("\r", then clear to the end of the line) below the lasting lines;
-- elsewhere (a pipe, a log file) only the lasting lines, one per event. --quiet shows nothing but
-- errors. What a command prints as its result on stdout is the command's own (jobs.lua, tasks.lua).
local core = require("dashscope.core") -- isatty: mechanism only the C core has
local text = require("dashscope.cli.text")

local report = {}

local CLEAR = "\27[K"
local SPINNER = { "|", "/", "-", "\\" }

local Reporter = {}
Reporter.__index = Reporter
local active -- the reporter in use, whose live line an error message must first take away

-- The terminal's width: $COLUMNS when the shell exports it, else what stty says, else 80.
local function columns()
  local n = tonumber(os.getenv("COLUMNS") or "")
  if not n then
    local p = io.popen("stty size 2>/dev/null </dev/tty")
    n = p and tonumber((p:read("*a") or ""):match("^%d+ (%d+)"))
    if p then p:close() end
  end
  return (n and n > 0) and n or 80
end

--- A reporter for this run (the one in use from now on); `quiet` shows nothing but errors; `live`
--- (default: whether stderr is a terminal) draws the live line.
function report.new(quiet, live)
  if live == nil then live = core.isatty(2) end
  live = not quiet and live
  active = setmetatable({
    quiet = quiet, live = live, width = live and math.max(columns() - 1, 20) or 79, shown = nil, turn = 0,
  }, Reporter)
  return active
end

--- Takes the live line of the reporter in use away, if any (before an error or a signal's words).
function report.clear_active()
  if active then active:clear() end
end

--- A lasting line: above the live line on a terminal, a plain line elsewhere.
function Reporter:say(line)
  if self.quiet then return end
  if self.live then
    io.stderr:write("\r", line, CLEAR, "\n")
    if self.shown then io.stderr:write(self.shown) end
  else
    io.stderr:write(line, "\n")
  end
  io.stderr:flush()
end

--- The live line (terminal only), with a spinner that turns at each redraw; cut to the terminal's
--- width, since a wrapped line cannot be redrawn with "\r".
function Reporter:show(line)
  if not self.live then return end
  self.turn = self.turn % #SPINNER + 1
  line = SPINNER[self.turn] .. " " .. line
  if #line > self.width then line = line:sub(1, self.width) end
  self.shown = line
  io.stderr:write("\r", line, CLEAR)
  io.stderr:flush()
end

--- Takes the live line away, before anything else is printed.
function Reporter:clear()
  if self.shown then
    io.stderr:write("\r", CLEAR)
    io.stderr:flush()
    self.shown = nil
  end
end

--- "dashscope: TEXT" on stderr.
function report.complain(line)
  io.stderr:write(text.PROG, ": ", line, "\n")
end

--- An error: always shown, the live line taken away first.
function Reporter:fail(line)
  self:clear()
  report.complain(line)
end

--- A failure of the world (exit 3 or 4): said on stderr (`line`, else the error's own words), and
--- with --json also as one JSON object on stdout. `reporter` may be nil (no progress was shown).
function report.failure(ctx, reporter, err, line)
  line = line or text.error(err)
  if reporter then reporter:fail(line) else report.complain(line) end
  if ctx.opts.json then print(text.error_json(err)) end
end

return report
