-- The module a user requires: `require "dashscope"`. Lua on top, as LuaSocket's socket.lua over
-- socket.core: this file is the entry, over the C core `dashscope.core`, which needs nothing from
-- Lua. It holds the public functions and, for tools (the CLI, an editor's completion), the
-- contracts as data: the models, the client options and their defaults, the task-list filter, and
-- the helpers the checker words its messages with. The Client class is client.lua's.
local core = require("dashscope.core")
local check = require("dashscope.check")
local client = require("dashscope.client")
local config = require("dashscope.config")
local listing = require("dashscope.listing")
local localfile = require("dashscope.localfile")
local misuse = require("dashscope.misuse")
local models = require("dashscope.models")
local values = require("dashscope.values")

local dashscope = {
  VERSION = core.VERSION,
  models = models,
  options = config.OPTIONS,
  defaults = config.DEFAULTS,
  task_filter = listing.TASK_FILTER,
  is_misuse = misuse.is,
  nearest = check.nearest,
  range_text = check.range_text,
}

--- dashscope.new(opts): a client. Raises on a bad option or when no API key is found.
function dashscope.new(opts)
  local c = client.new(config.settings(opts))
  return c -- not a tail call: a misuse's position is found by walking the frames
end

--- dashscope.check(method, fields): checks a job's fields as client[method] would (method: a
--- model method such as "liveportrait", or a detector) and raises the same misuse, naming the field
--- and the rule; true when they pass. Sends nothing: a batch checks every job before its first submit.
function dashscope.check(method, fields)
  local contract = type(method) == "string" and models[method]
  if not contract then
    local names = {}
    for name in pairs(models) do names[#names + 1] = name end
    table.sort(names)
    check.fail("dashscope.check", "method must be a model method: one of " .. table.concat(names, ", ")
      .. " (got " .. values.show(method) .. ")", "method", "enum")
  end
  check.fields(contract.fields, fields, method)
  return true
end

--- dashscope.file(path): a local file for a url field (or client:submit's input), checked now: a
--- readable, non-empty regular file, opened without blocking. Raises otherwise. See localfile.lua.
function dashscope.file(path)
  local file = localfile.new(path, "dashscope.file")
  return file -- not a tail call: a misuse's position is found by walking the frames
end

return dashscope
