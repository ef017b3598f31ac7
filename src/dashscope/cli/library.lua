-- The CLI's calls into the module, and what a misuse becomes: a usage error (exit 2) that says
-- which option gave the field at fault. A misuse is read as data (dashscope.is_misuse: its what,
-- field, rule and message), never by its text; anything else the module raises is a bug, and goes
-- on up. Failures of the service come back as `nil, err`, as the module returns them.
local dashscope = require("dashscope")
local args = require("dashscope.cli.args")
local text = require("dashscope.cli.text")

local library = {}

local unpack = table.unpack or unpack

local function pack(...)
  return { n = select("#", ...), ... }
end

local NO_KEY = "no API key found: set DASHSCOPE_API_KEY, give --api-key-file PATH, or put the key in "
  .. "the file named by DASHSCOPE_API_KEY_FILE_PATH or in ~/.dashscope/api_key"

-- The usage error for misuse `m` in the run `ctx`: the message, then the option that gave the
-- field (with a box shown as it was typed).
local function misuse_usage(ctx, m)
  if m.field == "api_key" and m.rule == "required" then
    args.usage(NO_KEY, ctx.command)
  end
  local e, field = m.message, m.field
  local raw = field and ctx.raw and ctx.raw[field]
  if raw then
    e = e:gsub("%(got a table%)$", "(got '" .. raw.text:gsub("%%", "%%%%") .. "')")
         .. "\n  (from " .. raw.option .. ")"
  elseif field and ctx.options_of and ctx.options_of[field] then
    e = e .. "\n  (option --" .. ctx.options_of[field] .. ")"
  end
  args.usage(e, ctx.command)
end

--- fn(...) for the run `ctx`: its results; a misuse becomes a usage error.
function library.call(ctx, fn, ...)
  local results = pack(pcall(fn, ...))
  if results[1] then
    return unpack(results, 2, results.n)
  end
  local m = results[2]
  if not dashscope.is_misuse(m) then
    error(m, 0)
  end
  misuse_usage(ctx, m)
end

--- A client for the run's global options: the module reads the key file (--api-key-file).
--- `extra`: more options (the batch's `sleep`).
function library.client(ctx, extra)
  local opts = { user_agent = text.PROG .. "-cli" }
  for k, v in pairs(extra or {}) do opts[k] = v end
  if ctx.opts.base_url then opts.base_url = ctx.opts.base_url end
  if ctx.opts.api_key_file then opts.api_key_file = ctx.opts.api_key_file end
  if ctx.opts.quota then opts.quota = ctx.opts.quota end
  -- a quota store that fails (or is back) is said on stderr, also with -q: it is not progress
  opts.on_warning = function(message) io.stderr:write(text.PROG, ": warning: ", message, "\n") end
  return library.call(ctx, dashscope.new, opts)
end

return library
