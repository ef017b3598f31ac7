-- task:download(path, opts): the result video, streamed to a file (docs/protocol.md §4.2: the URL is
-- signed, lasts 24 h, and lives on a storage host). The storage host gets no Authorization header
-- and no key (http.lua sends those to the service only).
--
-- To a path, the way a careful Unix tool writes one: the bytes go to a new file beside `path`,
-- created O_CREAT|O_EXCL|O_NOFOLLOW under a name with 64 random bits (`path.part-<hex>`, so
-- nobody can plant a link there in advance, and one planted anyway is refused, never followed),
-- written through that descriptor, synced, then put in place in one step (without `overwrite`,
-- by link(2), so a file that appeared at `path` meanwhile is not replaced). `path` is therefore
-- either the whole video or untouched, and on any failure the temporary file is removed.
--
-- To an open Lua file handle (io.stdout): the bytes are written to its descriptor as they arrive,
-- with no temporary file; once a byte has gone out a failure is not retried (it would repeat it).
--
-- Failures: a write that fails (ENOSPC, EIO, EFBIG, EPIPE) is WriteError and never retried; a
-- video over `max_download` bytes is TooLarge; `timeout` bounds the whole transfer, retries
-- included (Timeout).
local check = require("dashscope.check")
local core = require("dashscope.core")
local errors = require("dashscope.errors")
local localfile = require("dashscope.localfile")
local http = require("dashscope.http")
local url = require("dashscope.url")

local download = {}

local OPTIONS = {
  { name = "on_progress", type = "function", doc = "function(done, total) with bytes written and expected (total nil when unknown)" },
  { name = "timeout", type = "number", min = 0.001, doc = "seconds for the whole transfer, retries included (default 3600; Timeout); an unfinished task is waited for first, within the client's wait_timeout, not counted here" },
  { name = "overwrite", type = "boolean", doc = "replace an existing file at path (default false: that is an error); not with a file handle" },
  { name = "max_download", type = "integer", min = 1, doc = "bytes: a larger video is refused (TooLarge) and nothing is kept (default: no cap)" },
  { name = "on_temp", type = "function", doc = "function(tmp_path) called with the temporary file's name just before the file is made beside path (a journal writes the name down first, so that a run killed at any moment of the download leaves no file it does not know of); a name found taken is passed over and the next one given; not with a file handle" },
}
download.OPTIONS = OPTIONS

local TRIES = 8 -- random names tried before giving up (each collision is a 2^-64 chance, or a plant)

local function fail(code, message, t, retryable)
  return nil, errors.new { code = code, message = message, task_id = t.id, retryable = retryable or false }
end

-- Classifies one attempt: a failed write or a video over the cap ends the download at once; a
-- URL past its lifetime is ResultExpired (http.storage_expired says how that is told).
local function classify(o, stream)
  return function(purpose, resp, terr)
    local outcome = terr and terr.outcome
    if outcome == "write" then
      return nil, errors.new { code = "WriteError", retryable = false,
        message = "cannot write the video: " .. tostring(terr.message) }
    elseif outcome == "too_large" and o.max_download then
      return nil, errors.new { code = "TooLarge", retryable = false,
        message = string.format("the video is larger than max_download (%d bytes)", o.max_download) }
    end
    local body, err, retry_after = http.classify_storage(purpose, resp, terr)
    if err and stream and terr and (terr.written or 0) > 0 then
      err = errors.with(err, { retryable = false }) -- bytes already went out: a retry would send them twice
    end
    if err and http.storage_expired(resp) then
      err = errors.with(err, { code = "ResultExpired",
        message = "the video URL has expired (results are kept 24 h after the task ends): " .. err.message })
    end
    return body, err, retry_after
  end
end

-- Runs the transfer of `url` into descriptor `fd` until `deadline` (clock seconds): the response,
-- or nil and err. Calls on_progress as bytes arrive.
local function fetch(engine, video_url, fd, o, deadline, stream)
  local call = engine:start {
    method = "GET", url = video_url, purpose = "download", classify = classify(o, stream),
    output = fd, truncate = not stream, max_output = o.max_download, progress = o.on_progress ~= nil,
    timeout = math.max(0.001, deadline - core.now()), deadline = deadline,
    max_body = 64 * 1024, -- for an error page only: the video goes to the file
  }
  local last_done, last_total
  local function finished()
    local rq = call.request
    if o.on_progress and rq then
      local done, total = rq:progress()
      if done ~= last_done or total ~= last_total then
        last_done, last_total = done, total
        o.on_progress(done, total)
      end
    end
    return call.done
  end
  local ok, in_time = pcall(engine.run, engine, finished, deadline)
  if not ok or not in_time then
    -- Time is up for the whole download (or on_progress raised): the attempt in flight ends now
    -- (a call held back for a retry ends at the next step, its deadline passed).
    engine:cancel(call)
    engine:run(function() return call.done end)
    if not ok then error(in_time, 0) end
    if not call.body_value then
      return nil, errors.new { code = "Timeout", retryable = true,
        message = string.format("the download did not finish within its timeout (%g s)", o.timeout or 3600) }
    end
  end
  if call.err then
    return nil, call.err
  end
  local written = call.body_value.written
  if o.on_progress and written ~= last_done then o.on_progress(written, written) end
  return call.body_value
