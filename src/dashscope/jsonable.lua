-- Whether a Lua value can be sent as JSON as it is: the check client:submit runs on the tables it
-- sends as given (check.jsonable raises with its answer). Read raw, as the encoder (lua-cjson)
-- reads it, so that what is checked is what is sent.
local values = require("dashscope.values")

local jsonable = {}

local show, as_integer = values.show, values.as_integer

-- How deep a value sent as JSON may nest (the value itself is level 1): json.lua's bound, so that
-- what passes the check also encodes. Checked before anything deeper is looked at, so a hostile
-- 100,000-level table is refused at once instead of walked.
jsonable.DEPTH = require("dashscope.json").DEPTH

-- Metamethods that make a walk through pairs, # or indexing see other than what the table holds.
-- The encoder (lua-cjson) reads the raw table, so a proxy would be checked as one thing and sent
-- as another (an empty object): refused instead, on every interpreter alike (5.1 and LuaJIT
-- ignore __pairs, so copying through pairs would not mean the same everywhere).
local PROXY = { "__index", "__pairs", "__ipairs", "__len" }
local getmetatable_raw = debug and debug.getmetatable or getmetatable -- past a __metatable field

-- A path for messages: long ones (deep nesting) keep their two ends.
local function shown_path(path)
  if #path <= 80 then return path end
  return path:sub(1, 48) .. "..." .. path:sub(-28)
end

-- True when a Lua value can be encoded as JSON without surprises: strings, finite numbers,
-- booleans, and plain tables (no proxy metatable) that are either arrays 1..n without holes or
-- have only string keys, nested at most jsonable.DEPTH levels; no cycles. Read raw, as the encoder
-- reads it. Else false and why.
local function walk(v, path, seen, depth)
  local t = type(v)
  if t == "string" or t == "boolean" then
    return true
  elseif t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then
      return false, shown_path(path) .. " is not a finite number"
    end
    return true
  elseif t ~= "table" then
    return false, shown_path(path) .. " is a " .. t .. ", which JSON cannot carry"
  end
  if depth > jsonable.DEPTH then
    return false, shown_path(path) .. " is nested deeper than " .. jsonable.DEPTH .. " levels"
  end
  local mt = getmetatable_raw(v)
  if type(mt) == "table" and rawget(mt, "__name") == "dashscope.LocalFile" then -- dashscope.file
    return false, shown_path(path) .. " is a dashscope.file: only a top-level field of input takes one"
      .. " (anywhere else it would go out as a JSON object)"
  end
  if mt ~= nil then
    for _, name in ipairs(PROXY) do
      if type(mt) ~= "table" or rawget(mt, name) ~= nil then
        return false, shown_path(path) .. " has a metatable with " .. name .. "; pass a plain table"
          .. " (what is sent is what the table itself holds)"
      end
    end
  end
  if seen[v] then
    return false, shown_path(path) .. " refers back to itself"
  end
  seen[v] = true
  local strings, count, items, last = 0, 0, 0, 0
  for k in next, v do
    count = count + 1
    if type(k) == "string" then
      strings = strings + 1
    elseif type(k) == "number" and as_integer(k) and k >= 1 then
      items, last = items + 1, math.max(last, k)
    else
      return false, shown_path(path) .. " has a key " .. show(k) .. " that is neither a string nor an array index"
    end
  end
  if strings > 0 and strings < count then
    return false, shown_path(path) .. " mixes array items and string keys"
  end
  if items ~= last then
    return false, shown_path(path) .. " is an array with holes (nil items); JSON arrays cannot skip an index"
  end
  for k, item in next, v do
    local ok, why = walk(item, path .. (type(k) == "string" and "." .. k or "[" .. show(k) .. "]"), seen, depth + 1)
    if not ok then
      return false, why
    end
  end
  seen[v] = nil
  return true
end

--- True when `value` (named `name` in messages) is JSON-able, else false and why.
function jsonable.check(value, name)
  return walk(value, name, {}, 1)
end

return jsonable
