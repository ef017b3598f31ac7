-- The command line's words into typed values: the options every command takes, those of the
-- commands that follow a job, one option per contract field (its metavar and the conversion of its
-- word to the field's type), the parser, and the usage error it raises. A word that does not
-- convert is passed on as it is: the module's checker then says what the field must be. Which
-- command takes which options is commands.lua's; their help is help.lua's.
--
-- An option: { long = "video-fps", short = "o", key = where its value goes, arg = metavar (nil for
-- a flag), optional = true when the value may be left out (booleans), convert = function(text,
-- name, command) -> value, rule = the contract rule of a field option, aliases, doc }.
local dashscope = require("dashscope")
local text = require("dashscope.cli.text")

local args = {}

-- A usage error is a table (so that it cannot be mistaken for a bug raised as a string).
local Usage = {}

--- Raises a usage error (exit 2): `message`, and the command whose --help to suggest.
function args.usage(message, command)
  error(setmetatable({ message = message, command = command }, Usage), 0)
end
local usage = args.usage

function args.is_usage(e)
  return getmetatable(e) == Usage
end

--- An option's word as seconds: a finite number, not negative; a usage error otherwise.
function args.seconds(word, name)
  local s = tonumber(word)
  if not s or s ~= s or s < 0 or s == math.huge then
    usage(name .. " expects a number of seconds (got '" .. word .. "')")
  end
  return s
end

local function client_doc(name)
  for _, rule in ipairs(dashscope.options) do
    if rule.name == name then return rule.doc end
  end
  return ""
end

--- Options of every command; they may also come before the command's name. `client` names the
--- client option (dashscope.options) an option's value goes to, for the module's messages.
args.GLOBAL = {
  { long = "api-key-file", key = "api_key_file", arg = "PATH", client = true,
    doc = "read the API key from PATH (default: env DASHSCOPE_API_KEY, then the file named by env "
      .. "DASHSCOPE_API_KEY_FILE_PATH, then ~/.dashscope/api_key); the key is never printed" },
  { long = "base-url", key = "base_url", arg = "URL", client = true, doc = client_doc("base_url") },
  { long = "quota-store", key = "quota", arg = "URL", client = true, doc = client_doc("quota") },
  { long = "json", key = "json", doc = "print the result as JSON on stdout (list: one object per task and line)" },
  { long = "quiet", short = "q", key = "quiet", doc = "no progress on stderr (errors are still printed)" },
  { long = "help", short = "h", key = "help", doc = "show help (of the command, after one)" },
}
args.VERSION = { long = "version", key = "version", doc = "print the version and exit" }

--- Options of the commands that follow a job; each command names those it takes.
args.JOB = {
  no_wait = { long = "no-wait", key = "no_wait",
    doc = "submit, print the task id and exit (follow it later with: dashscope wait ID)" },
  timeout = { long = "timeout", key = "timeout", arg = "S", convert = args.seconds,
    doc = "give up after S seconds of waiting and downloading (exit 3; the task goes on; default "
      .. text.seconds(dashscope.defaults.wait_timeout) .. ")" },
  output = { long = "output", short = "o", key = "output", arg = "PATH",
    doc = "download the video to PATH, or to stdout with -o - (default: print its URL, valid for 24 h)" },
  overwrite = { long = "overwrite", key = "overwrite", doc = "replace PATH when it exists" },
}

-- Field options. `foo_bar_url` is --foo-bar (the value may be a local file), any other field
-- --foo-bar; a few long names have a short alias.
local ALIASES = { driven_id = { "driven" }, page_no = { "page" } }

local BOOLEAN_WORDS = { ["true"] = true, yes = true, on = true, ["1"] = true,
                        ["false"] = false, no = false, off = false, ["0"] = false }

--- Whether a url field's word goes as it is: an http(s):// or oss:// URL, or "" (the Neovim plugin
--- asks too, before it expands a file name).
function args.is_url(s)
  return s == "" or s:find("^https?://") ~= nil or s:find("^oss://") ~= nil
end

-- A url field's argument is the user's own, on their own machine: anything but an http(s):// or
-- oss:// URL (or "") names a local file, marked as one (dashscope.file, checked now) and uploaded.
local function url_value(s, name, command)
  if args.is_url(s) then return s end
  local ok, file = pcall(dashscope.file, s)
  if not ok then
    if not dashscope.is_misuse(file) then error(file, 0) end
    usage(file.message .. "\n  (from " .. name .. ")", command)
  end
  return file
end