end

-- The destination: a handle to stream to (stream = true), or a path. Raises on misuse.
local function destination(path)
  local handle = io.type(path)
  if handle == "file" then
    return core.fileno(path), true
  elseif handle == "closed file" then
    check.fail("task:download", "the file handle is closed")
  end
  if type(path) ~= "string" or path == "" then
    check.fail("task:download", "path must be a non-empty string or an open file handle (got "
      .. (path == "" and '""' or type(path)) .. ")")
  end
  if path:find("%z") then -- C would see a shorter path: refused before anything is touched
    check.fail("task:download", "path must not contain NUL (got " .. localfile.quote(path) .. ")")
  end
  return nil, false
end

-- A new temporary file beside `path`, noted in `made` (made.fd, made.tmp) the moment it exists, so
-- that whoever unwinds can remove it. Each name goes to announce(name), if given, before the file is
-- made: a process killed between the two leaves a name written down and no file, never a file whose
-- name nobody wrote down. True, or nil and why.
local function create_temp(path, made, announce)
  local why = "no name"
  for _ = 1, TRIES do
    local hex, rerr = core.random_hex(8)
    if not hex then
      return nil, "no random name: " .. tostring(rerr)
    end
    local tmp = path .. ".part-" .. hex
    if announce then announce(tmp) end
    local fd, err, exists = core.create_new(tmp)
    if fd then
      made.fd, made.tmp = fd, tmp
      return true
    end
    why = err
    if not exists then break end
  end
  return nil, why
end

-- The video of `t` into descriptor `fd` (a temporary file, or a handle's): the response, or nil
-- and err. Checks that it came whole.
local function transfer(t, video_url, fd, o, stream)
  local deadline = core.now() + (o.timeout or 3600)
  local resp, ferr = fetch(t._client._engine, video_url, fd, o, deadline, stream)
  if not resp then
    return nil, errors.with(ferr, { task_id = t.id })
  end
  local expected = tonumber(resp.headers and resp.headers["content-length"])
  if expected and resp.written ~= expected then
    return fail("NetworkError", string.format("the video came short: %.0f of %.0f bytes", resp.written, expected), t, true)
  end
  return resp
end

-- The video into a new temporary file beside `path`, then put in place: the path, or nil and err.
local function to_file(t, video_url, path, o, made)
  local created, why = create_temp(path, made, o.on_temp) -- the directory is writable: else a clear error, nothing sent
  if not created then
    return fail("WriteError", "cannot write beside " .. path .. ": " .. tostring(why), t)
  end
  local fd = made.fd
  local resp, ferr = transfer(t, video_url, fd:fileno(), o, false)
  if not resp then
    return nil, ferr
  end
  local synced, serr = fd:sync()
  local closed, cerr = fd:close()
  if not (synced and closed) then
    return fail("WriteError", "cannot write the video: " .. tostring(serr or cerr), t)
  end
  local placed, perr, exists = core.place(made.tmp, path, o.overwrite)
  if not placed then
    if exists then
      return fail("FileExists", path .. " appeared during the download (opts.overwrite = true replaces it)", t)
    end
    return fail("WriteError", "cannot rename the download to " .. path .. ": " .. tostring(perr), t)
  end
  made.tmp = nil -- in place: nothing to remove
  return path
end

--- The method: see the header.
function download.run(t, path, opts)
  local out, stream = destination(path)
  local o = check.fields(OPTIONS, opts or {}, "task:download")
  if stream and (o.overwrite ~= nil or o.on_temp) then
    check.fail("task:download", (o.on_temp and "on_temp" or "overwrite") .. " is for a path, not a file handle")
  end
  if not t:ended() then
    local done, err = t:wait()
    if not done then return nil, err end
  end
  local result = t:result()
  if t:status() ~= "SUCCEEDED" then
    return fail("NoVideo", "the task ended " .. t:status() .. ": there is no video", t)
  end
  if not url.remote(result.video_url) then -- http(s), a host, no credentials
    return fail("NoVideo", "the task's answer carries no video URL the client may fetch", t)
  end
  if stream then
    local resp, err = transfer(t, result.video_url, out, o, true)
    if not resp then return nil, err end
    return path
  end
  if not o.overwrite and core.file_exists(path) then
    return fail("FileExists", path .. " exists (opts.overwrite = true replaces it)", t)
  end
  -- From the temporary file's creation to its rename, one protected region: whatever is raised
  -- in it (a raising on_progress, the CLI's signal hook) first removes the file, then goes on.
  local made = {}
  local ok, done, err = pcall(to_file, t, result.video_url, path, o, made)
  if made.fd then made.fd:close() end
  if not ok or not done then
    if made.tmp then os.remove(made.tmp) end
    if not ok then error(done, 0) end
    return nil, err
  end
  return path
end

return download
