-- The LuaLS annotations (the addon types/: config.json, library/*.lua) cover the whole public API:
-- every public function of the module, of a client, of a task handle, of a journal, of dashscope.uv
-- and of a uv driver has an annotated declaration with a description, a @param per parameter and
-- its @returns; every type they name is defined (luv's aside); the model and option classes match
-- the contracts the client checks with; ---@async marks exactly the functions whose call reaches
-- the client's wait loop (spec/support/yields.lua calls each). The files are read as text
-- (spec/support/luacats.lua; LuaLS reads them, Lua never runs them) and compared with the module at
-- run time. An annotated function the module does not have yet is reported as pending, not as a
-- failure.
local dashscope = require("dashscope")
local luacats = require("spec.support.luacats")
local yields = require("spec.support.yields")

local type_names, strip_optional, is_fun = luacats.type_names, luacats.strip_optional, luacats.is_fun
local BUILTIN = luacats.BUILTIN

-- The repository root, from this file's own path (busted runs from the root; this also works
-- when it runs from elsewhere).
local ROOT = debug.getinfo(1, "S").source:match("^@(.-)spec[/\\][^/\\]*$") or ""

-- types/ is a lua-language-server addon: config.json, and the definition files in library/.
local ADDON = "types/"

-- Every annotation file, with the module name its ---@meta line must give.
local FILES = {
  { path = ADDON .. "library/dashscope.lua", meta = "dashscope" },
  { path = ADDON .. "library/dashscope/uv.lua", meta = "dashscope.uv" },
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

-- Types named and not defined here: luv's, which the uv driver takes and holds (the luv module and
-- its handles), as the luv library lua-language-server ships and Neovim's runtime define them;
-- types/README.md says how to load them.
local LUV = { ["uv"] = true, ["uv.uv_timer_t"] = true, ["uv.uv_poll_t"] = true }

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
    return is_fun(t), "fun(...)"
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
  local ok, model = pcall(luacats.parse, FILES, read)
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
        if not BUILTIN[name] and not LUV[name] and not model.classes[name] and not model.aliases[name] then
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
        local as_field = field and is_fun(strip_optional(field.type))
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

  it("are a lua-language-server addon: config.json names it and offers it where dashscope is required", function()
    local json = assert(read(ADDON .. "config.json"))
    local cfg = require("cjson").decode(json)
    assert(cfg.name == "dashscope", "config.json: name must be \"dashscope\"")
    assert(type(cfg.words) == "table" and #cfg.words > 0, "config.json: no words")
    -- LuaLS offers the addon when a word matches a file's text as a whole (its library.lua's
    -- wholeMatch: no letter, digit or _ right before or after the match).
    local function offered(text)
      for _, word in ipairs(cfg.words) do
        local captures = { text:match("([%w_]?)" .. word .. "([%w_]?)") }
        if captures[1] == "" and captures[#captures] == "" then return true end
      end
      return false
    end
    for _, text in ipairs { 'local dashscope = require "dashscope"', "local d = require('dashscope')",
                            'local driver = require("dashscope.uv").attach(client, vim.uv)', "require'dashscope'.new()" } do
      assert(offered(text), "config.json's words miss: " .. text)
    end
    for _, text in ipairs { 'require "dashscope_extra"', 'require("dashscopes")', 'local name = "dashscope"',
                            'myrequire("dashscope")' } do
      assert(not offered(text), "config.json's words match: " .. text)
    end
    -- the addon holds the definition files in library/ and nothing the spec does not read
    local expected = { [ADDON .. "config.json"] = true, [ADDON .. "README.md"] = true }
    for _, file in ipairs(FILES) do expected[file.path] = true end
    local find = assert(io.popen("cd '" .. (ROOT == "" and "." or ROOT) .. "' && find " .. ADDON .. " -type f"))
    local stray = {}
    for path in find:lines() do
      if not expected[path] then stray[#stray + 1] = path end
    end
    find:close()
    assert(#stray == 0, "files in the addon that spec/types_spec.lua does not check:" .. list(stray))
  end)

  it("type the uv driver with luv's own types, and name no luv type they do not use", function()
    local used = {}
    for _, use in ipairs(model.types) do
      for _, name in ipairs(type_names(use.type)) do used[name] = true end
    end
    local unused = {}
    for _, name in ipairs(sorted_keys(LUV)) do
      if not used[name] then unused[#unused + 1] = name end
    end
    assert(#unused == 0, "LUV lists types no annotation names:" .. list(unused))
    local driver = model.classes["dashscope.uv.Driver"]
    assert(driver and driver.fields.uv and driver.fields.uv.type == "uv", "dashscope.uv.Driver.uv must be luv's uv")
    for _, fn in ipairs(model.functions) do
      if fn.key == "dashscope.uv.attach" then
        local luv = fn.doc.params[2]
        assert(luv and luv.type == "uv", "uv.attach's second parameter must be luv's uv")
      end
    end
  end)

  it("mark ---@async exactly what may reach the client's wait loop (spec/support/yields.lua)", function()
    local problems, annotated = {}, {}
    for _, fn in ipairs(model.functions) do
      annotated[fn.key] = true
      local entry = yields.CALLS[fn.key]
      if not entry then
        problems[#problems + 1] = fn.key .. " is not in spec/support/yields.lua: list it with a call that shows"
          .. " whether it reaches the wait loop"
      elseif (entry[1] == "yields") ~= fn.doc.async then
        problems[#problems + 1] = fn.file .. ":" .. fn.line .. ": " .. fn.key .. (fn.doc.async
          and " never reaches the wait loop: take off its ---@async" or " may yield: mark it ---@async")
      end
    end
    for key in pairs(yields.CALLS) do
      if not annotated[key] then problems[#problems + 1] = key .. " is in yields.CALLS but not annotated" end
    end
    for name, entry in pairs(yields.ALIASES) do
      local alias = model.aliases[name]
      local async = alias and #alias.types == 1 and alias.types[1]:find("^async%s+fun%s*%(") ~= nil
      if not alias then
        problems[#problems + 1] = "no @alias " .. name
      elseif async ~= (entry[1] == "yields") then
        problems[#problems + 1] = name .. (async and " never reaches the wait loop: write fun(...)"
          or " may yield: write async fun(...)")
      end
    end
    -- The wait loop calls each `sleep` option: it may yield.
    for _, name in ipairs(sorted_keys(model.classes)) do
      local sleep = model.classes[name].fields.sleep
      if sleep and not strip_optional(sleep.type):find("^async%s+fun%s*%(") then
        problems[#problems + 1] = name .. ".sleep may yield: write async fun(seconds: number)"
      end
    end
    table.sort(problems)
    assert(#problems == 0, "---@async out of step with what reaches Engine:run:" .. list(problems))
  end)

  for _, group in ipairs { yields.CALLS, yields.ALIASES } do
    for _, key in ipairs(sorted_keys(group)) do
      local entry = group[key]
      local reaches = entry[1] == "yields"
      it((reaches and "reach" or "return short of") .. " the client's wait loop from " .. key, function()
        local reached, returned, err = yields.run(entry, fake_uv)
        if reaches then
          assert(reached, key .. " did not reach Engine:run (" .. (returned and "it returned" or "it raised: "
            .. tostring(err)) .. "): fix its call in spec/support/yields.lua, or it does not yield")
        else
          assert(not reached, key .. " reached Engine:run: it may yield (list it as yields, mark it ---@async)")
          assert(returned or dashscope.is_misuse(err), key .. " raised: " .. tostring(err))
        end
      end)
    end
  end
end)
