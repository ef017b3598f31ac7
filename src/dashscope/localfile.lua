-- Local files as job inputs: the LocalFile value dashscope.file(path) makes, which is the only way
-- a local file enters a job (text from outside can never be one; a string in a url field is always
-- a remote reference, check.lua). Checked when it is made: a readable, non-empty regular file,
-- opened without blocking (src/fs.c). Uploading one is files.lua's business; this file needs no
-- network, so the checker can know the type without pulling in HTTP.
local core = require("dashscope.core")
local misuse = require("dashscope.misuse")

local localfile = {}

local LocalFile = { __name = "dashscope.LocalFile" }
LocalFile.__index = LocalFile
function LocalFile:__tostring()
  return "local file " .. self.path
end

--- Quotes a path for a message, control bytes escaped (a name may hold a newline).
function localfile.quote(s)
  if #s > 60 then s = s:sub(1, 57) .. "..." end
  return '"' .. s:gsub('[%c"\\]', function(c) return ("\\%d"):format(c:byte()) end) .. '"'
end
local quote = localfile.quote

--- A LocalFile for `path` { path, size, name }: a readable, non-empty regular file, checked now
--- without blocking. Raises a misuse otherwise, as `what` ("dashscope.file").
function localfile.new(path, what)
  if type(path) ~= "string" or path == "" then
    misuse.raise(what, "path must be a non-empty string (got " .. (path == "" and '""' or type(path)) .. ")", "path")
  end
  if path:find("%z") then
    misuse.raise(what, "path must not contain NUL (got " .. quote(path) .. ")", "path")
  end
  local size, why = core.file_check(path)
  if not size then
    misuse.raise(what, "cannot use " .. quote(path) .. ": " .. why
      .. " (a local file must be a readable, non-empty regular file)", "path")
  end
  local name = (path:match("([^/]+)/*$") or "file"):gsub("[^%w%._-]", "_")
  return setmetatable({ path = path, size = size, name = name }, LocalFile)
end

--- True for the values localfile.new makes.
function localfile.is(value)
  return getmetatable(value) == LocalFile
end

return localfile
