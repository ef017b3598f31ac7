-- A job's fingerprint, which tells a journal (journal.lua) that a key now names other fields: the
-- method and fields as one canonical text (keys sorted, a local file as its path), hashed. Not a
-- secret and not a signature: two texts that differ get different fingerprints but for a 2^-64
-- chance, which is all a changed job needs.
local localfile = require("dashscope.localfile")

-- Two 32-bit polynomial hashes of `s`: a fingerprint that tells a changed job, not a secret.
local function fingerprint(s)
  local a, b = 5381, 0
  for i = 1, #s do
    local c = s:byte(i)
    a = (a * 33 + c) % 4294967296
    b = (b * 65599 + c) % 4294967296
  end
  return string.format("%08x%08x", a, b)
end

-- `v` as one text, tables with their keys sorted, a local file as its path.
local function canonical(v, out)
  if localfile.is(v) then
    out[#out + 1] = "file:" .. v.path
  elseif type(v) == "table" then
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = tostring(k) end
    table.sort(keys)
    out[#out + 1] = "{"
    for _, k in ipairs(keys) do
      out[#out + 1] = string.format("%q=", k)
      local x = v[k]
      if x == nil then x = v[tonumber(k)] end
      canonical(x, out)
      out[#out + 1] = ","
    end
    out[#out + 1] = "}"
  elseif type(v) == "number" then
    out[#out + 1] = string.format("%.17g", v)
  else
    out[#out + 1] = string.format("%q", tostring(v))
  end
  return out
end


--- The fingerprint of a job of `method` with `fields`: 16 hex digits.
local function digest(method, fields)
  return fingerprint(table.concat(canonical({ method, fields }, {})))
end

return digest
