-- A batch's manifest, read as a stream: one job per line, JSON Lines (or CSV when the file's name
-- ends in .csv), each line checked as the client would check its job (dashscope.check), nothing
-- sent. Only a set of keys and outputs is kept (the duplicate check), never the lines, so a
-- manifest of any length reads in bounded memory. Running the jobs is batch.lua's; what the user
-- sees is batch_view.lua's.
--
--   JSON Lines: one object per line; blank lines and lines starting with "#" are skipped.
--   CSV (RFC 4180: quoted fields, "" escapes, CRLF or LF): a header row of column names; an empty
--   cell is an absent field; a cell converts to its field's type as the CLI's options do (args.lua).
--   Members: "model" (a model method or its id: liveportrait, emoji, emoji-v1; not a detector),
--   "output" (where the video goes, relative to the manifest's directory), "key" (the job's
--   identity in the journal; default: the output as written, else "line N"), and the model's fields.
--   A local file is a url field's "file:PATH" (PATH relative to the manifest's directory) or
--   "file:///ABSOLUTE/PATH" (a URL: %XX decoded), made dashscope.file(path) and checked at read; a
--   bare path in a url field stays a string, which the checker refuses, as the library does.
local dashscope = require("dashscope")
local args = require("dashscope.cli.args")
local cjson = require("cjson").new() -- a private instance: its settings are ours alone
cjson.decode_invalid_numbers(false) -- NaN, Infinity and hex are not JSON

local manifest = {}

local tointeger = math.tointeger
local RESERVED = { model = true, output = true, key = true }

-- A text quoted for a message: control bytes escaped (a line may hold anything), cut at 60 bytes.
local function quote(s)
  if #s > 60 then s = s:sub(1, 57) .. "..." end
  return '"' .. s:gsub('[%c"\\]', function(c) return ("\\%d"):format(c:byte()) end) .. '"'
end

