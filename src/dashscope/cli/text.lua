-- The CLI's words: numbers, durations, sizes, wrapped paragraphs, JSON and shell words, as the user
-- reads them. Pure functions of their arguments; printing is report.lua's, the options' wording
-- args.lua's and help.lua's.
local json = require("dashscope.json") -- the library's encoder: one private cjson instance

local text = {}

--- The program's name, as the user types it.
text.PROG = "dashscope"

function text.sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

--- `prefix` then the words of `body`, on lines of at most `width` columns; the lines after the
--- first are indented as far as the prefix reaches.
function text.wrap(prefix, body, width)
  local indent = string.rep(" ", #prefix)
  local lines, line, fresh = {}, prefix, true
  for word in body:gmatch("%S+") do
    if not fresh and #line + 1 + #word > width then
      lines[#lines + 1] = line
      line = indent .. word
    else
      line = fresh and line .. word or line .. " " .. word
    end
    fresh = false
  end
  lines[#lines + 1] = line
  return table.concat(lines, "\n")
end

--- "12.3 s", "4 min 05 s", "2 h", "1 h 30 min".
function text.seconds(s)
  if s < 60 then
    return string.format("%.1f s", s)
  end
  local m = math.floor(s / 60)
  if m < 60 then
    return string.format("%d min %02d s", m, math.floor(s - 60 * m))
  end
  local h = math.floor(m / 60)
  return m % 60 == 0 and string.format("%d h", h) or string.format("%d h %02d min", h, m % 60)
end

--- "512 B", "1.5 MiB".
function text.bytes(n)
  if n < 1024 then
    return string.format("%.0f B", n)
  end
  local units, u = { "KiB", "MiB", "GiB", "TiB" }, 0
  repeat
    n, u = n / 1024, u + 1
  until n < 1024 or u == #units
  return string.format("%.1f %s", n, units[u])
end

--- A number shown as written: 30, not 30.0 (Lua 5.3+), and a list of them for a box ("1,2,3,4").
function text.value(v)
  if type(v) == "number" and v == math.floor(v) and math.abs(v) < 2 ^ 53 then
    return string.format("%d", v)
  elseif type(v) == "table" then
    local parts = {}
    for i, x in ipairs(v) do parts[i] = text.value(x) end
    return table.concat(parts, ",")
  end
  return tostring(v)
end

--- An error value of the module prints itself (code, message, HTTP status, request id); a table of
--- our own is read field by field.
function text.error(err)
  local mt = getmetatable(err)
  if type(err) == "table" and not (mt and mt.__tostring) then
    return tostring(err.code or "Error") .. ": " .. tostring(err.message or "")
  end
  return tostring(err)
end

--- lua-cjson escapes every "/" as "\/": valid, but URLs read badly. Every "\/" in its output is
--- such an escape (a backslash in a string comes out as "\\" and a slash always as "\/"), so this
--- undoes exactly those.
function text.json(value)
  return (json.encode(value):gsub("\\/", "/"))
end

--- What --json prints on stdout for a failure: one object, always with the same keys (null when
--- unknown), from an error value of the module or a table of our own. The module's messages are
--- scrubbed of the key before they reach us.
function text.error_json(err)
  local e = type(err) == "table" and err or { message = tostring(err) }
  local function field(v)
    if type(v) == "string" or type(v) == "number" then return v end
    return json.null
  end
  return text.json { code = field(e.code or "Error"), message = field(e.message), status = field(e.status),
                     request_id = field(e.request_id), task_id = field(e.task_id) }
end

--- A word for a POSIX shell, quoted when it needs to be.
local function shell_word(w)
  w = tostring(w)
  if w:find("^[%w%-_./:=@,+]+$") then return w end
  return "'" .. w:gsub("'", "'\\''") .. "'"
end

--- The command that does `words` again with this run's global options (--base-url,
--- --api-key-file, --quota-store): `opts` are the run's options.
function text.again(opts, words)
  local out = { text.PROG }
  for _, w in ipairs(words) do out[#out + 1] = shell_word(w) end
  if opts.base_url then out[#out + 1] = "--base-url " .. shell_word(opts.base_url) end
  if opts.api_key_file then out[#out + 1] = "--api-key-file " .. shell_word(opts.api_key_file) end
  -- a store URL with a password is not printed (DASHSCOPE_QUOTA_STORE is the way to pass one)
  if opts.quota and not opts.quota:find("@", 1, true) then
    out[#out + 1] = "--quota-store " .. shell_word(opts.quota)
  end
  return table.concat(out, " ")
end

function text.task_name(task)
  return "task " .. task.id
end

return text