local function box_value(s)
  local box = {}
  for word in s:gmatch("[^,%s]+") do box[#box + 1] = tonumber(word) or word end
  if #box ~= 4 then return s end
  return box
end

-- Each type's metavar and conversion from a word.
local TYPES = {
  url = { arg = "PATH|URL", convert = url_value },
  string = { arg = "TEXT" },
  enum = { arg = "NAME" },
  integer = { arg = "N", convert = function(s) return tonumber(s) or s end },
  number = { arg = "X", convert = function(s) return tonumber(s) or s end },
  boolean = { arg = "BOOL", optional = true, convert = function(s)
    local b = BOOLEAN_WORDS[s:lower()]
    if b == nil then return s end
    return b
  end },
  bbox = { arg = "X1,Y1,X2,Y2", convert = box_value },
  -- the list's times: "YYYYMMDDhhmmss" (Beijing time) as it is, else epoch seconds
  time = { arg = "TIME", convert = function(s)
    if s:find("^%d%d%d%d%d%d%d%d%d%d%d%d%d%d$") then return s end
    return tonumber(s) or s
  end },
}

--- The option of a contract field (a rule of dashscope.models[...].fields or dashscope.task_filter).
function args.field_option(rule)
  local name = rule.name
  if rule.type == "url" then
    name = name:gsub("_url$", "")
  end
  local t = TYPES[rule.type] or { arg = "VALUE" }
  return { long = (name:gsub("_", "-")), rule = rule, arg = t.arg, optional = t.optional,
           convert = t.convert, aliases = ALIASES[rule.name] }
end

--- The options of a contract's fields, and { field name = long option name }.
function args.field_options(fields)
  local list, names = {}, {}
  for _, rule in ipairs(fields) do
    local o = args.field_option(rule)
    list[#list + 1] = o
    names[rule.name] = o.long
  end
  return list, names
end

local function index_options(options)
  local by_name, names = {}, {}
  for _, o in ipairs(options) do
    local all = { "--" .. o.long }
    if o.short then all[#all + 1] = "-" .. o.short end
    for _, a in ipairs(o.aliases or {}) do all[#all + 1] = "--" .. a end
    for _, n in ipairs(all) do
      assert(not by_name[n], "two options are named " .. n) -- a contract field shadowing a global
      by_name[n] = o
      names[#names + 1] = n
    end
  end
  return by_name, names
end

--- Raises "unknown WHAT 'word'", with the nearest of `candidates` as a suggestion.
function args.unknown(what, word, candidates, command)
  local hint = dashscope.nearest(word, candidates)
  usage("unknown " .. what .. " '" .. word .. "'" .. (hint and " (did you mean '" .. hint .. "'?)" or ""), command)
end

-- The value of option `o` named `name`, from "=value" or the words after argv[i]: the value's
-- word (true for a flag) and the index of the last word read.
local function option_word(o, name, value, argv, i, command)
  if not o.arg then
    if value then usage("option " .. name .. " takes no value", command) end
    return true, i
  elseif value ~= nil then
    return value, i
  end
  local nxt = argv[i + 1]
  if o.optional and (nxt == nil or BOOLEAN_WORDS[nxt:lower()] == nil) then
    return "true", i
  elseif nxt == nil then
    usage("option " .. name .. " needs a value (" .. o.arg .. ")", command)
  end
  return nxt, i + 1
end

-- Stores option `o`'s word in `got`: converted, with the word as typed kept for messages.
local function store(got, o, name, word, command)
  local value = word
  if o.convert then value = o.convert(word, name, command) end -- (may be false: no `and/or` here)
  if o.rule then
    got.fields[o.rule.name] = value
    got.raw[o.rule.name] = { text = word, option = name }
  else
    got.opts[o.key] = value
    if o.client then got.raw[o.key] = { text = word, option = name } end
  end
end

--- Reads argv[i...] against `options` into `got` ({ opts, fields, raw, args }): options are
--- "--name value", "--name=value" or "-x value"; "--" ends them. With `stop`, stops at the first
--- word that is not an option and returns its index.
function args.parse(argv, i, options, got, command, stop)
  local by_name, names = index_options(options)
  while i <= #argv do
    local a = argv[i]
    if a == "--" then
      for j = i + 1, #argv do got.args[#got.args + 1] = argv[j] end
      return #argv + 1
    elseif a:sub(1, 1) == "-" and a ~= "-" then
      local name, value = a:match("^(%-%-[^=]+)=(.*)$")
      name = name or a
      local o = by_name[name]
      if not o then args.unknown("option", name, names, command) end
      value, i = option_word(o, name, value, argv, i, command)
      store(got, o, name, value, command)
    elseif stop then
      return i
    else
      got.args[#got.args + 1] = a
    end
    i = i + 1
  end
  return i
end

return args
