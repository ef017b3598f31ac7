-- The one error value of the client: what `nil, err` returns for failures of the network or the
-- service. A table with `code`, `message`, `status`, `request_id`, `task_id`, `retryable` (and,
-- after retries, `attempts`), whose tostring reads `CODE: message (HTTP 401, request_id ...)`.
-- Misuse by the caller is not an error value: it raises (see check.lua).
local Error = { __name = "dashscope.Error" }
Error.__index = Error

function Error:__tostring()
  local where = {}
  if self.status then where[#where + 1] = "HTTP " .. tostring(self.status) end
  if self.task_id then where[#where + 1] = "task " .. tostring(self.task_id) end
  if self.request_id then where[#where + 1] = "request_id " .. tostring(self.request_id) end
  if self.attempts and self.attempts > 1 then where[#where + 1] = self.attempts .. " attempts" end
  local text = tostring(self.code or "Error") .. ": " .. tostring(self.message or "")
  if #where > 0 then
    text = text .. " (" .. table.concat(where, ", ") .. ")"
  end
  return text
end

local errors = {}

-- Plain-text replace, so a key full of pattern characters is still found.
local function scrub(text, secret)
  if type(text) ~= "string" or not secret or secret == "" then
    return text
  end
  local out, from = {}, 1
  while true do
    local i, j = text:find(secret, from, true)
    if not i then break end
    out[#out + 1] = text:sub(from, i - 1) .. "<api-key>"
    from = j + 1
  end
  out[#out + 1] = text:sub(from)
  return table.concat(out)
end

--- Makes an error value. `secret` (the API key, or a function that hides it: the transport's
--- scrub, so that the key itself never needs to be in Lua) is removed from the message if it ever
--- shows up.
function errors.new(fields, secret)
  if type(secret) == "function" then
    if type(fields.message) == "string" then fields.message = secret(fields.message) end
  else
    fields.message = scrub(fields.message, secret)
  end
  if fields.retryable == nil then
    fields.retryable = false
  end
  return setmetatable(fields, Error)
end

--- True for values made by errors.new.
function errors.is(value)
  return getmetatable(value) == Error
end

return errors
