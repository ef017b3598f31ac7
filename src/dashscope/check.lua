-- The one checker: validates a flat Lua table against a contract (a list of field rules, see
-- models.lua and config.lua) and returns the values sorted into their places. Every misuse raises a
-- Lua error that names the field and the rule, before anything is sent; an unknown field suggests
-- the nearest known name.
--
-- A rule: { name = "video_fps", type = "integer", min = 15, max = 30, where = "parameters",
--           required = true, values = {...} (enum), default = ... (documentation only),
--           secret = true (never echo the value), allow_empty = true (url/string may be "") }
local localfile = require("dashscope.localfile")
local misuse = require("dashscope.misuse")
local jsonable = require("dashscope.jsonable")
local values = require("dashscope.values")

local check = {}


-- Edit distance, for "did you mean". Names are short, so the plain O(n*m) table is fine.
local function distance(a, b)
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = { [0] = i }
    for j = 1, #b do
      local cost = a:byte(i) == b:byte(j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev = cur
  end
  return prev[#b]
end

--- The candidate nearest to `word` (case-insensitive), if near enough to be a likely typo.
function check.nearest(word, candidates)
  word = tostring(word):lower()
  local best, best_d
  for _, c in ipairs(candidates) do
    local d = distance(word, c:lower())
    if c:lower():find(word, 1, true) or word:find(c:lower(), 1, true) then
      d = math.min(d, 2)
    end
    if not best_d or d < best_d then
      best, best_d = c, d
    end
  end
  if best and best_d <= math.max(2, math.floor(#word / 3)) then
    return best
  end
  return nil
end

local show, as_integer, quote = values.show, values.as_integer, values.quote

local function in_range(v, rule)
  return (rule.min == nil or v >= rule.min) and (rule.max == nil or v <= rule.max)
end

--- A rule's range in words (" from 15 to 30"), or "".
function check.range_text(rule)
  if rule.min and rule.max then
    return " from " .. rule.min .. " to " .. rule.max
  elseif rule.min then
    return " of at least " .. rule.min
  elseif rule.max then
    return " of at most " .. rule.max
  end
  return ""
end
local range_text = check.range_text

local URL_SCHEMES = { "^https?://[^/%s]", "^oss://[^%s]" }

-- Each type: a function(value, rule) returning the normalised value, or nil and what it must be.
local types = {}

--- True when `text` may go into an HTTP header line: no CR, LF or NUL (the one rule; the C
--- transport checks every header again before libcurl sees it).
function check.header_safe(text)
  return not text:find("[%z\r\n]")
end

function types.string(v, rule)
  if type(v) ~= "string" then
    return nil, "must be a string"
  end
  if v == "" and not rule.allow_empty then
    return nil, "must not be empty"
  end
  if rule.header and not check.header_safe(v) then
    return nil, "must not contain CR, LF or NUL (it goes into an HTTP header)"
  end
  return v
end

-- A url field takes a remote reference, never a path: a string is an http://, https:// or oss://
-- URL (or "" where the rule allows it), whatever else it looks like, since url fields are where
-- text from outside (a web form, a queue) lands. A local file enters only as dashscope.file(path),
-- a files.LocalFile checked when it was made, which the client uploads (files.lua).
local URL_RULE = "must be an http://, https:// or oss:// URL; pass a local file as dashscope.file(path)"
function types.url(v, rule)
  if localfile.is(v) then
    return v
  end
  if type(v) ~= "string" then
    return nil, URL_RULE
  end
  if v == "" and rule.allow_empty then
    return v
  end
  for _, pattern in ipairs(URL_SCHEMES) do
    if v:find(pattern) then
      return v
    end
  end
  return nil, URL_RULE
end

function types.boolean(v)
  if type(v) ~= "boolean" then
    return nil, "must be a boolean (true or false)"
  end
  return v
end

-- Numbers are finite (NaN and the infinities are refused everywhere: a NaN compares false with
-- every bound, an infinity means "never"), and within the rule's range.
function types.integer(v, rule)
  local i = as_integer(v)
  if i == nil or not in_range(i, rule) then
    return nil, "must be an integer" .. range_text(rule)
  end
  return i
end

function types.number(v, rule)
  if type(v) ~= "number" or v ~= v or v == math.huge or v == -math.huge or not in_range(v, rule) then
    -- a range already excludes NaN and the infinities, in words every reader knows
    return nil, (rule.min or rule.max) and "must be a number" .. range_text(rule) or "must be a finite number"
  end
  return as_integer(v) or v
end

function types.enum(v, rule)
  for _, allowed in ipairs(rule.values) do
    if v == allowed then
      return v
    end
  end
  local hint = type(v) == "string" and check.nearest(v, rule.values)
  local text = "must be one of " .. table.concat(rule.values, ", ")
  if #rule.values > 8 then
    text = "must be one of the " .. #rule.values .. " documented values"
  end
  if hint then
    text = text .. " (did you mean " .. quote(hint) .. "?)"
  elseif #rule.values > 8 then
    text = text .. ": " .. table.concat(rule.values, ", ")
  end
  return nil, text
end

-- A box [x1, y1, x2, y2] of pixel coordinates: four non-negative integers, x1 < x2 and y1 < y2.
function types.bbox(v)
  local rule_text = "must be an array of 4 integers {x1, y1, x2, y2} with 0 <= x1 < x2 and 0 <= y1 < y2"
  if type(v) ~= "table" then
    return nil, rule_text
  end
  local n = 0
  for _ in pairs(v) do n = n + 1 end
  if n ~= 4 then
    return nil, rule_text
  end
  local box = {}
  for i = 1, 4 do
    box[i] = as_integer(v[i])
    if box[i] == nil or box[i] < 0 then
      return nil, rule_text
    end
  end
  if not (box[1] < box[3] and box[2] < box[4]) then
    return nil, rule_text
  end
  return box
end

-- A time for the task list's filters (docs/protocol.md §6): "YYYYMMDDhhmmss" in the service's time
-- (Beijing, UTC+8), or epoch seconds (os.time()), converted to that.
function types.time(v)
  if type(v) == "string" and v:find("^%d%d%d%d%d%d%d%d%d%d%d%d%d%d$") then
    return v
  end
  if type(v) == "number" and v >= 0 and v < 2 ^ 40 then
    return os.date("!%Y%m%d%H%M%S", math.floor(v) + 8 * 3600)
  end
  return nil, 'must be "YYYYMMDDhhmmss" (Beijing time) or epoch seconds'
end

types["function"] = function(v)
  if type(v) ~= "function" then
    return nil, "must be a function"
  end
  return v
end

-- Quotas: false (none), true (the defaults), or { submit = { [model] = rate }, tasks = rate }.
-- A rate is a finite number of requests per second within RATE: NaN or 0 would mean "no limit"
-- or "never", an infinity or 1e-300 a client that never sends.
local RATE = { min = 0.001, max = 1000000 }
function types.rate_limits(v)
  local must = "must be false, true or { submit = { [model] = per second }, tasks = per second }"
  local function rate_ok(x)
    return type(x) == "number" and x == x and x ~= math.huge and in_range(x, RATE)
  end
  local rate_must = " with rates that are finite numbers" .. range_text(RATE)
  if type(v) == "boolean" then
    return v
  end
  if type(v) ~= "table" then
    return nil, must
  end
  for k, x in pairs(v) do
    if k == "tasks" then
      if not rate_ok(x) then return nil, must .. rate_must .. " (tasks = " .. show(x) .. ")" end
    elseif k == "submit" and type(x) == "table" then
      for model, rate in pairs(x) do
        if type(model) ~= "string" then return nil, must end
        if not rate_ok(rate) then
          return nil, must .. rate_must .. " (submit[" .. quote(model) .. "] = " .. show(rate) .. ")"
        end
      end
    else
      return nil, must
    end
  end
  return v
end

-- A quota store (quota.lua): false (none), a Redis URL (quota_redis.lua parses it), or an
-- OpenResty shared dict (a table with the dict's methods: ngx.shared.NAME).
local SHDICT_METHODS = { "add", "get", "set", "delete" }
function check.quota_store(v)
  if v == false then return false end
  if type(v) == "string" then
    local ok, why = require("dashscope.quota_redis").parse(v)
    if not ok then return nil, why end
    return v
  end
  if type(v) == "table" then
    for _, name in ipairs(SHDICT_METHODS) do
      if type(v[name]) ~= "function" then
        return nil, "must be a Redis URL or a shared dict (ngx.shared.NAME); this table has no " .. name .. " method"
      end
    end
    return v
  end
  return nil, 'must be false, a Redis URL ("redis://host:port/db") or a shared dict (ngx.shared.NAME)'
end
types.quota_store = check.quota_store

--- The one closed-client guard: raises unless `client` is open. `what` is the method as the user
--- wrote it ("client:step", "task:poll").
function check.open(client, what)
  if client._closed then
    misuse.closed(what)
  end
end

--- Raises the standard misuse (misuse.lua): "what: text", about `field` when one is at fault. The
--- position is found by misuse.lua (the user's line), so no level is passed.
function check.fail(what, text, field, rule)
  misuse.raise(what, text, field, rule)
end

local function names_of(contract)
  local names = {}
  for _, rule in ipairs(contract) do
    names[#names + 1] = rule.name
  end
  return names
end

-- Each contract's rules by name, made once: a contract is data, fixed once written (models.lua,
-- config.OPTIONS, the task filter), and every submit and every wait checks one. Weak: a contract
-- made on the fly goes with its table.
local by_contract = setmetatable({}, { __mode = "k" })
local function rules_by_name(contract)
  local by_name = by_contract[contract]
  if not by_name then
    by_name = {}
    for _, rule in ipairs(contract) do
      by_name[rule.name] = rule
    end
    by_contract[contract] = by_name
  end
  return by_name
end

--- Checks `given` (a flat table) against `contract`. Returns a table of places: values whose rule
--- has `where` go into out[where][name]; the others into out[name]. `what` prefixes messages
--- ("dashscope.new", "videoretalk").
function check.fields(contract, given, what)
  if type(given) ~= "table" then
    check.fail(what, "expects a table of fields, got " .. show(given))
  end
  local by_name = rules_by_name(contract)
  for key in pairs(given) do
    if not by_name[key] then
      local hint = type(key) == "string" and check.nearest(key, names_of(contract))
      local text = "unknown field " .. show(key)
      if hint then
        text = text .. " (did you mean '" .. hint .. "'?)"
      else
        text = text .. "; known fields: " .. table.concat(names_of(contract), ", ")
      end
      check.fail(what, text, type(key) == "string" and key or nil, "unknown")
    end
  end
  local out = {}
  for _, rule in ipairs(contract) do
    local value = given[rule.name]
    if value == nil then
      if rule.required then
        check.fail(what, "field '" .. rule.name .. "' is required", rule.name, "required")
      end
    else
      local ok, must = types[rule.type](value, rule)
      if ok == nil then
        check.fail(what, "field '" .. rule.name .. "' " .. must .. " (got " .. show(value, rule) .. ")", rule.name)
      end
      if rule.where then
        out[rule.where] = out[rule.where] or {}
        out[rule.where][rule.name] = ok
      else
        out[rule.name] = ok
      end
    end
  end
  return out
end

--- Raises unless `value` (named `name`) is JSON-able (jsonable.lua).
function check.jsonable(value, name, what)
  local ok, why = jsonable.check(value, name)
  if not ok then
    check.fail(what, why, name)
  end
end

return check
