-- How the checker reads and shows the values it is given: the one quoting of a value in a misuse
-- message (the same on every Lua version), and integral numbers as integers. Pure functions.
local values = {}

local tointeger = math.tointeger

--- Quotes a string the same way on every Lua version (5.1's %q leaves control bytes raw).
local ESCAPES = { ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t", ['"'] = '\\"', ["\\"] = "\\\\" }
local function quote(s)
  return '"' .. s:gsub('[%c"\\]', function(c) return ESCAPES[c] or ("\\%d"):format(c:byte()) end) .. '"'
end

--- A value as a message shows it: strings quoted and cut at 40 bytes, numbers alike on every Lua,
--- a short array of numbers in braces, anything else as its type; a secret rule's value never.
local show
function show(value, rule)
  if rule and rule.secret then
    return "a " .. type(value)
  end
  if type(value) == "string" then
    local s = value
    if #s > 40 then s = s:sub(1, 37) .. "..." end
    return quote(s)
  end
  if type(value) == "number" then
    -- integral values print alike on 5.1 ("30") and 5.3+ (which would say "30.0")
    if value == math.floor(value) and math.abs(value) < 2 ^ 53 then
      return ("%d"):format(value)
    end
    return ("%.14g"):format(value)
  end
  if type(value) == "boolean" or value == nil then
    return tostring(value)
  end
  if type(value) == "table" and #value > 0 and #value <= 8 then -- a short array, e.g. a box
    local items = {}
    for i = 1, #value do
      local v = value[i]
      items[i] = (type(v) == "number" or type(v) == "boolean") and show(v) or "a " .. type(v)
    end
    return "{" .. table.concat(items, ", ") .. "}"
  end
  return "a " .. type(value)
end

--- `v` as an integer when it is a finite integral number, else nil.
local function as_integer(v)
  if type(v) ~= "number" or v ~= v or v == math.huge or v == -math.huge then
    return nil
  end
  if tointeger then
    return tointeger(v)
  end
  return v == math.floor(v) and v or nil
end

values.show, values.as_integer, values.quote = show, as_integer, quote

return values
