-- The one error value of the client: what `nil, err` returns for failures of the network or the
-- service. A table with `code`, `message`, `status`, `request_id`, `task_id`, `retryable` (and,
-- after retries, `attempts`; on a submit that may have created its task, `task_may_exist`), whose
-- tostring reads `CODE: message (HTTP 401, request_id ...)`.
-- Misuse by the caller is not an error value: it raises (see check.lua).
--
-- No error shows the API key: errors.new passes every string of the value (every field, nested
-- tables such as err.detect included) through core.scrub, which replaces any key a client of this
-- Lua state holds, and tostring scrubs its text again (a field set after errors.new). The
-- scrubbing is in C (src/scrub.c), so the key itself never needs to be in Lua.
local core = require("dashscope.core")

local Error = { __name = "dashscope.Error" }
Error.__index = Error

function Error:__tostring()
  local where = {}
  if self.status then where[#where + 1] = "HTTP " .. tostring(self.status) end
  if self.task_id then where[#where + 1] = "task " .. tostring(self.task_id) end
  if self.request_id then where[#where + 1] = "request_id " .. tostring(self.request_id) end
  if type(self.attempts) == "number" and self.attempts > 1 then where[#where + 1] = self.attempts .. " attempts" end
  local text = tostring(self.code or "Error") .. ": " .. tostring(self.message or "")
  if #where > 0 then
    text = text .. " (" .. table.concat(where, ", ") .. ")"
  end
  return core.scrub(text)
end

local errors = {}

--- Makes an error value from `fields` (the table itself becomes the error). Every string in it is
--- scrubbed of the API key (core.scrub knows every client's key).
function errors.new(fields)
  core.scrub(fields)
  if fields.retryable == nil then
    fields.retryable = false
  end
  return setmetatable(fields, Error)
end

--- The error of a call or wait that client:close() ended (closed from a callback, say): code
--- `Aborted`. `fields` (optional) adds to it, e.g. task_id, or `sent = true` for a submit that was
--- on its way (the task may exist).
function errors.closed(fields)
  fields = fields or {}
  local sent = fields.sent
  fields.sent = nil
  fields.code, fields.retryable = "Aborted", false
  fields.message = "the client was closed (client:close())"
  if sent then
    fields.message = fields.message .. " while the submit was on its way, so the task may or may not"
      .. " have been created: client:tasks() on a new client lists recent tasks."
    fields.task_may_exist = true
  end
  return errors.new(fields)
end

--- A new error value: `err`'s fields with `fields` over them. An error is not changed once made:
--- a caller that knows more (the task it was about, what it means here) makes a new one.
function errors.with(err, fields)
  local copy = {}
  for k, v in pairs(err) do copy[k] = v end
  for k, v in pairs(fields) do copy[k] = v end
  return errors.new(copy)
end

--- True for values made by errors.new.
function errors.is(value)
  return getmetatable(value) == Error
end

return errors
