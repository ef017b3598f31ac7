-- task:download(path, opts): the result video, streamed to a file (protocol.md §4.2: the URL is
-- signed, lasts 24 h, and lives on a storage host). Written under a temporary name beside `path`
-- and renamed only once complete, so `path` is either the whole video or untouched. The storage
-- host gets no Authorization header and no key (http.lua sends those to the service only).
local check = require("dashscope.check")
local errors = require("dashscope.errors")
local files = require("dashscope.files")
local http = require("dashscope.http")

local download = {}

local OPTIONS = {
  { name = "on_progress", type = "function", doc = "function(done, total) with bytes written and expected (total nil when unknown)" },
  { name = "timeout", type = "number", min = 0.001, doc = "seconds for the whole download (default 3600); an unfinished task is waited for first, within the client's wait_timeout" },
  { name = "overwrite", type = "boolean", doc = "replace an existing file at path (default false: that is an error)" },
}
download.OPTIONS = OPTIONS

local function fail(code, message, t)
  return nil, errors.new { code = code, message = message, task_id = t.id }
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- Runs the transfer of `url` into `tmp`: true, or nil and err. Calls on_progress as bytes arrive.
local function fetch(client, url, tmp, o)
  local call = http.start(client, {
    method = "GET", url = url, kind = "download", classify = http.classify_storage,
    output = tmp, progress = o.on_progress ~= nil, timeout = o.timeout or 3600,
    deadline = client:_now() + (o.timeout or 3600) + 60, -- room for the retries of a whole download
    max_body = 64 * 1024, -- for an error page only: the video goes to the file
  })
  local last_done, last_total
  client:_run(function()
    local rq = call.request
    if o.on_progress and rq then
      local done, total = rq:progress()
      if done ~= last_done or total ~= last_total then
        last_done, last_total = done, total
        o.on_progress(done, total)
      end
    end
    return call.done
  end)
  if call.err then
    return nil, call.err
  end
  local bytes = o.on_progress and files.size(tmp)
  if bytes and bytes ~= last_done then o.on_progress(bytes, bytes) end
  return call.body_value
end

--- The method: see the header.
function download.run(t, path, opts)
  if type(path) ~= "string" or path == "" then
    check.fail("task:download", "path must be a non-empty string", 3)
  end
  local o = check.fields(OPTIONS, opts or {}, "task:download", 3)
  if not t:ended() then
    local done, err = t:wait()
    if not done then return nil, err end
  end
  local result = t:result()
  if t:status() ~= "SUCCEEDED" then
    return fail("NoVideo", "the task ended " .. t:status() .. ": there is no video", t)
  end
  if not require("dashscope.url").remote(result.video_url) then -- http(s), a host, no credentials
    return fail("NoVideo", "the task's answer carries no video URL the client may fetch", t)
  end
  if exists(path) and not o.overwrite then
    return fail("FileExists", path .. " exists (opts.overwrite = true replaces it)", t)
  end
  local tmp = string.format("%s.part-%x", path, math.floor(t._client:_now() * 1e6) % 0x7fffffff)
  local f, why = io.open(tmp, "wb") -- the directory is writable: else a clear error, nothing sent
  if not f then
    return fail("WriteError", "cannot write beside " .. path .. ": " .. tostring(why), t)
  end
  f:close()
  local ok, resp, ferr = pcall(fetch, t._client, result.video_url, tmp, o)
  if not ok or not resp then
    os.remove(tmp)
    if not ok then error(resp, 0) end -- a raising on_progress: no partial file left behind
    if ferr.status == 403 and tostring(ferr.message):lower():find("expired") then
      ferr.code = "ResultExpired"
      ferr.message = "the video URL has expired (results are kept 24 h after the task ends): " .. ferr.message
    end
    ferr.task_id = t.id
    return nil, ferr
  end
  local expected = tonumber(resp.headers and resp.headers["content-length"])
  local size = files.size(tmp)
  if expected and size ~= expected then
    os.remove(tmp)
    return fail("NetworkError", string.format("the video came short: %s of %s bytes", tostring(size), tostring(expected)), t)
  end
  local renamed, rerr = os.rename(tmp, path)
  if not renamed then
    os.remove(tmp)
    return fail("WriteError", "cannot rename the download to " .. path .. ": " .. tostring(rerr), t)
  end
  return path
end

return download
