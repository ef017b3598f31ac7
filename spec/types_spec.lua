-- The LuaLS annotations (types/*.lua) cover the whole public API: every public function of the
-- module, of a client, of a task handle, of dashscope.uv and of a uv driver has an annotated
-- declaration with a description, a @param per parameter and its @returns; every type they name is
-- defined; the model and option classes match the contracts the client checks with. The files are
-- read as text (LuaLS reads them, Lua never runs them) and compared with the module at run time.
-- An annotated function the module does not have yet is reported as pending, not as a failure.
local dashscope = require("dashscope")

-- The repository root, from this file's own path (busted runs from the root; this also works
-- when it runs from elsewhere).
local ROOT = debug.getinfo(1, "S").source:match("^@(.-)spec[/\\][^/\\]*$") or ""

-- Every annotation file, with the module name its ---@meta line must give.
local FILES = {
  { path = "types/dashscope.lua", meta = "dashscope" },
  { path = "types/dashscope/uv.lua", meta = "dashscope.uv" },
}

-- Where each annotated class lives at run time (`get` receives the objects made by surfaces()).
local SURFACES = {
  { class = "dashscope", label = 'require("dashscope")', prefix = "dashscope.", method = false,
    get = function(s) return s.module end },
  { class = "dashscope.Client", label = "a client", prefix = "client:", method = true,
    get = function(s) return s.client end },
  { class = "dashscope.Task", label = "a task handle", prefix = "task:", method = true,
    get = function(s) return s.task end },
  { class = "dashscope.Journal", label = "a journal", prefix = "journal:", method = true,
    get = function(s) return s.journal end },
  { class = "dashscope.uv", label = 'require("dashscope.uv")', prefix = "uv.", method = false,
    get = function(s) return s.uv end },
  { class = "dashscope.uv.Driver", label = "a dashscope.uv driver", prefix = "driver:", method = true,
    get = function(s) return s.driver end },
}
local SURFACE_OF = {}
for _, surface in ipairs(SURFACES) do SURFACE_OF[surface.class] = surface end

-- Functions that return nothing: they alone have no ---@return.
local RETURNS_NOTHING = {
  ["dashscope.Client:close"] = true,
  ["dashscope.Journal:close"] = true,
  ["dashscope.uv.Driver:kick"] = true,
  ["dashscope.uv.Driver:detach"] = true,
}

-- Lua's own types and the words of the type syntax.
local BUILTIN = {}
for name in ([[nil any boolean string number integer function table thread userdata
               lightuserdata unknown self fun true false file]]):gmatch("%S+") do
  BUILTIN[name] = true
end

-- The tags LuaLS knows; any other @word is a typo.
local TAGS = {}
for tag in ([[alias as async cast class deprecated diagnostic enum field generic meta module
              nodiscard operator overload package param private protected return see source
              type vararg version]]):gmatch("%S+") do
  TAGS[tag] = true
end

local function trim(s)
  return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

local function read(path)
  local f, err = io.open(ROOT .. path, "rb")
  if not f then return nil, err end
  local text = f:read("*a")
  f:close()
  return text
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

---------------------------------------------------------------------------------------------------
-- Reading the annotation files
---------------------------------------------------------------------------------------------------

local CLOSE = { ["("] = ")", ["{"] = "}", ["<"] = ">", ["["] = "]" }
local CLOSING = { [")"] = true, ["}"] = true, [">"] = true, ["]"] = true }

-- Splits "TYPE rest" into the type expression and the rest (a name, a description). The type may
-- hold spaces inside brackets and around `|`, and after the `:` of a `fun(...)` return.
local function read_type(s)
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
    elseif c:find("%s") then
      if depth > 0 then
        i = i + 1
      else
        local j = i
        while j <= n and s:sub(j, j):find("%s") do j = j + 1 end
        if last == "|" or last == ":" or s:sub(j, j) == "|" then
          i = j
        else
          break
        end
      end
    else
      i, last = i + 1, c
    end
  end
  if depth ~= 0 then return nil, "unbalanced brackets in " .. s end
  local t = trim(s:sub(1, i - 1))
  if t == "" then return nil, "no type" end
  return t, trim(s:sub(i))
end

-- The type names a type expression refers to (not its literals, argument names or keys).
local function type_names(t)
  local s = t:gsub('"[^"]*"', " "):gsub("'[^']*'", " "):gsub("`[^`]*`", " ")
  s = s:gsub("%.%.%.%s*%??%s*:", " "):gsub("[%w_]+%s*%??%s*:", " ")
  local names = {}
  for name in s:gmatch("[%a_][%w_%.]*") do names[#names + 1] = name end
  return names
end

-- The string literals of a union of literals ('"a"|"b"'), or nil when it holds anything else.
local function literals(t)
  local values = {}
  for part in (t .. "|"):gmatch("([^|]*)|") do
    local v = trim(part):match('^"([^"]*)"$') or trim(part):match("^'([^']*)'$")
    if not v then return nil end
    values[#values + 1] = v
  end
  return values
end

local function strip_optional(t)
  return (t:gsub("%?$", ""))
end

-- Parses the annotation files into { classes, aliases, functions, types, errors }.
--   classes[name]  = { fields = { [name] = { type, optional, scope } }, file, line }
--   aliases[name]  = { types = { ... }, values = { ... } | nil }
--   functions[i]   = { class, name, sep, key, params = { names }, doc = { params, returns,
--                      overloads, described }, file, line }
--   types[i]       = { type, where }: every type expression, for the names it uses
local function parse(files)
  local model = { classes = {}, aliases = {}, functions = {}, types = {}, errors = {}, returns = {} }
  local function fail(where, text)
    model.errors[#model.errors + 1] = where .. ": " .. text
  end
  local function use_type(t, where)
    model.types[#model.types + 1] = { type = t, where = where }
  end

  for _, file in ipairs(files) do
    local text, err = read(file.path)
    if not text then
      fail(file.path, "cannot read: " .. tostring(err))
    else
      local vars = {}   -- local name -> class
      local block       -- the doc comment lines above the current line
      local function new_block()
        block = { params = {}, returns = {}, overloads = {}, described = false, class = nil,
                  alias = nil }
      end
      new_block()
      local lineno = 0
      for line in (text .. "\n"):gmatch("([^\n]*)\n") do
        lineno = lineno + 1
        line = line:gsub("\r$", "")
        local where = file.path .. ":" .. lineno
        local doc = line:match("^%s*%-%-%-(.*)$")
        if lineno == 1 then
          if line ~= "---@meta " .. file.meta then
            fail(where, "the first line must be '---@meta " .. file.meta .. "' (got '" .. line .. "')")
          end
        elseif doc and doc:sub(1, 1) == "-" then
          fail(where, "a line of dashes is a doc comment to LuaLS; use a plain -- comment")
        elseif doc then
          local tag, rest = doc:match("^%s*@(%w+)%s*(.*)$")
          if tag then
            rest = trim(rest)
            if not TAGS[tag] then
              fail(where, "unknown tag @" .. tag)
            elseif tag == "class" then
              local name, parent = rest:match("^([%w_%.]+)%s*:?%s*([%w_%.]*)")
              if not name then
                fail(where, "@class without a name")
              elseif model.classes[name] then
                fail(where, "class " .. name .. " defined twice")
              else
                model.classes[name] = { fields = {}, file = file.path, line = lineno, parent = parent }
                block.class = name
                if parent ~= "" then use_type(parent, where) end
              end
            elseif tag == "field" then
              local class = block.class and model.classes[block.class]
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
              if not class then
                fail(where, "@field outside a @class block")
              elseif not name or not ftype then
                fail(where, "cannot read @field: " .. tostring(why))
              else
                if name:sub(1, 1) == "[" then
                  use_type(name:sub(2, -2), where)
                end
                class.fields[name] = { type = ftype, optional = optional == "?" or ftype:sub(-1) == "?",
                                       scope = scope }
                use_type(ftype, where)
              end
            elseif tag == "alias" then
              local name, tail = rest:match("^([%w_%.]+)%s*(.*)$")
              if not name then
                fail(where, "@alias without a name")
              elseif model.aliases[name] then
                fail(where, "alias " .. name .. " defined twice")
              else
                local alias = { types = {}, values = {}, file = file.path, line = lineno }
                model.aliases[name] = alias
                block.alias = alias
                if tail ~= "" then
                  -- the rest of the line is the type (descriptions go on the lines above)
                  alias.types[1] = tail
                  alias.values = literals(tail)
                  use_type(tail, where)
                end
              end
            elseif tag == "param" then
              local name, optional, tail = rest:match("^([%a_][%w_]*)(%??)%s*(.*)$")
              if not name then
                name, optional, tail = rest:match("^(%.%.%.)(%??)%s*(.*)$")
              end
              local ptype, why = read_type(tail or "")
              if not name or not ptype then
                fail(where, "cannot read @param: " .. tostring(why))
              else
                block.params[#block.params + 1] = { name = name, type = ptype, optional = optional == "?" }
                use_type(ptype, where)
              end
            elseif tag == "return" then
              local rtype, why = read_type(rest)
              if not rtype then
                fail(where, "cannot read @return: " .. tostring(why))
              else
                block.returns[#block.returns + 1] = rtype
                use_type(rtype, where)
              end
            elseif tag == "overload" then
              if not rest:find("^fun%s*%(") then
                fail(where, "@overload must be followed by fun(...)")
              else
                block.overloads[#block.overloads + 1] = rest
                use_type(rest, where)
              end
            end
          elseif doc:match("^%s*|") then
            local value = doc:match("^%s*|[>+]?%s*(.-)%s*$")
            value = trim(value:match("^(.-)%s#") or value:match("^(.-)#$") or value)
            if not block.alias then
              fail(where, "---| line outside an @alias block")
            elseif value == "" then
              fail(where, "empty ---| line")
            else
              local alias = block.alias
              alias.types[#alias.types + 1] = value
              local lit = literals(value)
              if lit and alias.values then
                for _, v in ipairs(lit) do alias.values[#alias.values + 1] = v end
              else
                alias.values = nil
              end
              use_type(value, where)
            end
          elseif trim(doc) ~= "" then
            block.described = true
          end
        else
          -- Code (or a plain comment, or a blank line): what the block above documents.
          local var = line:match("^local%s+([%a_][%w_]*)%s*=%s*{%s*}%s*$")
          local fvar, sep, fname, params = line:match("^function%s+([%a_][%w_]*)([%.:])([%a_][%w_]*)%s*%(([^%)]*)%)%s*end%s*$")
          local ret = line:match("^return%s+([%a_][%w_]*)%s*$")
          if var then
            if not block.class then
              fail(where, "local " .. var .. " without a ---@class above it")
            else
              vars[var] = block.class
            end
          elseif fvar then
            local class = vars[fvar]
            if not class then
              fail(where, "function on " .. fvar .. ", which is no annotated class")
            else
              local names = {}
              for p in params:gmatch("[^,]+") do names[#names + 1] = trim(p) end
              model.functions[#model.functions + 1] = {
                class = class, name = fname, sep = sep, key = class .. sep .. fname,
                params = names, doc = block, file = file.path, line = lineno,
              }
            end
          elseif ret then
            if vars[ret] ~= file.meta then
              fail(where, "returns " .. ret .. " (class " .. tostring(vars[ret]) .. "), not the class "
                .. file.meta .. " its ---@meta line names")
            end
            model.returns[file.path] = vars[ret]
          elseif line:find("%S") and not line:find("^%s*%-%-") then
            fail(where, "unexpected code in a definition file: " .. line)
          end
          new_block()
        end
      end
      if not model.returns[file.path] then
        fail(file.path, "does not end with 'return <module class>' (LuaLS takes require's value from it)")
      end
    end
  end
  return model
end

---------------------------------------------------------------------------------------------------
-- The module at run time
---------------------------------------------------------------------------------------------------

-- A stand-in for the luv module: enough handles for attach, kick and detach.
local function fake_uv()
  local function handle()
    return { start = function() end, stop = function() end, close = function() end }
  end
  return { new_timer = handle, new_socket_poll = function() return handle() end }
end

local made
local function surfaces()
  if not made then
    made = { module = dashscope }
    made.client = dashscope.new { api_key = "sk-test", base_url = "http://127.0.0.1:9/api/v1" }
    made.task = made.client:task("some-id")
    made.journal_path = os.tmpname()
    made.journal = assert(made.client:journal(made.journal_path))
    made.uv = require("dashscope.uv")
    made.driver = made.uv.attach(made.client, fake_uv(), { on_error = function() end })
  end
  return made
end

-- The public members of a value: its own and those of its __index chain, skipping `_` names.
-- Returns { [name] = value } for functions and for other values separately.
local function public_members(value)
  local functions, data, seen, own = {}, {}, {}, true
  while type(value) == "table" and not seen[value] do
    seen[value] = true
    for k, v in pairs(value) do
      if type(k) == "string" and k:sub(1, 1) ~= "_" then
        if type(v) == "function" then
          if functions[k] == nil and data[k] == nil then functions[k] = v end
        elseif own and functions[k] == nil and data[k] == nil then
          data[k] = v
        end
      end
    end
    own = false
    local mt = getmetatable(value)
    value = mt and rawget(mt, "__index")
  end
  return functions, data
end

-- Parameters of a Lua function, where the interpreter says (5.2+, LuaJIT): count and vararg.
local function arity(f)
  local info = debug.getinfo(f, "Su")
  if info.what == "C" or info.nparams == nil then return nil end
  return info.nparams, info.isvararg
end

---------------------------------------------------------------------------------------------------
-- The checks
---------------------------------------------------------------------------------------------------

local function display(fn)
  local surface = SURFACE_OF[fn.class]
  return (surface and surface.prefix or (fn.class .. fn.sep)) .. fn.name
end

-- The annotated type (without `?`) a contract type maps to, or a check function.
local function type_matches(rule, annotated, model)
  local t = strip_optional(annotated)
  local kind = rule.type
  if kind == "string" or kind == "integer" or kind == "number" or kind == "boolean" then
    return t == kind, kind
  elseif kind == "url" then
    return t == "dashscope.Url", "dashscope.Url"
  elseif kind == "bbox" then
    return t == "dashscope.BBox", "dashscope.BBox"
  elseif kind == "time" then
    return t == "dashscope.ListTime", "dashscope.ListTime"
  elseif kind == "function" then
    return t:find("^fun%s*%(") ~= nil, "fun(...)"
  elseif kind == "rate_limits" then
    return t:find("dashscope.RateLimits", 1, true) ~= nil and t:find("boolean", 1, true) ~= nil,
      "boolean|dashscope.RateLimits"
  elseif kind == "quota_store" then
    return t == "false|string|table", "false|string|table"
  elseif kind == "enum" then
    local alias = model.aliases[t]
    if not alias or not alias.values then
      return false, "an @alias of the string literals " .. table.concat(rule.values, ", ")
    end
    local want, got = {}, {}
    for _, v in ipairs(rule.values) do want[v] = true end
    for _, v in ipairs(alias.values) do got[v] = true end
    for v in pairs(want) do
      if not got[v] then return false, "an alias that also has \"" .. v .. "\"" end
    end
    for v in pairs(got) do
      if not want[v] then return false, "an alias without \"" .. v .. "\" (not in the contract)" end
    end
    return #alias.values == #rule.values, "an alias listing each value once"
  end
  return false, "a type for contract type '" .. tostring(kind) .. "' (teach spec/types_spec.lua)"
end

-- Problems between an annotated class and a contract (a list of field rules).
local function compare_contract(model, class_name, rules)
  local problems = {}
  local class = model.classes[class_name]
  if not class then
    return { class_name .. " is not defined" }
  end
  local named = {}
  for _, rule in ipairs(rules) do
    named[rule.name] = true
    local field = class.fields[rule.name]
    if not field then
      problems[#problems + 1] = class_name .. " lacks field " .. rule.name
    else
      local ok, want = type_matches(rule, field.type, model)
      if not ok then
        problems[#problems + 1] = string.format("%s.%s is %s; the contract's %s wants %s",
          class_name, rule.name, field.type, rule.type, want)
      end
      if rule.required and field.optional then
        problems[#problems + 1] = class_name .. "." .. rule.name .. " is required: drop its '?'"
      elseif not rule.required and not field.optional then
        problems[#problems + 1] = class_name .. "." .. rule.name .. " is optional: write " .. rule.name .. "?"
      end
    end
  end
  for name, field in pairs(class.fields) do
    if not named[name] and field.scope == "public" then
      problems[#problems + 1] = class_name .. "." .. name .. " is not in the contract"
    end
  end
  table.sort(problems)
  return problems
end

local function list(problems)
  return "\n  " .. table.concat(problems, "\n  ")
end

---------------------------------------------------------------------------------------------------

describe("the LuaLS annotations (types/)", function()
  local ok, model = pcall(parse, FILES)
  if not ok then
    it("can be read", function()
      error("spec/types_spec.lua could not read types/: " .. tostring(model))
    end)
    return
  end

  teardown(function()
    if made then
      made.driver:detach()
      made.client:close()
      made = nil
    end
  end)

  it("are definition files: ---@meta <module> first, only annotated declarations, valid Lua", function()
    assert(#model.errors == 0, "problems in the annotation files:" .. list(model.errors))
    local load_text = loadstring or load -- 5.1 and LuaJIT: load takes a function
    for _, file in ipairs(FILES) do
      local chunk, err = load_text(assert(read(file.path)), "@" .. file.path)
      assert(chunk, "not valid Lua: " .. tostring(err))
    end
  end)

  it("name only types they define, or Lua's own", function()
    local unknown, seen = {}, {}
    for _, use in ipairs(model.types) do
      for _, name in ipairs(type_names(use.type)) do
        if not BUILTIN[name] and not model.classes[name] and not model.aliases[name] then
          local text = use.where .. ": " .. name
          if not seen[text] then
            seen[text] = true
            unknown[#unknown + 1] = text
          end
        end
      end
    end
    assert(#unknown == 0, "types named but not defined (a @class or an @alias):" .. list(unknown))
  end)

  it("declare functions only on classes that exist at run time", function()
    local stray, dup, keys = {}, {}, {}
    for _, fn in ipairs(model.functions) do
      local surface = SURFACE_OF[fn.class]
      if not surface then
        stray[#stray + 1] = fn.file .. ":" .. fn.line .. ": " .. fn.key .. " (class " .. fn.class
          .. " is none of: the module, a client, a task, dashscope.uv, a driver)"
      elseif (fn.sep == ":") ~= surface.method then
        stray[#stray + 1] = fn.file .. ":" .. fn.line .. ": " .. fn.key .. " must be declared with '"
          .. (surface.method and ":" or ".") .. "'"
      end
      if keys[fn.key] then dup[#dup + 1] = fn.key end
      keys[fn.key] = true
    end
    assert(#stray == 0, "misplaced declarations:" .. list(stray))
    assert(#dup == 0, "declared twice (use ---@overload):" .. list(dup))
  end)

  for _, surface in ipairs(SURFACES) do
    it("annotate every public function and field of " .. surface.label, function()
      local object = surface.get(surfaces())
      local functions, data = public_members(object)
      local class = model.classes[surface.class]
      assert(class, "no ---@class " .. surface.class)
      local annotated = {}
      for _, fn in ipairs(model.functions) do
        if fn.class == surface.class then annotated[fn.name] = true end
      end
      local missing = {}
      for _, name in ipairs(sorted_keys(functions)) do
        local field = class.fields[name]
        local as_field = field and strip_optional(field.type):find("^fun%s*%(")
        if not annotated[name] and not as_field then
          missing[#missing + 1] = surface.prefix .. name
        end
      end
      for _, name in ipairs(sorted_keys(data)) do
        if not class.fields[name] then
          missing[#missing + 1] = surface.prefix:sub(1, -2) .. "." .. name .. " (a " .. type(data[name])
            .. " field: ---@field in ---@class " .. surface.class .. ")"
        end
      end
      assert(#missing == 0, "public but not annotated in types/:" .. list(missing))
    end)
  end

  for _, fn in ipairs(model.functions) do
    local name = display(fn)

    it("document " .. name .. ": a description, a @param per parameter, its @returns", function()
      local problems = {}
      local doc = fn.doc
      if not doc.described then
        problems[#problems + 1] = "no description line (---text) above it"
      end
      local documented = {}
      for i, p in ipairs(doc.params) do
        documented[#documented + 1] = p.name
        if fn.params[i] ~= p.name then
          problems[#problems + 1] = "@param " .. p.name .. " does not match parameter " .. i
            .. " (" .. tostring(fn.params[i]) .. ")"
        end
      end
      if #doc.params ~= #fn.params then
        problems[#problems + 1] = "parameters (" .. table.concat(fn.params, ", ") .. ") but @params ("
          .. table.concat(documented, ", ") .. ")"
      end
      if RETURNS_NOTHING[fn.key] then
        if #doc.returns > 0 then
          problems[#problems + 1] = "returns nothing, yet has @return (or take it off RETURNS_NOTHING)"
        end
      elseif #doc.returns == 0 then
        problems[#problems + 1] = "no @return (or list it in RETURNS_NOTHING if it returns nothing)"
      end
      assert(#problems == 0, fn.file .. ":" .. fn.line .. ": " .. name .. ":" .. list(problems))
    end)

    it("find " .. name .. " in the module, taking the annotated parameters", function()
      local surface = SURFACE_OF[fn.class]
      assert(surface, fn.key .. " is on no run-time surface")
      local object = surface.get(surfaces())
      local f = object[fn.name]
      if f == nil then
        pending(name .. " is annotated but not implemented yet")
        return
      end
      assert(type(f) == "function", name .. " is a " .. type(f) .. ", not a function")
      local nparams, vararg = arity(f)
      if nparams == nil then return end -- Lua 5.1 cannot say
      local want, dots = 0, false
      for _, p in ipairs(fn.params) do
        if p == "..." then dots = true else want = want + 1 end
      end
      if fn.sep == ":" then want = want + 1 end
      assert(nparams == want, string.format("%s takes %d parameters%s at run time; annotated: %d (%s)",
        name, nparams, fn.sep == ":" and " (self included)" or "", want, table.concat(fn.params, ", ")))
      assert(vararg == dots, name .. (vararg and " is" or " is not") .. " vararg at run time, unlike its annotation")
    end)
  end

  it("give each model method a fields class that matches its contract (dashscope.models)", function()
    local problems, checked = {}, 0
    for _, method in ipairs(sorted_keys(dashscope.models)) do
      local contract = dashscope.models[method]
      local fn
      for _, f in ipairs(model.functions) do
        if f.class == "dashscope.Client" and f.name == method then fn = f end
      end
      if fn then -- an unannotated method fails above already
        local param = fn.doc.params[1]
        if not param then
          problems[#problems + 1] = "client:" .. method .. " has no @param for its fields"
        else
          checked = checked + 1
          for _, p in ipairs(compare_contract(model, strip_optional(param.type), contract.fields)) do
            problems[#problems + 1] = "client:" .. method .. ": " .. p
          end
        end
      end
    end
    assert(checked > 0, "no model method annotated")
    assert(#problems == 0, "model classes out of step with src/dashscope/models.lua:" .. list(problems))
  end)

  -- The option tables the client checks with, and the class annotating each.
  local OPTION_CONTRACTS = {
    { class = "dashscope.ClientOptions", module = "dashscope.config", key = "OPTIONS", what = "dashscope.new" },
    { class = "dashscope.WaitOptions", module = "dashscope.task", key = "WAIT_OPTIONS", what = "task:wait" },
    { class = "dashscope.WaitManyOptions", module = "dashscope.waits", key = "MANY_OPTIONS",
      what = "wait_all, wait_any, each_done" },
    { class = "dashscope.TaskFilter", module = "dashscope.listing", key = "TASK_FILTER",
      what = "client:tasks and client:each_task" },
    { class = "dashscope.DownloadOptions", module = "dashscope.download", key = "OPTIONS", what = "task:download" },
  }
  for _, oc in ipairs(OPTION_CONTRACTS) do
    it("annotate the options of " .. oc.what .. " as " .. oc.class .. ", as " .. oc.module .. " checks them", function()
      local loaded, mod = pcall(require, oc.module)
      local rules = loaded and type(mod) == "table" and mod[oc.key]
      if type(rules) ~= "table" then
        pending(oc.module .. "." .. oc.key .. " is not there to compare with")
        return
      end
      local problems = compare_contract(model, oc.class, rules)
      assert(#problems == 0, oc.class .. " out of step with " .. oc.module .. "." .. oc.key .. ":" .. list(problems))
    end)
  end
end)
