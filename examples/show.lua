-- Shared by the example scripts: follow one task to its end, printing each status change and the
-- final result table. Not part of the module; copy what you like.
local show = {}

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  return keys
end

--- Pretty-prints a Lua value as a Lua table constructor.
function show.dump(value, indent)
  indent = indent or ""
  if type(value) ~= "table" then
    return type(value) == "string" and string.format("%q", value) or tostring(value)
  end
  local lines = { "{" }
  for _, k in ipairs(sorted_keys(value)) do
    local key = type(k) == "string" and k:match("^[%a_][%w_]*$") and k or "[" .. show.dump(k) .. "]"
    lines[#lines + 1] = indent .. "  " .. key .. " = " .. show.dump(value[k], indent .. "  ") .. ","
  end
  lines[#lines + 1] = indent .. "}"
  return table.concat(lines, "\n")
end

--- Waits for `task` (as returned by a model call, with its err), printing as it goes.
--- Returns the result, or exits the script with status 1 on any failure.
function show.follow(task, err)
  if not task then
    io.stderr:write("submit failed: ", tostring(err), "\n")
    os.exit(1)
  end
  print(("submitted %s task %s"):format(task.model, task.id))
  local started = os.time()
  local result, werr = task:wait {
    on_status = function(_, status)
      print(("  %-16s after %ds"):format(status, os.time() - started))
    end,
  }
  if not result then
    io.stderr:write("task failed: ", tostring(werr), "\n")
    os.exit(1)
  end
  print("result = " .. show.dump(result))
  return result
end

--- The argument `i`, or the default, or a usage error when neither is there.
function show.arg(i, default, usage)
  local value = arg[i] or default
  if not value then
    io.stderr:write("usage: ", usage, "\n")
    os.exit(2)
  end
  return value
end

--- A media argument for a url field: an http(s):// or oss:// URL as it is, anything else the
--- user's own local file, marked as one (dashscope.file checks it now; the client uploads it).
--- A url field never reads a path by itself: text from elsewhere must not name server files.
function show.media(value)
  if value:find("^https?://") or value:find("^oss://") then
    return value
  end
  return require("dashscope").file(value)
end

return show
