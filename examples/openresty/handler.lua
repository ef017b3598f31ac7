-- The two locations of examples/openresty/nginx.conf. One dashscope client per worker, made on
-- the first /job (ngx.sleep, its `sleep`, works only inside a request). Every wait of the client,
-- the submit's included, yields the request through ngx.sleep, so the worker goes on serving other
-- requests (/ping) while a job runs.
local dashscope = require("dashscope")
local cjson = require("cjson.safe")

local handler = {}

local client -- this worker's

local function reply(status, body)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  ngx.say(cjson.encode(body))
end

local function error_body(err, statuses)
  return { error = { code = err.code, message = err.message, status = err.status,
                     request_id = err.request_id, task_id = err.task_id,
                     retryable = err.retryable }, statuses = statuses }
end

--- GET /job?image_url=...&audio_url=...[&template_id=...][&timeout=seconds]: submits a LivePortrait
--- job, waits for its end and answers the result (200) or the error (400 for a refused field, 502
--- for a failure of the service or the network).
function handler.job()
  local args = ngx.req.get_uri_args()
  if type(args.image_url) ~= "string" or type(args.audio_url) ~= "string" then
    return reply(400, { error = { code = "BadRequest",
                                  message = "give image_url and audio_url as query arguments" } })
  end
  if not client then
    local ok, c = pcall(dashscope.new, { sleep = ngx.sleep })
    if not ok then -- no API key, most likely
      ngx.log(ngx.ERR, "dashscope.new: ", c)
      return reply(500, { error = { code = "ClientError", message = tostring(c) } })
    end
    client = c
  end
  -- A field the contract refuses raises (before anything is sent): a 400 with its message. The
  -- pcall may be yielded across: LuaJIT allows it.
  local ok, task, err = pcall(client.liveportrait, client, {
    image_url = args.image_url, audio_url = args.audio_url, template_id = args.template_id,
  })
  if not ok then
    return reply(400, { error = { code = "InvalidParameter", message = tostring(task) } })
  end
  if not task then
    return reply(502, error_body(err))
  end
  local statuses = {}
  local result
  result, err = task:wait {
    timeout = tonumber(args.timeout),
    on_status = function(_, status) statuses[#statuses + 1] = status end,
  }
  if not result then
    return reply(502, error_body(err, statuses))
  end
  reply(200, {
    task_id = result.task_id, status = result.status, video_url = result.video_url,
    usage = result.usage, submit_time = result.submit_time, end_time = result.end_time,
    statuses = statuses,
  })
end

--- GET /ping: answers at once (shows the worker is free while jobs wait).
function handler.ping()
  ngx.say('{"pong":true}')
end

return handler
