-- A structure-aware mutator for response_fuzz (LLVMFuzzerCustomMutator calls it for half of the
-- mutations; libFuzzer's own byte-level ones do the rest). libFuzzer cannot see inside lua-cjson,
-- so byte flips rarely turn a JSON string into a number or an object into an array; this does it
-- on purpose: it decodes the body, changes one thing -- a value swapped for one of another type
-- or an extreme one, a key dropped, a known key added, the status or a header line changed --
-- and encodes the result. Inputs whose body is not JSON only get their status and headers
-- mutated. It never raises on purpose; if it does, the C side falls back to libFuzzer's mutation.
local cjson = require("cjson").new()
cjson.encode_sparse_array(true)
cjson.encode_invalid_numbers(true)

local random = math.random

local function pick(list)
  return list[random(#list)]
end

-- Values the service would never send where they land: other types, extremes, and strings the
-- client parses (statuses, time stamps, URLs).
local STRINGS = {
  "", "x", "SUCCEEDED", "FAILED", "PENDING", "RUNNING", "CANCELED", "UNKNOWN", "PRE-PROCESSING",
  "POST-PROCESSING", "SUSPENDED", "2025-12-26 11:33:03.146", "2025-12-26T11:33:03", "99999999999-01-01 00:00:00.0",
  "2025-99999999999-01 00:00:00", "2025-01-01 99999999999:00:00", "9-9-9 9:9:9.999999999999999999999",
  "0000-00-00 00:00:00", "https://example.com/1.mp4", "oss://x", "nan", "-1", "1e309", "%s%d%n",
  "sk-fuzz-0123456789", ("A"):rep(300), "\0", "\226\130\172", "<Code>x</Code>",
}
local NUMBERS = { 0, -0.0, 1, -1, 0.5, 2 ^ 53 + 1, -2 ^ 63, 2 ^ 63, 1e308, -1e308, 1 / 0, -1 / 0, 0 / 0, 4, 429, 1e-320 }
local KEYS = {
  "output", "task_id", "task_status", "request_id", "results", "video_url", "submit_time", "scheduled_time",
  "end_time", "usage", "code", "message", "msg", "data", "total", "total_page", "page_no", "page_size",
  "status", "pass", "bbox_face", "ext_bbox_face", "policy", "signature", "upload_dir", "upload_host",
  "oss_access_key_id", "expire_in_seconds", "max_file_size_mb", "x_oss_object_acl", "x_oss_forbid_overwrite",
}
local HEADERS = {
  "Retry-After: 0", "Retry-After: 4294967296", "Retry-After: 1e3", "Retry-After: -1",
  "Retry-After: Wed, 21 Oct 2015 07:28:00 GMT", "Retry-After: Wed, 99 Foo 99999999999 99:99:99 GMT",
  "Retry-After: Mon, 01 Jan 99999999999 00:00:00 GMT", "Retry-After: Mon, 01 Jan -1 00:00:00 GMT",
  "Content-Length: 0", "Content-Length: 18446744073709551616", "Content-Length: -5", "Content-Length: x",
  "Content-Type: application/xml", "X-Dup: a", "X-Dup: b",
}
local STATUSES = { 100, 200, 201, 204, 299, 300, 400, 401, 403, 404, 409, 429, 500, 502, 503, 504, 599, 999 }

local function some_value(depth)
  local r = random(10)
  if r <= 3 then return pick(STRINGS) end
  if r <= 5 then return pick(NUMBERS) end
  if r == 6 then return random(2) == 1 end
  if r == 7 then return cjson.null end
  if depth > 2 then return pick(STRINGS) end
  if r == 8 then return { some_value(depth + 1), some_value(depth + 1), some_value(depth + 1), some_value(depth + 1) } end
  local t = {}
  for _ = 1, random(3) do t[pick(KEYS)] = some_value(depth + 1) end
  return t
end

-- Every (table, key) of the tree, depth first.
local function slots(t, out, depth)
  if depth > 20 then return out end
  for k, v in pairs(t) do
    out[#out + 1] = { t, k }
    if type(v) == "table" then slots(v, out, depth + 1) end
  end
  return out
end

local function tables(t, out, depth)
  out[#out + 1] = t
  if depth > 20 then return out end
  for _, v in pairs(t) do
    if type(v) == "table" then tables(v, out, depth + 1) end
  end
  return out
end

local function mutate_json(value)
  local r = random(4)
  local all = slots(value, {}, 0)
  if r == 1 or #all == 0 then -- a known key, somewhere
    local t = pick(tables(value, {}, 0))
    t[pick(KEYS)] = some_value(0)
  elseif r == 2 then -- a key gone
    local s = pick(all)
    s[1][s[2]] = nil
  else -- a value replaced
    local s = pick(all)
    s[1][s[2]] = some_value(0)
  end
  return value
end

-- Splits an input into scenario, status line, header lines and body (status line nil: none).
local function split(input)
  local scenario, rest = input:sub(1, 1), input:sub(2)
  if rest:sub(1, 5) ~= "HTTP/" then
    return scenario, nil, {}, rest
  end
  local block_end = rest:find("\n\r?\n")
  local block, body
  if block_end then
    local _, stop = rest:find("\n\r?\n")
    block, body = rest:sub(1, block_end), rest:sub(stop + 1)
  else
    block, body = rest, ""
  end
  local lines = {}
  for line in block:gmatch("[^\n]+") do lines[#lines + 1] = (line:gsub("\r$", "")) end
  local status_line = table.remove(lines, 1)
  return scenario, status_line, lines, body
end

local function join(scenario, status_line, lines, body)
  if not status_line then
    return scenario .. body
  end
  local out = { scenario, status_line, "\r\n" }
  for _, line in ipairs(lines) do out[#out + 1] = line .. "\r\n" end
  out[#out + 1] = "\r\n"
  out[#out + 1] = body
  return table.concat(out)
end

--- One mutation of `input`, at most `max_size` bytes long (nil: leave it to libFuzzer).
return function(input, seed, max_size)
  math.randomseed(seed)
  if #input == 0 then return nil end
  local scenario, status_line, lines, body = split(input)
  local r = random(10)
  if r == 1 then -- another status (a status line appears if there was none)
    status_line = "HTTP/1.1 " .. pick(STATUSES) .. " X"
  elseif r == 2 then -- a header line added, or one dropped
    status_line = status_line or "HTTP/1.1 200 OK"
    if #lines > 0 and random(2) == 1 then
      table.remove(lines, random(#lines))
    else
      table.insert(lines, random(#lines + 1), pick(HEADERS))
    end
  elseif r == 3 then -- another scenario
    scenario = pick { "q", "s", "d", "l", "u", "c", "j", "x" }
  else
    local ok, value = pcall(cjson.decode, body)
    if not ok or type(value) ~= "table" then return nil end
    local encoded
    ok, encoded = pcall(cjson.encode, mutate_json(value))
    if not ok then return nil end
    body = encoded
  end
  local out = join(scenario, status_line, lines, body)
  if #out > max_size then return nil end
  return out
end