-- Every name a line's "model" may give -> its method; the detectors' names (refused: a detector
-- answers at once and makes no video); each method's rules by field name and the CSV conversion
-- of each rule (args.field_option's, except url fields: a cell is never taken as a bare path).
local METHODS, DETECTORS, NAMES, KNOWN, RULES, CONVERT = {}, {}, {}, {}, {}, {}
for method, contract in pairs(dashscope.models) do
  local set = contract.synchronous and DETECTORS or METHODS
  set[method], set[contract.model] = method, method
  RULES[method] = {}
  for _, rule in ipairs(contract.fields) do
    RULES[method][rule.name] = rule
    CONVERT[rule] = rule.type ~= "url" and args.field_option(rule).convert or nil
  end
end
for name, method in pairs(METHODS) do
  KNOWN[#KNOWN + 1] = name
  if name == method then NAMES[#NAMES + 1] = name end
end
table.sort(NAMES)
table.sort(KNOWN)

-- What a bad line raises inside this file (caught by each(); never seen outside).
local Bad = {}

local function refuse(message, field, rule)
  error(setmetatable({ message = message, field = field, rule = rule }, Bad), 0)
end

-- The directory of `path` ("." when it has none) and `p` joined to it; "." and empty segments
-- dropped, so that "./out/a.mp4" and "out//a.mp4" name the same output.
local function dir_of(path)
  local dir = path:match("^(.*)/[^/]*$")
  if dir == nil then return "." end
  return dir == "" and "/" or dir
end

local function join(dir, p)
  local full = p:sub(1, 1) == "/" and p or dir .. "/" .. p
  local parts = {}
  for seg in full:gmatch("[^/]+") do
    if seg ~= "." then parts[#parts + 1] = seg end
  end
  local out = table.concat(parts, "/")
  if full:sub(1, 1) == "/" then return "/" .. out end
  return out == "" and "." or out
end

-- Integral numbers as integers (cjson decodes every number as a float on 5.3+; a CSV cell may say
-- "30.0"), in arrays too (a box), so that a job's fields are the same on every Lua.
local function integral(v)
  if type(v) == "number" and tointeger then
    return tointeger(v) or v
  elseif type(v) == "table" then
    for k, x in pairs(v) do v[k] = integral(x) end
  end
  return v
end

-- The method a line's "model" names, or refuses it.
local function method_of(model)
  if model == nil then
    refuse('no "model" (one of ' .. table.concat(NAMES, ", ") .. ")", "model", "required")
  end
  if type(model) ~= "string" then
    refuse('"model" must be a string (got a ' .. type(model) .. ")", "model", "invalid")
  end
  if METHODS[model] then return METHODS[model] end
  if DETECTORS[model] then
    refuse("model " .. quote(model) .. " is a detector, which makes no video: a batch runs "
      .. table.concat(NAMES, ", "), "model", "invalid")
  end
  local hint = dashscope.nearest(model, KNOWN)
  refuse("unknown model " .. quote(model) .. (hint and " (did you mean " .. quote(hint) .. "?)"
    or " (one of " .. table.concat(NAMES, ", ") .. ")"), "model", "unknown")
end

-- A string member ("output", "key") or nil; refuses another type, "" and NUL.
local function text_member(raw, name)
  local v = raw[name]
  if v == nil then return nil end
  if type(v) ~= "string" or v == "" or v:find("%z") then
    refuse('"' .. name .. '" must be a non-empty string without NUL (got '
      .. (type(v) == "string" and quote(v) or "a " .. type(v)) .. ")", name, "invalid")
  end
  return v
end

-- The line's output (resolved) and key, each new in this pass (`seen`: { keys = {}, outputs = {} },
-- text -> the line that had it first).
local function place(self, raw, line, seen)
  local output, key = text_member(raw, "output"), text_member(raw, "key")
  key = key or output or "line " .. line
  local path = output and join(self.dir, output)
  if path and seen.outputs[path] then
    refuse('output ' .. quote(output) .. ' is line ' .. seen.outputs[path] .. "'s output too",
      "output", "duplicate")
  end
  if seen.keys[key] then
    refuse("key " .. quote(key) .. " is line " .. seen.keys[key] .. "'s key too", "key", "duplicate")
  end
  if path then seen.outputs[path] = line end
  seen.keys[key] = line
  return path, key
end

local function unhex(h)
  return string.char(tonumber(h, 16))
end

-- A url field's "file:..." string: the LocalFile dashscope.file makes of it, or a refusal.
local function local_file(self, text, field)
  local path = text:sub(6)
  if text:sub(1, 7) == "file://" then -- a file URL (RFC 8089): an absolute path, %XX decoded
    path = text:sub(8):gsub("^localhost/", "/")
    if path:sub(1, 1) ~= "/" then
      refuse("field '" .. field .. "': " .. quote(text) .. ' names a host: write "file:PATH" (relative '
        .. 'to the manifest) or "file:///ABSOLUTE/PATH"', field, "invalid")
    end
    path = path:gsub("%%(%x%x)", unhex)
  end
  if path == "" then
    refuse("field '" .. field .. "': " .. quote(text) .. " names no file", field, "invalid")
  end
  local ok, file = pcall(dashscope.file, join(self.dir, path))
  if not ok then
    if not dashscope.is_misuse(file) then error(file, 0) end
    refuse("field '" .. field .. "' (" .. quote(text) .. "): " .. file.message:gsub("^dashscope%.file: ", ""),
      field, file.rule)
  end
  return file
end

-- A member's value as the method's field: a CSV cell converted to its rule's type, a url field's
-- "file:" string made a LocalFile, integral numbers integers.
local function field_value(self, method, name, value, from_csv)
  local rule = RULES[method][name]
  if rule and rule.type == "url" and type(value) == "string" and value:sub(1, 5) == "file:" then
    return local_file(self, value, name)
  end
  if from_csv and rule and CONVERT[rule] then
    value = CONVERT[rule](value, name)
  end
  return integral(value)
end

-- Checks the fields as client[method] would; a misuse becomes a refusal naming its field and rule.
local function check_fields(method, fields)
  local ok, e = pcall(dashscope.check, method, fields)
  if ok then return end
  if not dashscope.is_misuse(e) then error(e, 0) end
  local message = e.message
  local rule = e.field and RULES[method][e.field]
  if rule and rule.type == "url" and type(fields[e.field]) == "string" then
    message = message .. '; in a manifest a local file is "file:PATH", relative to the manifest'
  end
  refuse(message, e.field, e.rule)
end

-- The entry of one line's members (`raw`: name -> value, absent ones left out), or a refusal.
local function job_of(self, raw, line, seen, from_csv)
  local method = method_of(raw.model)
  local output, key = place(self, raw, line, seen)
  local fields = {}
  for name, value in pairs(raw) do
    if not RESERVED[name] then
      fields[name] = field_value(self, method, name, value, from_csv)
    end
  end
  check_fields(method, fields)
  return { line = line, key = key, method = method, fields = fields, output = output }
end

-- The next physical line of the file, its number counted in `pos`, its line end (LF or CRLF)
-- and, on the first line, a UTF-8 byte-order mark dropped; nil at the end.
local function read_line(self, pos)
  local s = self.file:read("*l")
  if s == nil then return nil end
  pos.line = pos.line + 1
  if pos.line == 1 then s = s:gsub("^\239\187\191", "") end
  return (s:gsub("\r$", ""))
end

-- JSON Lines: the next job line as (line, members), or (line, nil, why); nil at the end.
local function json_reader(self, pos)
  return function()
    while true do
      local s = read_line(self, pos)
      if s == nil then return nil end
      local first = s:match("^%s*(.)")
      if first == "{" then
        local ok, obj = pcall(cjson.decode, s)
        if not ok then return pos.line, nil, "not valid JSON: " .. tostring(obj) end
        for name, v in pairs(obj) do
          if v == cjson.null then obj[name] = nil end -- null: absent, as an empty CSV cell
        end
        return pos.line, obj
      elseif first and first ~= "#" then
        return pos.line, nil, "not a JSON object (each job is one {...} on its line)"
      end
    end
  end
end

-- One CSV record from its first line `s` (the lines after it read by `more`, for a quoted field
-- that holds a line break): its cells, or nil and why.
local function csv_record(s, more)
  local cells, i = {}, 1
  while true do
    if s:sub(i, i) == '"' then
      local buf = {}
      i = i + 1
      while true do
        local q = s:find('"', i, true)
        if not q then
          buf[#buf + 1] = s:sub(i) .. "\n"
          s, i = more(), 1
          if s == nil then return nil, "a quoted field is not closed" end
        elseif s:sub(q + 1, q + 1) == '"' then
          buf[#buf + 1], i = s:sub(i, q), q + 2
        else
          buf[#buf + 1], i = s:sub(i, q - 1), q + 1
          break
        end
      end
      cells[#cells + 1] = table.concat(buf)
      local after = s:sub(i, i)
      if after == "" then return cells end
      if after ~= "," then return nil, "text after a closing quote (a quote inside a field is \"\")" end
      i = i + 1
    else
      local comma = s:find(",", i, true)
      cells[#cells + 1] = s:sub(i, comma and comma - 1 or -1)
      if not comma then return cells end
      i = comma + 1
    end
  end
end

-- The header's column names, or nil and why.
local function header_of(cells)
  local index = {}
  for i, name in ipairs(cells) do
    if name == "" then return nil, "the header's column " .. i .. " has no name" end
    if index[name] then
      return nil, "the header names column " .. quote(name) .. " twice (columns " .. index[name] .. " and " .. i .. ")"
    end
    index[name] = i
  end
  if not index.model then return nil, 'the header has no "model" column' end
  return cells
end

-- CSV: as json_reader. A bad header is the one bad line: nothing after it can be read.
local function csv_reader(self, pos)
  local header, stop
  local function more() return read_line(self, pos) end
  return function()
    while not stop do
      local s = read_line(self, pos)
      if s == nil then return nil end
      if s ~= "" then
        local line = pos.line
        local cells, why = csv_record(s, more)
        if not cells then return line, nil, "not a CSV record: " .. why end
        if not header then
          header, why = header_of(cells)
          if not header then stop = true; return line, nil, why end
        elseif #cells ~= #header then
          return line, nil, ("%d cells, but the header names %d columns"):format(#cells, #header)
        else
          local raw = {}
          for i, name in ipairs(header) do
            if cells[i] ~= "" then raw[name] = cells[i] end
          end
          return line, raw
        end
      end
    end
  end
end

local Manifest = { __name = "dashscope.cli.Manifest" }
Manifest.__index = Manifest

--- The manifest at `path`, open for reading: nil, why when it cannot be read. CSV when its name
--- ends in .csv (any case), JSON Lines otherwise.
function manifest.open(path)
  local file, why = io.open(path, "rb")
  if not file then return nil, why end
  local ok, err = file:read(0) -- a directory opens but does not read
  if ok == nil and err then
    file:close()
    return nil, path .. ": " .. err
  end
  return setmetatable({ path = path, dir = dir_of(path), file = file,
                        csv = path:lower():find("%.csv$") ~= nil }, Manifest)
end

--- Iterates over the manifest from its first line: for each job line, (entry, nil) when it is good,
--- (false, bad) when it is not (false, not nil: a generic for goes on).
---   entry = { line, key, method, fields, output = resolved path | nil }
---   bad   = { line, field = name | nil, rule = rule | nil, message = "line N: ..." }
--- One pass at a time: each() starts again from the top.
function Manifest:each()
  assert(self.file, "manifest:each() after manifest:close()")
  self.file:seek("set", 0)
  local pos, seen = { line = 0 }, { keys = {}, outputs = {} }
  local next_line = (self.csv and csv_reader or json_reader)(self, pos)
  return function()
    local line, raw, why = next_line()
    if line == nil then return nil end
    if raw == nil then
      return false, { line = line, message = "line " .. line .. ": " .. why }
    end
    local ok, entry = pcall(job_of, self, raw, line, seen, self.csv)
    if ok then return entry end
    if getmetatable(entry) ~= Bad then error(entry, 0) end
    return false, { line = line, field = entry.field, rule = entry.rule,
                    message = "line " .. line .. ": " .. entry.message }
  end
end

--- Reads every line: the number of good job lines, and the bad ones (a list in line order).
function Manifest:check()
  local count, bads = 0, {}
  for entry, bad in self:each() do
    if entry then count = count + 1 else bads[#bads + 1] = bad end
  end
  return count, bads
end

--- Closes the file (idempotent).
function Manifest:close()
  if self.file then
    self.file:close()
    self.file = nil
  end
end
Manifest.__close = Manifest.close
Manifest.__gc = Manifest.close

return manifest
