-- JSON for the client: lua-cjson underneath, with its two surprises handled once, here.
--
-- * Debian's lua-cjson 2.1.0 decodes every number as a float on Lua 5.3+, so `212` arrives as
--   `212.0`. The service sends integers (bbox coordinates, fps, page counts, epoch milliseconds)
--   that users compare and print, so decode turns every integral float back into an integer
--   (core.integers, in C).
-- * The encoder is a private cjson instance: the user's own `require "cjson"` settings are
--   neither read nor changed.
-- * Inside Neovim, without lua-cjson on the path, Neovim's own copy of the same library (vim.json)
--   serves: a plugin then needs no cjson built for LuaJIT. Its instances encode an empty table as
--   `[]`, cjson 2.1.0's as `{}`: `{}` is asked for, as a model's empty `parameters` must be an object.
--
-- Every decoded answer is scrubbed of the API key here (core.scrub, in C), once, as it arrives:
-- this is the one door through which the service's text enters (http.classify decodes every
-- answer with it), so a server quoting the key back in a code, a message, a result field or a
-- list item shows it in no result, status or error. Texts that are not JSON (libcurl's messages,
-- storage hosts' XML) become error values, which errors.new scrubs.
local core = require("dashscope.core")
-- lua-cjson, else Neovim's vim.json (a global only Neovim sets); else require's own error.
local function library()
  local found, cjson_module = pcall(require, "cjson")
  if found then return cjson_module end
  local vim = rawget(_G, "vim")
  if type(vim) == "table" and type(vim.json) == "table" and type(vim.json.new) == "function" then
    return vim.json
  end
  error(cjson_module, 0)
end

local cjson = library().new()
if cjson.encode_empty_table_as_object then cjson.encode_empty_table_as_object(true) end

local json = {}

-- Nesting: an answer deeper than this is unreadable (BadResponse), and what the client sends was
-- checked to be shallower (check.jsonable, jsonable.DEPTH). Below core.scrub's own bound.
json.DEPTH = 100
cjson.decode_max_depth(json.DEPTH)
cjson.encode_max_depth(json.DEPTH + 2)

--- Decodes a JSON text. Returns the value, or nil and a short reason (never raises).
function json.decode(text)
  if type(text) ~= "string" then
    return nil, "not a string"
  end
  local ok, value = pcall(cjson.decode, text)
  if not ok then
    return nil, (tostring(value):gsub("^.-:%d+: ", ""))
  end
  if value == cjson.null then
    return nil, "null document"
  end
  -- Both walks in C (every answer passes here): the integers, then the key, which the text
  -- itself shows whether any string of the answer can hold (core.scrub reads it for that).
  return core.scrub(core.integers(value), text)
end

--- Encodes a value already checked to be JSON-able (see check.jsonable).
function json.encode(value)
  return cjson.encode(value)
end

json.null = cjson.null

return json
