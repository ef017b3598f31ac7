-- Local files as job inputs (docs/protocol.md §8). A local file enters a job only as a value that text
-- from outside can never be: dashscope.file(path), a LocalFile, checked when it is made (a readable,
-- non-empty regular file, opened without blocking: see src/fs.c). A string in a url field is always
-- a remote reference (check.lua). Each LocalFile in a job is uploaded through the service's
-- temporary-upload flow for the model that will read it, and the field becomes that upload's
-- oss:// URL (48 h, bound to the model).
--
-- Per model, one upload policy (GET /uploads?action=getPolicy) is reused until shortly before it
-- expires; each file is posted to the policy's upload host as multipart form data, `file` last,
-- without the API key; the inputs of one job go up concurrently. Object names are unique (a
-- per-process prefix, a counter and the file's own name), since the host refuses to overwrite.
-- At upload time the file is opened again and must still be the size it was checked at; the bytes
-- sent are read from that descriptor (src/form.c), so what goes up is the file that was checked.
-- Whatever fails returns nil and err (code ReadError for the file itself); nothing is left running.
local core = require("dashscope.core")
local errors = require("dashscope.errors")
local http = require("dashscope.http")
local localfile = require("dashscope.localfile")
local url = require("dashscope.url")

local files = {}

local quote = localfile.quote

-- Per engine (one per client), model -> { data = the upload policy, expires = client clock }.
-- Owned here; weak, so a client nobody holds takes its cache along.
local policies = setmetatable({}, { __mode = "k" })
-- LocalFile -> { [model] = oss:// URL }: what each file was uploaded to (a LocalFile itself is
-- never written: it is localfile.lua's). Weak: the entry goes with the file.
local uploads = setmetatable({}, { __mode = "k" })

local OSS_HEADER = "X-DashScope-OssResourceResolve: enable"

local function has_oss_url(value)
  if type(value) == "string" then
    return value:find("^oss://") ~= nil
  elseif type(value) == "table" then
    for _, v in pairs(value) do
      if has_oss_url(v) then return true end
    end
  end
  return false
end

--- The header a request whose `input` names an oss:// URL anywhere must carry (docs/protocol.md §8.4),
--- or nil.
function files.oss_header(input)
  return has_oss_url(input) and OSS_HEADER or nil
end

local MIME = {
  png = "image/png", jpg = "image/jpeg", jpeg = "image/jpeg", bmp = "image/bmp",
  webp = "image/webp", mp4 = "video/mp4", avi = "video/x-msvideo", mov = "video/quicktime",
  wav = "audio/wav", mp3 = "audio/mpeg", aac = "audio/aac",
}

local function mime_type(name)
  local ext = name:match("%.([%w]+)$")
  return ext and MIME[ext:lower()] or "application/octet-stream"
end

-- Object names: unique within the process (counter) and across processes (random prefix), with
-- only characters every object store takes.
local prefix, counter
local function object_name(file)
  if not prefix then -- the process's start, to the microsecond, and where its heap lies
    local addr = tostring(files):match("0x(%x+)") or ""
    prefix = string.format("%x%06x%s", os.time(), math.floor(core.now() * 1e6) % 0x1000000, addr:sub(-6))
  end
  counter = (counter or 0) + 1
  return string.format("%s-%d-%s", prefix, counter, file.name) -- file.name holds only those

end

local function policy_shape(body)
  local d = body.data
  if type(d) ~= "table" then return nil, "no data" end
  for _, k in ipairs { "policy", "signature", "upload_dir", "upload_host", "oss_access_key_id" } do
    if type(d[k]) ~= "string" or d[k] == "" then return nil, "no data." .. k end
  end
  if not url.remote(d.upload_host) then return nil, "data.upload_host is not an http(s) URL without credentials" end
  return true
end

local EXPIRY_MARGIN = 10 -- seconds before a policy's end from which a new one is fetched

-- The policy for `model` (cached per engine), or nil and err.
local function policy(engine, model, refresh)
  local cache = policies[engine]
  if not cache then
    cache = {}
    policies[engine] = cache
  end
  local p = cache[model]
  local now = engine:now()
  if p and not refresh and now < p.expires then
    return p.data
  end
  local body, err = engine:call {
    method = "GET", purpose = "query", expect = policy_shape,
    path = "/uploads?action=getPolicy&model=" .. model,
  }
  if not body then
    return nil, err
  end
  local life = tonumber(body.data.expire_in_seconds) or 300
  cache[model] = { data = body.data, expires = now + math.max(0, life - EXPIRY_MARGIN) }
  return body.data
end

local function too_large(file, data)
  local mb = tonumber(data.max_file_size_mb)
  if mb and file.size > mb * 1024 * 1024 then
    return string.format("%s is %d bytes, over the %g MB the service takes for this model",
      file.path, file.size, mb)
  end
end

-- The file could not be read as it was checked: gone, another size, unreadable. Never retried.
local function read_error(file, why)
  return errors.new { code = "ReadError", retryable = false,
    message = "cannot upload " .. quote(file.path) .. ": " .. why .. "; nothing was submitted" }
end

-- Classifies an upload: the storage host's answer, or a file that failed its check as it was read
-- (the transfer's outcome "read", src/form.c). The refusal of a policy past its time is noted in
-- `expired` (error -> true).
local function classify_upload(file, expired)
  return function(purpose, resp, terr)
    if terr and terr.outcome == "read" then
      return nil, read_error(file, (tostring(terr.message):gsub("^[^:]*: ", "")))
    end
    local body, err, retry_after = http.classify_storage(purpose, resp, terr)
    if err and http.storage_expired(resp) then expired[err] = true end
    return body, err, retry_after
  end
end

-- Starts posting `file` under policy `data`; on_done(oss_url or nil, err), perhaps at once.
local function post(engine, file, data, expired, on_done)
  -- Opened again now: still there, still a regular file of the size it was checked at.
  local size, why = core.file_check(file.path)
  if size ~= file.size then
    return on_done(nil, read_error(file, size and string.format("it is now %d bytes, not the %d it was checked at",
      size, file.size) or why))
  end
  local key = data.upload_dir .. "/" .. object_name(file)
  local form = {
    { name = "OSSAccessKeyId", value = data.oss_access_key_id },
    { name = "Signature", value = data.signature },
    { name = "policy", value = data.policy },
    { name = "key", value = key },
    { name = "x-oss-object-acl", value = tostring(data.x_oss_object_acl or "private") },
    { name = "x-oss-forbid-overwrite", value = tostring(data.x_oss_forbid_overwrite or "true") },
    { name = "success_action_status", value = "200" },
    { name = "x-oss-content-type", value = mime_type(file.name) },
    { name = "file", file = file.path, size = file.size, filename = file.name, type = mime_type(file.name) },
  }
  local call
  call = engine:start {
    method = "POST", url = data.upload_host, form = form, purpose = "upload",
    classify = classify_upload(file, expired), headers = { "Accept: application/json" },
    max_body = 64 * 1024,
    on_done = function(_, err)
      -- A retry that finds its own object there: the first attempt landed, its answer did not.
      if err and err.code == "FileAlreadyExists" and call.attempts > 1 then
        err = nil
      end
      if err then
        local was_expired = expired[err]
        if err.code ~= "ReadError" then
          err = errors.with(err, { message = "uploading " .. quote(file.path) .. ": " .. tostring(err.message) })
        end
        expired[err] = was_expired
        return on_done(nil, err)
      end
      on_done("oss://" .. key)
    end,
  }
end

--- Uploads every LocalFile in `list` for `model`, concurrently, setting each one's `url` (an
--- oss:// URL). True, or nil and the first error.
function files.upload(engine, model, list)
  for attempt = 1, 2 do
    local data, err = policy(engine, model, attempt > 1)
    if not data then
      return nil, err
    end
    for _, file in ipairs(list) do
      local why = too_large(file, data)
      if why then
        return nil, errors.new { code = "FileTooLarge", message = why }
      end
    end
    local left, first_err, expired = 0, nil, {}
    for _, file in ipairs(list) do
      if not files.uploaded(file, model) then
        left = left + 1
        post(engine, file, data, expired, function(oss_url, perr)
          left = left - 1
          if oss_url then
            local urls = uploads[file] or {}
            uploads[file] = urls
            urls[model] = oss_url
          else
            first_err = first_err or perr
          end
        end)
      end
    end
    engine:run(function() return left == 0 end)
    -- A policy that expired on the way (clock skew, a slow upload): once more with a new one.
    if not (first_err and expired[first_err]) or attempt == 2 then
      if first_err then return nil, first_err end
      return true
    end
  end
end

--- The oss:// URL `file` (a LocalFile) was uploaded to for `model`, or nil.
function files.uploaded(file, model)
  local urls = uploads[file]
  return urls and urls[model]
end

--- Replaces every LocalFile in `input` (a table of field values) by its oss:// URL for `model`,
--- uploading them first. True when any was replaced (the request then needs the OSS header), or
--- nil and err.
function files.resolve(engine, model, input)
  local list = {}
  for _, v in pairs(input) do
    if localfile.is(v) then list[#list + 1] = v end
  end
  if #list == 0 then
    return false
  end
  local ok, err = files.upload(engine, model, list)
  if not ok then
    return nil, err
  end
  for k, v in pairs(input) do
    if localfile.is(v) then input[k] = files.uploaded(v, model) end
  end
  return true
end

return files
