-- Misuse: the value every misuse of the library raises (a wrong argument, a closed client), as
-- opposed to the `nil, err` of a failure of the network or the service (errors.lua).
--
-- A misuse value carries what it is about as data, so that no one parses its text:
--   what     the function called, as the user wrote it ("liveportrait", "dashscope.new", "task:wait")
--   field    the field or option at fault ("video_fps", "api_key"), or nil
--   rule     "required", "unknown" (no such field), "invalid" (a value that breaks its rule),
--            "closed" (the client was closed) or "usage" (anything else: the call itself is wrong)
--   message  the text, "what: ...", without a position
--   where    the caller's "file:line: " (or "")
-- tostring gives where .. message, the string an error(message, level) would have raised; string
-- methods and `..` work on it as on that string (and # on 5.2+: 5.1 and LuaJIT ignore a table's
-- __len), so code written for string errors still runs.
--
-- The position is the first frame on the stack outside the library itself (its own files,
-- dashscope.lua and dashscope/*.lua; the CLI's dashscope/cli/*.lua counts as a caller): the user's
-- line, however deep inside the library the check ran. No level is threaded through calls.
local misuse = {}

local Misuse = { __name = "dashscope.Misuse" }

function Misuse:__tostring()
  return self.where .. self.message
end

function Misuse.__concat(a, b)
  return tostring(a) .. tostring(b)
end

function Misuse:__len()
  return #tostring(self)
end

Misuse.__index = function(self, key)
  local method = string[key]
  if type(method) == "function" then -- err:find(...), err:match(...): as on the string
    return function(_, ...) return method(tostring(self), ...) end
  end
  return nil
end

-- "@.../dashscope/" for this file's own directory, and the entry "@.../dashscope.lua".
local source = debug.getinfo(1, "S").source
local LIB_DIR = source:match("^(@.*[/\\])[^/\\]+$") or "@dashscope/"
local ENTRY = LIB_DIR:sub(1, -2) .. ".lua"

local function in_library(src)
  if src == ENTRY then return true end
  return src:sub(1, #LIB_DIR) == LIB_DIR and not src:find("[/\\]", #LIB_DIR + 1)
end

-- The first frame outside the library, as luaL_where shows it ("file:line: ", or "" for C).
local function where()
  local level = 2
  while true do
    local info = debug.getinfo(level, "Sl")
    if not info then return "" end
    if info.what == "C" or not in_library(info.source) then
      if info.currentline and info.currentline > 0 then
        return info.short_src .. ":" .. info.currentline .. ": "
      end
      return ""
    end
    level = level + 1
  end
end

local function throw(what, message, field, rule)
  error(setmetatable({ what = what, field = field, rule = rule, message = message, where = where() }, Misuse), 0)
end

--- Raises a misuse value: `what` names the function, `text` says what is wrong ("what: text").
--- `field` and `rule` as above (rule defaults to "invalid" with a field, "usage" without).
function misuse.raise(what, text, field, rule)
  throw(what, what .. ": " .. text, field, rule or (field and "invalid" or "usage"))
end

--- Raises the one closed-client misuse: `what` is the method as the user wrote it ("client:step").
function misuse.closed(what)
  throw(what, "dashscope: " .. what .. " on a closed client (client:close() was called)", nil, "closed")
end

--- Raises "call it with a colon": `method` of the client was called as client.method(...).
function misuse.colon(method)
  throw("client:" .. method, "dashscope: call " .. method .. " with a colon (client:" .. method .. "{...})",
    nil, "usage")
end

--- True for the values this file raises.
function misuse.is(value)
  return getmetatable(value) == Misuse
end

return misuse
