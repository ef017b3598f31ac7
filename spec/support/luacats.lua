-- Reads LuaCATS definition files (the ---@meta files lua-language-server reads) as text, into a
-- model of their classes, aliases, functions and the type expressions they use: what
-- spec/types_spec.lua compares with the module at run time. Knows the annotation syntax only,
-- nothing of dashscope; never runs the files.
local luacats = {}

-- Lua's own types and the words of the type syntax.
luacats.BUILTIN = {}
for name in ([[nil any boolean string number integer function table thread userdata
               lightuserdata unknown self fun async true false file]]):gmatch("%S+") do
  luacats.BUILTIN[name] = true
end

-- The tags LuaLS knows; any other @word is a typo.
local TAGS = {}
for tag in ([[alias as async cast class deprecated diagnostic enum field generic meta module
              nodiscard operator overload package param private protected return see source
              type vararg version]]):gmatch("%S+") do
  TAGS[tag] = true
end

function luacats.trim(s)
  return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end
local trim = luacats.trim

local CLOSE = { ["("] = ")", ["{"] = "}", ["<"] = ">", ["["] = "]" }
local CLOSING = { [")"] = true, ["}"] = true, [">"] = true, ["]"] = true }

-- Whether the blank at `i` of `s` (outside brackets) is inside a type: after a `|` or the `:` of a
-- fun's returns, before a `|`, or after the `async` of `async fun`.
local function blank_in_type(s, i, j, last)
  return last == "|" or last == ":" or s:sub(j, j) == "|" or (" " .. s:sub(1, i - 1)):find("[^%w_]async$") ~= nil
end

--- Splits "TYPE rest" into the type expression and the rest (a name, a description). The type may
--- hold spaces inside brackets and around `|`, after the `:` of a `fun(...)` return, and after
--- `async`. nil and why when there is no type.
function luacats.read_type(s)
  s = s:match("^%s*(.*)$")
  local i, n, depth, last = 1, #s, 0, nil
  while i <= n do
    local c = s:sub(i, i)
    if c == '"' or c == "'" or c == "`" then
      local j = s:find(c, i + 1, true)
      if not j then return nil, "unterminated string in " .. s end
      i, last = j + 1, c
    elseif CLOSE[c] then
      depth, i, last = depth + 1, i + 1, c
    elseif CLOSING[c] then
      depth, i, last = depth - 1, i + 1, c
      if depth < 0 then return nil, "unbalanced '" .. c .. "' in " .. s end
    elseif c:find("%s") and depth > 0 then
      i = i + 1
    elseif c:find("%s") then
      local j = i
      while j <= n and s:sub(j, j):find("%s") do j = j + 1 end
      if not blank_in_type(s, i, j, last) then break end
      i = j
    else
      i, last = i + 1, c
    end
  end
  if depth ~= 0 then return nil, "unbalanced brackets in " .. s end
  local t = trim(s:sub(1, i - 1))
  if t == "" then return nil, "no type" end
  return t, trim(s:sub(i))
end
local read_type = luacats.read_type

