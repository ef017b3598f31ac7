-- The plugin's commands, as data: what each takes, how its words become a call of init.lua, and
-- how its arguments complete. A model's or a detector's command takes the contract's required
-- fields in order, then any field as name=value, named as the CLI names its options (image,
-- audio, template-id, video-fps ...) and converted as the CLI converts them (dashscope.cli.args:
-- one owner of "a field from a word"). What the user types is their own: in a URL field a URL
-- goes as it is and anything else names a file of theirs (~ expanded), passed as dashscope.file.
-- The table is read at startup without loading the library; the contracts are read on first use.
local commands = {}

--- Each command: name, what it does (desc), its arguments for :help and errors (usage), and how
--- its words are used: `model` (a job), `detect` (a detector, by its first word), `filter` (the
--- task list's filter) or `task` (a task id first, then `rest`).
commands.LIST = {
  { name = "DashscopeVideoRetalk", model = "videoretalk", desc = "Lip-sync a video to new audio",
    usage = "{video} {audio} [ref-image={image}] [field=value ...]" },
  { name = "DashscopeEmoji", model = "emoji", desc = "Animate a face photo with an expression template",
    usage = "{image} {driven-id} [field=value ...]" },
  { name = "DashscopeLivePortrait", model = "liveportrait", desc = "Animate a portrait photo from speech",
    usage = "{image} {audio} [template-id=normal|calm|active] [field=value ...]" },
  { name = "DashscopeDetect", detect = { emoji = "emoji_detect", liveportrait = "liveportrait_detect" },
    desc = "Check a face photo for a model", usage = "{emoji|liveportrait} {image}" },
  { name = "DashscopeStatus", task = "status", optional = true, desc = "Ask for a task's status; show the tasks",
    usage = "[task-id]" },
  { name = "DashscopeCancel", task = "cancel", desc = "Cancel a PENDING task", usage = "{task-id}" },
  { name = "DashscopeDownload", task = "download", rest = "path", bang = true,
    desc = "Save a task's video (! replaces an existing file)", usage = "{task-id} [path]" },
  { name = "DashscopeList", filter = true, desc = "Show a page of the account's task list",
    usage = "[status=...] [model=...] [page-size=N] [field=value ...]" },
}

local BY_NAME = {}
for _, c in ipairs(commands.LIST) do BY_NAME[c.name] = c end

local function plugin()
  return require("dashscope_nvim")
end

-- The options of a contract's fields, by CLI name and by field name; and the required ones in order.
local function options_of(fields)
  local args = require("dashscope.cli.args")
  local by, required = {}, {}
  for _, rule in ipairs(fields) do
    local o = args.field_option(rule)
    by[o.long], by[rule.name] = o, o
    for _, alias in ipairs(o.aliases or {}) do by[alias] = o end
    if rule.required then required[#required + 1] = o end
  end
  return by, required
end

-- The contract fields of a command (plus its detector's when `which` names one).
local function fields_of(command, which)
  local dashscope = plugin().library()
  if command.model then return dashscope.models[command.model].fields end
  if command.detect then
    local method = command.detect[which]
    return method and dashscope.models[method].fields
  end
  return dashscope.task_filter
end

-- The value of option `o` from `word`.
local function convert(o, word)
  if o.rule.type == "url" then
    if require("dashscope.cli.args").is_url(word) then return word end
    return plugin().library().file(vim.fn.expand(word))
  end
  return o.convert and o.convert(word) or word
end

--- The fields a command's words give: required fields in order, any field as name=value. Raises
--- (a usage error: the plugin notifies it) naming the word it cannot place.
function commands.fields(command, fields, words)
  local by, required = options_of(fields)
  local given, next_required = {}, 1
  for _, word in ipairs(words) do
    local name, value = word:match("^([%a][%w_-]*)=(.*)$")
    local o
    if name then
      o = by[name]
      if not o then
        local nearest = plugin().library().nearest(name, vim.tbl_keys(by))
        error(("%s: unknown field '%s'%s"):format(command.name, name,
          nearest and (" (did you mean '" .. nearest .. "'?)") or ""), 0)
      end
    else
      while required[next_required] and given[required[next_required].rule.name] ~= nil do
        next_required = next_required + 1
      end
      o, value = required[next_required], word
      if not o then error(("%s: too many arguments; usage: %s"):format(command.name, command.usage), 0) end
    end
    given[o.rule.name] = convert(o, value)
  end
  return given
end

-- Runs `command` with the words the user typed (cmd: nvim_create_user_command's argument).
local function execute(command, cmd)
  local words, p = cmd.fargs, plugin()
  if command.model then
    return p.submit(command.model, commands.fields(command, fields_of(command), words))
  elseif command.detect then
    local method = command.detect[words[1] or ""]
    if not method then error(command.name .. ": usage: " .. command.usage, 0) end
    return p.detect(method, commands.fields(command, fields_of(command, words[1]), { unpack(words, 2) }))
  elseif command.filter then
    return p.list(commands.fields(command, fields_of(command), words))
  end
  local id = words[1]
  if (not id and not command.optional) or #words > (command.rest and 2 or 1) then
    error(command.name .. ": usage: " .. command.usage, 0)
  end
  return p[command.task](id, words[2], cmd.bang)
end

--- Runs the command named `name` (for plugin/dashscope.lua); a usage error is notified.
function commands.run(name, cmd)
  local ok, err = pcall(execute, BY_NAME[name], cmd)
  if not ok then require("dashscope_nvim.view").error(require("dashscope_nvim.view").message(err)) end
end

-- Candidates starting with `lead`.
local function starting(list, lead)
  local out = {}
  for _, s in ipairs(list) do
    if s:sub(1, #lead) == lead then out[#out + 1] = s end
  end
  return out
end

-- What a field's value may be, from `lead` (a file, one of the values, true/false).
local function values(o, lead, prefix)
  local list
  if o.rule.type == "url" then
    list = vim.fn.getcompletion(lead, "file")
  elseif o.rule.values then
    list = starting(o.rule.values, lead)
  elseif o.rule.type == "boolean" then
    list = starting({ "true", "false" }, lead)
  else
    return {}
  end
  for i, s in ipairs(list) do list[i] = prefix .. s end
  return list
end

--- Completion for command `name`: files for a URL field, a field's values, field names (name=),
--- the model of DashscopeDetect, this session's task ids, files for a download's path.
function commands.complete(name, lead, line)
  local command = BY_NAME[name]
  local before = vim.split(line, "%s+", { trimempty = false })
  local index = #before - 1 -- the word being completed: 1 is the first argument
  if command.task then
    if index == 1 then return starting(plugin().task_ids(), lead) end
    return command.rest and vim.fn.getcompletion(lead, "file") or {}
  end
  if command.detect and index == 1 then return starting(vim.tbl_keys(command.detect), lead) end
  local ok, fields = pcall(fields_of, command, before[2])
  if not ok or not fields then return {} end
  local by, required = options_of(fields)
  local field, partial = lead:match("^([%a][%w_-]*)=(.*)$")
  if field then return by[field] and values(by[field], partial, field .. "=") or {} end
  local out, position = {}, index - (command.detect and 1 or 0)
  if required[position] then out = values(required[position], lead, "") end
  for _, o in pairs(by) do
    local word = o.long .. "="
    if word:sub(1, #lead) == lead and not vim.tbl_contains(out, word) then out[#out + 1] = word end
  end
  return out
end

return commands