--- The type names a type expression refers to (not its literals, argument names or keys).
function luacats.type_names(t)
  local s = t:gsub('"[^"]*"', " "):gsub("'[^']*'", " "):gsub("`[^`]*`", " ")
  s = s:gsub("%.%.%.%s*%??%s*:", " "):gsub("[%w_]+%s*%??%s*:", " ")
  local names = {}
  for name in s:gmatch("[%a_][%w_%.]*") do names[#names + 1] = name end
  return names
end

--- The string literals of a union of literals ('"a"|"b"'), or nil when it holds anything else.
function luacats.literals(t)
  local values = {}
  for part in (t .. "|"):gmatch("([^|]*)|") do
    local v = trim(part):match('^"([^"]*)"$') or trim(part):match("^'([^']*)'$")
    if not v then return nil end
    values[#values + 1] = v
  end
  return values
end
local literals = luacats.literals

function luacats.strip_optional(t)
  return (t:gsub("%?$", ""))
end

--- Whether a type expression is a function type, `fun(...)` or `async fun(...)`.
function luacats.is_fun(t)
  return t:find("^fun%s*%(") ~= nil or t:find("^async%s+fun%s*%(") ~= nil
end

---------------------------------------------------------------------------------------------------
-- One file's reading: the model it adds to, the doc block above the current line, the locals that
-- stand for classes.
---------------------------------------------------------------------------------------------------

local Reader = {}
Reader.__index = Reader

function Reader:fail(text)
  self.model.errors[#self.model.errors + 1] = self.where .. ": " .. text
end

function Reader:use_type(t)
  self.model.types[#self.model.types + 1] = { type = t, where = self.where }
end

function Reader:new_block()
  self.block = { params = {}, returns = {}, overloads = {}, described = false, class = nil, alias = nil,
                 async = false }
end

-- The handler of each tag: reader, the rest of the line after the tag.
local TAG = {}

function TAG.class(r, rest)
  local name, parent = rest:match("^([%w_%.]+)%s*:?%s*([%w_%.]*)")
  if not name then return r:fail("@class without a name") end
  if r.model.classes[name] then return r:fail("class " .. name .. " defined twice") end
  r.model.classes[name] = { fields = {}, file = r.file.path, line = r.lineno, parent = parent }
  r.block.class = name
  if parent ~= "" then r:use_type(parent) end
end

function TAG.field(r, rest)
  local class = r.block.class and r.model.classes[r.block.class]
  local scope, after = rest:match("^(%a+)%s+(.*)$")
  if scope == "public" or scope == "private" or scope == "protected" or scope == "package" then
    rest = after
  else
    scope = "public"
  end
  local name, optional, tail = rest:match("^(%[[^%]]+%])(%??)%s*(.*)$")
  if not name then
    name, optional, tail = rest:match("^([%a_][%w_]*)(%??)%s*(.*)$")
  end
  local ftype, why = read_type(tail or "")
  if not class then return r:fail("@field outside a @class block") end
  if not name or not ftype then return r:fail("cannot read @field: " .. tostring(why)) end
  if name:sub(1, 1) == "[" then r:use_type(name:sub(2, -2)) end
  class.fields[name] = { type = ftype, optional = optional == "?" or ftype:sub(-1) == "?", scope = scope }
  r:use_type(ftype)
end

function TAG.alias(r, rest)
  local name, tail = rest:match("^([%w_%.]+)%s*(.*)$")
  if not name then return r:fail("@alias without a name") end
  if r.model.aliases[name] then return r:fail("alias " .. name .. " defined twice") end
  local alias = { types = {}, values = {}, file = r.file.path, line = r.lineno }
  r.model.aliases[name] = alias
  r.block.alias = alias
  if tail ~= "" then
    -- the rest of the line is the type (descriptions go on the lines above)
    alias.types[1] = tail
    alias.values = literals(tail)
    r:use_type(tail)
  end
end

TAG["param"] = function(r, rest)
  local name, optional, tail = rest:match("^([%a_][%w_]*)(%??)%s*(.*)$")
  if not name then
    name, optional, tail = rest:match("^(%.%.%.)(%??)%s*(.*)$")
  end
  local ptype, why = read_type(tail or "")
  if not name or not ptype then return r:fail("cannot read @param: " .. tostring(why)) end
  r.block.params[#r.block.params + 1] = { name = name, type = ptype, optional = optional == "?" }
  r:use_type(ptype)
end

TAG["return"] = function(r, rest)
  local rtype, why = read_type(rest)
  if not rtype then return r:fail("cannot read @return: " .. tostring(why)) end
  r.block.returns[#r.block.returns + 1] = rtype
  r:use_type(rtype)
end

function TAG.async(r)
  r.block.async = true
end

function TAG.overload(r, rest)
  if not luacats.is_fun(rest) then return r:fail("@overload must be followed by fun(...)") end
  r.block.overloads[#r.block.overloads + 1] = rest
  r:use_type(rest)
end

-- A `---| value # description` line of the @alias above.
function Reader:alias_value(doc)
  local value = doc:match("^%s*|[>+]?%s*(.-)%s*$")
  value = trim(value:match("^(.-)%s#") or value:match("^(.-)#$") or value)
  local alias = self.block.alias
  if not alias then return self:fail("---| line outside an @alias block") end
  if value == "" then return self:fail("empty ---| line") end
  alias.types[#alias.types + 1] = value
  local lit = literals(value)
  if lit and alias.values then
    for _, v in ipairs(lit) do alias.values[#alias.values + 1] = v end
  else
    alias.values = nil
  end
  self:use_type(value)
end

-- A line of a doc comment (what follows its ---).
function Reader:doc_line(doc)
  local tag, rest = doc:match("^%s*@(%w+)%s*(.*)$")
  if tag then
    if not TAGS[tag] then return self:fail("unknown tag @" .. tag) end
    if TAG[tag] then TAG[tag](self, trim(rest)) end
  elseif doc:match("^%s*|") then
    self:alias_value(doc)
  elseif trim(doc) ~= "" then
    self.block.described = true
  end
end

-- A function declared on a local that stands for a class: `function Class:name(params) end`.
function Reader:declare(fvar, sep, fname, params)
  local class = self.vars[fvar]
  if not class then return self:fail("function on " .. fvar .. ", which is no annotated class") end
  local names = {}
  for p in params:gmatch("[^,]+") do names[#names + 1] = trim(p) end
  self.model.functions[#self.model.functions + 1] = {
    class = class, name = fname, sep = sep, key = class .. sep .. fname,
    params = names, doc = self.block, file = self.file.path, line = self.lineno,
  }
end

-- Code (or a plain comment, or a blank line): what the block above documents.
function Reader:code_line(line)
  local var = line:match("^local%s+([%a_][%w_]*)%s*=%s*{%s*}%s*$")
  local fvar, sep, fname, params = line:match("^function%s+([%a_][%w_]*)([%.:])([%a_][%w_]*)%s*%(([^%)]*)%)%s*end%s*$")
  local ret = line:match("^return%s+([%a_][%w_]*)%s*$")
  if var then
    if not self.block.class then
      self:fail("local " .. var .. " without a ---@class above it")
    else
      self.vars[var] = self.block.class
    end
  elseif fvar then
    self:declare(fvar, sep, fname, params)
  elseif ret then
    local meta = self.file.meta
    if self.vars[ret] ~= meta then
      self:fail("returns " .. ret .. " (class " .. tostring(self.vars[ret]) .. "), not the class " .. meta
        .. " its ---@meta line names")
    end
    self.model.returns[self.file.path] = self.vars[ret]
  elseif line:find("%S") and not line:find("^%s*%-%-") then
    self:fail("unexpected code in a definition file: " .. line)
  end
  self:new_block()
end

function Reader:line(line)
  local doc = line:match("^%s*%-%-%-(.*)$")
  if self.lineno == 1 then
    if line ~= "---@meta " .. self.file.meta then
      self:fail("the first line must be '---@meta " .. self.file.meta .. "' (got '" .. line .. "')")
    end
  elseif doc and doc:sub(1, 1) == "-" then
    self:fail("a line of dashes is a doc comment to LuaLS; use a plain -- comment")
  elseif doc then
    self:doc_line(doc)
  else
    self:code_line(line)
  end
end

--- Parses the annotation files ({ path, meta }: the module name its ---@meta line must give),
--- each read by read(path) (its text, or nil and why), into
---   { classes, aliases, functions, types, errors, returns }:
---   classes[name]  = { fields = { [name] = { type, optional, scope } }, file, line, parent }
---   aliases[name]  = { types = { ... }, values = { ... } | nil, file, line }
---   functions[i]   = { class, name, sep, key, params = { names }, doc = { params, returns,
---                      overloads, described, async }, file, line }
---   types[i]       = { type, where }: every type expression, for the names it uses
---   returns[path]  = the class each file returns
function luacats.parse(files, read)
  local model = { classes = {}, aliases = {}, functions = {}, types = {}, errors = {}, returns = {} }
  for _, file in ipairs(files) do
    local r = setmetatable({ model = model, file = file, vars = {}, lineno = 0, where = file.path }, Reader)
    local text, err = read(file.path)
    if not text then
      r:fail("cannot read: " .. tostring(err))
    else
      r:new_block()
      for line in (text .. "\n"):gmatch("([^\n]*)\n") do
        r.lineno = r.lineno + 1
        r.where = file.path .. ":" .. r.lineno
        r:line((line:gsub("\r$", "")))
      end
      r.where = file.path
      if not model.returns[file.path] then
        r:fail("does not end with 'return <module class>' (LuaLS takes require's value from it)")
      end
    end
  end
  return model
end

return luacats
