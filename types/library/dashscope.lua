---@meta dashscope

-- LuaCATS annotations of lua-dashscope for lua-language-server (LuaLS): a definition file, never
-- loaded by Lua, in the library/ of the addon that types/ is (types/README.md). The driver for
-- libuv is in types/library/dashscope/uv.lua. spec/types_spec.lua checks these annotations against
-- the module. ---@async marks the functions that may run the client's wait loop, and so call its
-- `sleep` (which may yield): call them from a coroutine when that sleep yields.

-- Enumerations

---A task's status, as the service reports it.
---@alias dashscope.TaskStatus
---| "PENDING" # queued, not started (a handle from client:task(id) says so until its first query)
---| "PRE-PROCESSING" # videoretalk only
---| "RUNNING" # running
---| "POST-PROCESSING" # videoretalk only
---| "SUCCEEDED" # ended: the video is ready (its URL is valid for 24 h)
---| "FAILED" # ended: the result carries the service's code and message
---| "CANCELED" # ended: canceled while PENDING
---| "UNKNOWN" # ended: unknown id, or older than 24 h

---The statuses the task list can be filtered by (client:tasks, client:each_task).
---@alias dashscope.ListStatus
---| "PENDING"
---| "RUNNING"
---| "SUCCEEDED"
---| "FAILED"
---| "CANCELED"
---| "UNKNOWN"

---The `code` of an error value: the client's own codes below, or any code of the service
---(`InvalidApiKey`, `Throttling.RateQuota`, a FAILED task's code, ...).
---@alias dashscope.ErrorCode
---| "NetworkError" # DNS, connect, send or receive failed
---| "Timeout" # a request took longer than `timeout` (or its connection than `connect_timeout`)
---| "BadResponse" # a 2xx answer that is not JSON, is truncated, has the wrong shape or is larger than `max_body`
---| "Unknown" # an error status whose body is not the service's JSON error
---| "WaitTimeout" # the wait (task:wait, wait_all, wait_any, each_done) reached its deadline; the task may still finish (wait again)
---| "TaskCanceled" # the task was canceled
---| "TaskUnknown" # the service does not know the task (unknown id, or expired after 24 h)
---| "TaskFailed" # the task FAILED without a code from the service (otherwise err.code is the service's code)
---| "Aborted" # client:close() ended the call or wait (also from a callback); a submit on its way may have created the task
---| "DetectFailed" # client:emoji without boxes: the detector refused the image without a code (err.detect says more)
---| "FileTooLarge" # a local file is larger than the model's upload cap
---| "NoVideo" # task:download: the task did not succeed, or its answer has no video URL
---| "FileExists" # task:download: the path exists and opts.overwrite is not set
---| "WriteError" # task:download: the file cannot be written or renamed into place (full disk, I/O error, size limit); never retried
---| "TooLarge" # task:download: the video is larger than opts.max_download; nothing is kept
---| "ReadError" # a dashscope.file could not be uploaded as checked (deleted, truncated or grown since); nothing submitted
---| "ResultExpired" # task:download: the video URL has expired (results are kept 24 h)
---| "JournalBusy" # client:journal: another journal holds the file
---| "JournalDamaged" # client:journal: not a journal, or a line other than a torn last one does not read
---| "JournalError" # the journal's file could not be opened, read or written; nothing was sent after a failed write
---| "Ambiguous" # a journal's job was sent and its answer never read; the task list does not settle it (yet: retry_in; or candidates)
---| "JobChanged" # journal:submit: the key was sent before with other fields; nothing sent
---| "NoTask" # journal:download: the job has no task
---| "InvalidApiKey" # 401
---| "AccessDenied" # 403
---| "ModelNotFound" # 404
---| "InvalidParameter" # 400 on submit, or a FAILED task's code
---| "UnsupportedOperation" # 400: cancel of a task that is not PENDING
---| "Throttling.RateQuota" # 429
---| string # any other code of the service (InvalidFile.*, InvalidURL.*, InvalidImage.*, InternalError*, ...)

---The expression template of `client:emoji` (萌娃 kid, 打工 office, 经典 classic).
---@alias dashscope.DrivenId
---| "mengwa_kaixin"
---| "mengwa_dengyan"
---| "mengwa_gandong"
---| "mengwa_renzhen_1"
---| "mengwa_jidong"
---| "mengwa_kun_1"
---| "mengwa_jiaoxie"
---| "dagong_kaixin"
---| "dagong_yangwang"
---| "dagong_kunhuo"
---| "dagong_zhuakuang"
---| "dagong_wunai"
---| "dagong_weixiao"
---| "dagong_ganji"
---| "jingdian_tiaopi"
---| "jingdian_deyi_1"
---| "jingdian_qidai"
---| "jingdian_landuo_1"
---| "jingdian_xianqi"
---| "jingdian_lei"

---Head motion of `client:liveportrait`.
---@alias dashscope.LivePortraitTemplate
---| "normal" # moderate (the default)
---| "calm" # small
---| "active" # large, for singing

---What libcurl wants to know about a socket: readable, writable, or both.
---@alias dashscope.SocketMode
---| "r"
---| "w"
---| "rw"

---A URL the service downloads an input from: a string is always a remote reference, `http://`,
---`https://` or `oss://` (a path or `file://` string raises). A local file is a
---`dashscope.file(path)`, uploaded first (the temporary upload flow, for that model) and replaced by
---its `oss://` URL.
---@alias dashscope.Url string|dashscope.LocalFile

---A local file, made by `dashscope.file(path)`: checked to be a readable, non-empty regular file
---when made; uploaded when a job names it. `tostring` gives `local file PATH`.
---@class dashscope.LocalFile
---@field path string the path given
---@field size integer its size in bytes when checked (it must still be that size when uploaded)

---A box `{x1, y1, x2, y2}` in pixels: four integers, 0 <= x1 < x2, 0 <= y1 < y2.
---@alias dashscope.BBox integer[]

---A time filter of the task list: a string `"YYYYMMDDhhmmss"` in Beijing time (UTC+8), or a number
---of epoch seconds (`os.time()`).
---@alias dashscope.ListTime string|number

---The iterator of `client:each_done`: each task once per place in the array, with its result or its error.
---@alias dashscope.EachDoneIterator async fun(): dashscope.Task?, dashscope.Result?, dashscope.Error?

---The iterator of `client:each_task`: each item of every page; `false` and the error on a failure,
---after which the loop ends.
---@alias dashscope.EachTaskIterator async fun(): dashscope.TaskListItem|false|nil, dashscope.Error?

-- Client options (dashscope.new) and call options

---The quotas the client keeps on its own side, counted over a sliding second.
---@class dashscope.RateLimits
---@field submit? table<string, number> submits per second, per service model name (defaults: videoretalk 1, emoji-v1 1, liveportrait 5, emoji-detect-v1 1, liveportrait-detect 5)
---@field tasks? number status queries, cancels and task lists per second, all together (default 20)

---Options of `dashscope.new`, all optional.
---@class dashscope.ClientOptions
---@field api_key? string the DashScope API key (default: env DASHSCOPE_API_KEY, then the file named by env DASHSCOPE_API_KEY_FILE_PATH, then ~/.dashscope/api_key)
---@field api_key_file? string read the API key from this file instead (a readable regular file; surrounding whitespace is trimmed); not with api_key
---@field base_url? string service root (default: env DASHSCOPE_HTTP_BASE_URL, else https://dashscope.aliyuncs.com/api/v1); a trailing / is tolerated
---@field workspace? string sent as X-DashScope-WorkSpace
---@field timeout? number seconds, per HTTP request, never past what is left of call_timeout, 0.001 to 86400 (default 60)
---@field connect_timeout? number seconds, per connection, 0.001 to 86400 (default 10)
---@field poll_interval? number seconds before the first status query, 0.001 to 86400 (default 1)
---@field max_poll_interval? number longest a tracked task goes without a question (a status query, or a task-list page that places it), 0.001 to 86400 (default 10)
---@field wait_timeout? number default deadline of task:wait, seconds, 0 to 604800 (default 3 h)
---@field max_retries? integer retries of a retryable failure, 0 to 100 (default 3); a submit or detect answered 429 is retried until created or call_timeout
---@field call_timeout? number seconds one call may take in all, through quota waits, retries and the request in flight, 0.001 to 86400 (default 300); task:wait has its own wait_timeout
---@field retry_base_delay? number back-off base, seconds, 0 to 3600 (default 0.5)
---@field retry_max_delay? number back-off cap, and the longest a Retry-After is honoured, seconds, 0 to 86400 (default 5)
---@field max_body? integer largest JSON answer accepted, bytes, 1024 to 2147483648 (default 4 MiB)
---@field max_connections? integer TCP connections the client may open at once, 1 to 256 (default 6); more requests queue
---@field rate_limits? boolean|dashscope.RateLimits the quotas the client keeps: false turns them off, true or nil keeps the service's
---@field quota? false|string|table share the quotas with other processes: a shared dict (ngx.shared.NAME) for the workers of one nginx, or a Redis URL "redis://[:password@]host[:port][/db][?prefix=name]" for processes on any host; false keeps them in this process (default: env DASHSCOPE_QUOTA_STORE). A store that fails is given up at once and tried again in the background
---@field on_warning? fun(message: string, info: dashscope.Warning) called when the quota store fails ("QuotaStoreDown") and when it is back ("QuotaStoreBack"), once each per outage (default: a line on stderr)
---@field user_agent? string appended to the User-Agent
---@field sleep? async fun(seconds: number) called instead of blocking, e.g. ngx.sleep or coroutine.yield; may yield
---@field ca_file? string a PEM file of CA certificates to verify TLS peers with (a private CA); verification itself is always on
---@field ca_path? string a directory of CA certificates (c_rehash layout), as ca_file
---@field allow_http? boolean permit a plain http:// base_url to a host other than loopback: the API key then crosses the network unencrypted (default false)

---What `on_warning` is told besides the message.
---Options of `client:journal`.
---@class dashscope.JournalOptions
---@field settle? number seconds after an unanswered submit ended (or the journal was reopened after a crash) before a task list without its task means it was never created (default 15)

---What a journal knows of one job (`journal:job`).
---@class dashscope.JournalJob
---@field key string the job's key
---@field state dashscope.JobState
---@field method? string the model method it was sent with
---@field model? string its model
---@field task_id? string its task, once known
---@field status? string the task's status when it ended
---@field path? string where its video was saved
---@field bytes? integer the saved video's size
---@field at? number when its submit was sent (wall clock, seconds)
---@field error? { code: string, message: string } why it failed, was refused, or is ambiguous

---@alias dashscope.JobState
---| "new" # never sent, or certainly never created
---| "sending" # its submit is on its way
---| "ambiguous" # sent, its answer never read: the task may exist
---| "submitted" # its task id is known
---| "ended" # its task ended (status, and error when not SUCCEEDED)
---| "saved" # its video is on disk (path, bytes)
---| "refused" # the service refused its submit (4xx) and created nothing

---@class dashscope.Warning
---@field code "QuotaStoreDown"|"QuotaStoreBack"
---@field store string the store, as "redis://host:port/db" (never its password) or "shared dict"
---@field reason? string why it failed (QuotaStoreDown)

---Where a client's quotas are kept (`client:quota_store()`).
---@class dashscope.QuotaStore
---@field kind "local"|"shdict"|"redis"
---@field up boolean true while the quotas are shared (always true for "local")
---@field state? "starting"|"up"|"down"|"probing" a shared store's state
---@field url? string the store, without its password

---Options of `task:wait`.
---@class dashscope.WaitOptions
---@field timeout? number seconds, at least 0 (default: the client's wait_timeout)
---@field on_status? fun(task: dashscope.Task, status: dashscope.TaskStatus) called on each change of status
---@field sleep? async fun(seconds: number) used instead of blocking, e.g. ngx.sleep
---@field on_tick? fun(task: dashscope.Task, progress: dashscope.Progress) called every `tick` seconds while the task has not ended (a live display needs no polling)
---@field tick? number seconds between on_tick calls, 0.01 to 3600 (default 1)

---Options of `client:wait_all`, `client:wait_any` and `client:each_done`.
---@class dashscope.WaitManyOptions
---@field timeout? number seconds, at least 0 (default: the client's wait_timeout)
---@field sleep? async fun(seconds: number) used instead of blocking, e.g. ngx.sleep

---Callbacks of `client:watch`; they run from `client:step()`, so from the event loop driving it.
---@class dashscope.WatchCallbacks
---@field on_status? fun(task: dashscope.Task, status: dashscope.TaskStatus) on each change of status
---@field on_done? fun(task: dashscope.Task, result: dashscope.Result?, err: dashscope.Error?) once, when the task has ended (result only for SUCCEEDED)

---Options of `task:download`.
---@class dashscope.DownloadOptions
---@field on_progress? fun(done: integer, total: integer?) bytes written so far, and the size expected (nil when unknown)
---@field timeout? number seconds for the whole transfer, retries included, at least 0.001 (default 3600; Timeout); an unfinished task is waited for first, within the client's wait_timeout, not counted here
---@field overwrite? boolean replace an existing file at path (default false: that is an error, FileExists); not with a file handle
---@field max_download? integer bytes, at least 1: a larger video is refused (TooLarge) and nothing is kept (default: no cap)
---@field on_temp? fun(tmp_path: string) called with the temporary file's name just before the file is made beside path (a journal writes the name down first, so that a run killed at any moment of the download leaves no file it does not know of); a name found taken is passed over and the next one given; not with a file handle

---The filter of `client:tasks` and `client:each_task`, all optional (the service's default: the
---last 24 h, page 1 of 10).
---@class dashscope.TaskFilter
---@field status? dashscope.ListStatus only tasks in this status
---@field model? string only this service model name (e.g. "liveportrait", "emoji-v1")
---@field task_id? string that task only
---@field start_time? dashscope.ListTime from: "YYYYMMDDhhmmss" (Beijing time) or epoch seconds (default: end_time - 24 h)
---@field end_time? dashscope.ListTime until, the same way (default: start_time + 24 h; the span is at most 24 h)
---@field page_no? integer the page, from 1 (default 1)
---@field page_size? integer tasks per page, 1 to 100 (default 10)

-- Model inputs: one flat table per model; the client puts each field into `input` or `parameters`
-- and sends only the fields given (the service applies its defaults).

---`client:videoretalk{...}`: model `videoretalk`, video at `output.video_url`.
---@class dashscope.VideoRetalkFields
---@field video_url dashscope.Url (input, required) the video to lip-sync: mp4/avi/mov, 2-120 s, 15-60 fps, each side 640-2048 px, <= 300 MB
---@field audio_url dashscope.Url (input, required) the new speech: wav/mp3/aac, 2-120 s, <= 30 MB
---@field ref_image_url? dashscope.Url (input, may be "") a frontal face of the person to re-voice when several appear; empty: the largest face (default "")
---@field video_extension? boolean (parameters) audio longer than video: true extends the video (reversed, then forward); false cuts the audio (default false)
---@field query_face_threshold? integer (parameters, 120 to 200) face match threshold for ref_image_url; lower matches more loosely (default 170)

---`client:emoji{...}`: model `emoji-v1`, video at `output.video_url`. Without `face_bbox` and
---`ext_bbox` the client runs `emoji-detect-v1` first and fills them in; a face that does not pass
---returns `nil, err` with `err.detect` holding the detect result. One box without the other raises.
---@class dashscope.EmojiFields
---@field image_url dashscope.Url (input, required) a frontal portrait that passed emoji-detect-v1: 400-7000 px per side, <= 10 MB
---@field driven_id dashscope.DrivenId (input, required) the expression template
---@field face_bbox? dashscope.BBox (input) face box {x1, y1, x2, y2} in px: emoji-detect-v1's bbox_face (give both boxes or neither: then they are detected)
---@field ext_bbox? dashscope.BBox (input) the dynamic expression area {x1, y1, x2, y2}, about 1:1: emoji-detect-v1's ext_bbox_face (give both boxes or neither)

---`client:liveportrait{...}`: model `liveportrait`, video at `output.results.video_url`.
---@class dashscope.LivePortraitFields
---@field image_url dashscope.Url (input, required) a portrait that passed liveportrait-detect: < 10 MB, aspect <= 2, longest side <= 4096 px
---@field audio_url dashscope.Url (input, required) speech: wav/mp3, < 15 MB, 1 s - 3 min
---@field template_id? dashscope.LivePortraitTemplate (parameters) head motion: normal (moderate), calm (small), active (large, singing) (default "normal")
---@field eye_move_freq? number (parameters, 0 to 1) blinks per second (default 0.5)
---@field video_fps? integer (parameters, 15 to 30) frames per second of the output (default 24)
---@field mouth_move_strength? number (parameters, 0 to 1.5) 0 means no mouth movement (default 1)
---@field paste_back? boolean (parameters) true pastes the face back onto the full image; false outputs the face region only (default true)
---@field head_move_strength? number (parameters, 0 to 1) strength of head movement (default 0.7)

---`client:liveportrait_detect{...}`: model `liveportrait-detect` (synchronous, billed per call).
---@class dashscope.LivePortraitDetectFields
---@field image_url dashscope.Url (input, required) the portrait to check for liveportrait: jpeg/jpg/png/bmp/webp, < 10 MB, aspect <= 2, longest side <= 4096 px

---`client:emoji_detect{...}`: model `emoji-detect-v1` (synchronous, billed per call).
---@class dashscope.EmojiDetectFields
---@field image_url dashscope.Url (input, required) the face photo to check for emoji-v1: 400-7000 px per side, <= 10 MB, one frontal uncovered face

-- Results and errors

---`usage` of a task's result, as the service sent it.
---@class dashscope.VideoUsage
---@field video_duration? number seconds of video, the billing unit
---@field video_ratio? string e.g. "standard"
---@field size? string videoretalk: e.g. "1080*1920"
---@field fps? integer videoretalk: frames per second

---`usage` of a detect call.
---@class dashscope.DetectUsage
---@field image_count? integer images billed (1 per call, passed or not)

---The result of a task that has ended (`task:wait`, `task:result`, `each_done`, `watch`).
---@class dashscope.Result
---@field task_id string the task id
---@field model? string the service's model name (nil for a handle from client:task(id) without a model)
---@field status dashscope.TaskStatus SUCCEEDED, FAILED, CANCELED or UNKNOWN
---@field video_url? string the signed video URL (SUCCEEDED), valid for 24 h
---@field usage? dashscope.VideoUsage as the service sent it
---@field submit_time? string "YYYY-MM-DD HH:mm:ss.SSS", the service's clock
---@field scheduled_time? string when the task started running
---@field end_time? string when the task ended
---@field request_id? string of the query that saw the end
---@field code? string a FAILED task's code
---@field message? string a FAILED task's message
---@field output table the raw `output` object of the answer

---The result of `client:liveportrait_detect`.
---@class dashscope.DetectResult
---@field pass boolean whether liveportrait can use the image
---@field message string why not ("" on a pass), e.g. "No human face detected."
---@field request_id string the detect call's request id
---@field usage dashscope.DetectUsage as the service sent it

---The result of `client:emoji_detect`: the boxes on a pass, `code` and `message` otherwise.
---@class dashscope.EmojiDetectResult
---@field pass boolean whether emoji can use the image
---@field face_bbox? dashscope.BBox the face box (the service's bbox_face), on a pass
---@field ext_bbox? dashscope.BBox the dynamic expression area (the service's ext_bbox_face), on a pass
---@field code? string why not, e.g. "InvalidFile.FacePose"
---@field message? string why not, in words
---@field request_id string the detect call's request id
---@field usage dashscope.DetectUsage as the service sent it

---What `task:progress()` knows, without asking the service.
---@class dashscope.Progress
---@field status dashscope.TaskStatus the last known status
---@field elapsed? number seconds since the submit, when this client submitted the task
---@field position? integer place in the model's queue among this client's tasks (1 = next), when the service queues them
---@field expected_end? number seconds from now until the task should end, once the model's run time has been learned

---One item of the task list. Times are epoch milliseconds.
---@class dashscope.TaskListItem
---@field task_id string the task id
---@field status dashscope.TaskStatus the task's status
---@field model_name string the service model name
---@field request_id string the request id of its submit
---@field gmt_create integer when it was created
---@field start_time integer when it started
---@field end_time? integer when it ended (absent while it runs)
---@field region string e.g. "cn-beijing"
---@field api_key_id? string the key that submitted it
---@field caller_parent_id? string the main account
---@field caller_uid? string the caller
---@field user_api_unique_key? string e.g. "apikey:v1:aigc:image2video:video-synthesis:<model>"

---One page of the task list (`client:tasks`).
---@class dashscope.TaskPage
---@field total integer tasks matching the filter, on all pages
---@field data dashscope.TaskListItem[] this page's tasks
---@field page_no integer this page's number, from 1
---@field page_size integer items per page
---@field total_page integer how many pages there are
---@field request_id string the list call's request id

---The results of `client:wait_all`, in the order of the tasks given: `nil` where a task did not
---succeed. `n` is the number of tasks.
---@class dashscope.ResultList
---@field n integer the number of tasks
---@field [integer] dashscope.Result?

---The errors of `client:wait_all`, at the places of the tasks that did not succeed.
---@class dashscope.ErrorList
---@field n integer the number of tasks
---@field [integer] dashscope.Error?

---What `nil, err` returns for failures of the network or the service (misuse raises instead).
---`tostring(err)` reads `CODE: message (HTTP 401, task ..., request_id ..., N attempts)`.
---@class dashscope.Error
---@field code dashscope.ErrorCode the service's code, or the client's own
---@field message string human text
---No string of an error (any field, nested tables too) contains the API key: it reads `<api-key>`.
---@field status? integer the HTTP status, when there was an HTTP answer
---@field request_id? string when known
---@field task_id? string when known
---@field retryable boolean whether trying again later may succeed
---@field attempts? integer how many times the request was sent
---@field detect? dashscope.EmojiDetectResult client:emoji without boxes: the detect result of a face that did not pass
---@field task_may_exist? true a submit that failed after its body may have reached the service: the task may exist
---@field job_key? string a journal's error: the key of the job
---@field retry_in? number `Ambiguous`: seconds after which asking again may settle the job
---@field candidates? string[] `Ambiguous`: the task ids the job's task could be (journal:claim one)

-- The model contracts (dashscope.models): read-only data

---One field rule of a contract.
---@class dashscope.FieldRule
---@field name string the field's name
---@field where? "input"|"parameters" where the field goes in the request body
---@field type string "string", "url", "enum", "bbox", "number", "integer", "boolean", "time" or "function"
---@field required? boolean whether it must be given
---@field default? any what the service assumes (documentation only: only given fields are sent)
---@field min? number smallest value allowed
---@field max? number largest value allowed
---@field values? string[] the allowed values of an enum
---@field allow_empty? boolean whether "" is allowed
---@field doc? string one line of documentation

---How a model runs its detector first (`client:emoji` without boxes).
---@class dashscope.DetectStep
---@field method string the detector's client method, e.g. "emoji_detect"
---@field fills table<string, string> field of the model -> key of the detect result that fills it

---One model's contract.
---@class dashscope.ModelContract
---@field model string the service model name
---@field synchronous? true a synchronous detector (answers a table, submits nothing)
---@field fixed? { parameters: table } sent as it is, not fields the caller gives
---@field detect? dashscope.DetectStep the detector run first when every field it fills is absent
---@field result? string where a SUCCEEDED answer carries the video URL (default "output.video_url")
---@field parameters? boolean whether the body always carries a parameters object
---@field fields dashscope.FieldRule[] the fields, in documentation order

---The model contracts, by client method name.
---@class dashscope.Models
---@field videoretalk dashscope.ModelContract
---@field emoji dashscope.ModelContract
---@field liveportrait dashscope.ModelContract
---@field liveportrait_detect dashscope.ModelContract
---@field emoji_detect dashscope.ModelContract
---@field [string] dashscope.ModelContract

-- The module

---lua-dashscope: Alibaba Cloud DashScope's asynchronous video synthesis (videoretalk, emoji-v1,
---liveportrait) from Lua.
---@class dashscope
---@field VERSION string "MAJOR.MINOR.PATCH"
---@field models dashscope.Models the model contracts (read-only data)
---@field options dashscope.FieldRule[] the contract of dashscope.new's options (read-only data)
---@field defaults table<string, any> the defaults of the client options (read-only data)
---@field task_filter dashscope.FieldRule[] the contract of client:tasks' filter (read-only data)
local dashscope = {}

---What every misuse raises (a wrong argument, a closed client): its data, and its text.
---`tostring(m)` is the message at the caller's line ("file:line: what: ..."); string methods and
---`..` work on it as on that string.
---@class dashscope.Misuse
---@field what string the function called, as written ("liveportrait", "dashscope.new", "task:wait")
---@field field? string the field or option at fault
---@field rule "required"|"unknown"|"invalid"|"closed"|"usage" what kind of misuse
---@field message string "what: ..." without the position
---@field where string the caller's "file:line: " (or "")

---True when `value` is a misuse the library raised (see dashscope.Misuse).
---@param value any
---@return boolean
function dashscope.is_misuse(value) end

---The candidate nearest to `word` (case-insensitive) when near enough to be a typo, or nil: the
---"did you mean" of the checker's messages.
---@param word string
---@param candidates string[]
---@return string?
function dashscope.nearest(word, candidates) end

---A field rule's range in words, as the checker says it (" from 15 to 30"), or "".
---@param rule dashscope.FieldRule
---@return string
function dashscope.range_text(rule) end

---Makes a client. Raises on a bad option, or when no API key is found (`api_key`, env
---DASHSCOPE_API_KEY, the file named by DASHSCOPE_API_KEY_FILE_PATH, ~/.dashscope/api_key).
---On Lua 5.4: `local client <close> = dashscope.new()`.
---@param opts? dashscope.ClientOptions
---@return dashscope.Client client
---@overload fun(): dashscope.Client
---@nodiscard
function dashscope.new(opts) end

---Checks a job's fields as `client[method]` would, sending nothing: true, or raises the same
---misuse (naming the field and the rule). A batch checks every job before its first submit.
---@param method string a model method: "videoretalk", "emoji", "liveportrait" or a detector's
---@param fields table the flat table of fields
---@return true
function dashscope.check(method, fields) end

---A local file for a URL field (or `client:submit`'s input): the only way a local file enters a
---job. Checked now, opened without blocking: raises unless `path` is a readable, non-empty regular
---file (a FIFO, device, directory, missing or empty file raises at once).
---@param path string
---@return dashscope.LocalFile file
---@nodiscard
function dashscope.file(path) end

-- Client

---A client: submits tasks, follows them on one schedule, keeps the service's quotas. Closes with
---`client:close()`, or at the end of its scope with `local client <close> = dashscope.new()`
---(Lua 5.4).
---@class dashscope.Client
---@field base_url string the service root in use
---@field key_source string where the API key came from, never the key: "api_key", "api_key_file (PATH)", "$DASHSCOPE_API_KEY", "$DASHSCOPE_API_KEY_FILE_PATH (PATH)" or "~/.dashscope/api_key"
local Client = {}

---Lip-syncs a video to new audio (model `videoretalk`). Misuse (a wrong type, a missing or unknown
---field, a value out of range) raises before anything is sent.
---@async
---@param fields dashscope.VideoRetalkFields
---@return dashscope.Task? task
---@return dashscope.Error? err
function Client:videoretalk(fields) end

---Animates a face photo with an expression template (model `emoji-v1`). Without `face_bbox` and
---`ext_bbox`, runs `emoji_detect` first; a face that does not pass returns `nil, err` with
---`err.detect` holding the detect result.
---@async
---@param fields dashscope.EmojiFields
---@return dashscope.Task? task
---@return dashscope.Error? err
function Client:emoji(fields) end

---Animates a portrait photo from speech audio (model `liveportrait`).
---@async
---@param fields dashscope.LivePortraitFields
---@return dashscope.Task? task
---@return dashscope.Error? err
function Client:liveportrait(fields) end

---Checks a portrait for `liveportrait` (model `liveportrait-detect`, synchronous, billed per call).
---A `dashscope.file` is uploaded first.
---@async
---@param fields dashscope.LivePortraitDetectFields
---@return dashscope.DetectResult? result
---@return dashscope.Error? err
function Client:liveportrait_detect(fields) end

---Checks a portrait for `emoji` and finds its boxes (model `emoji-detect-v1`, synchronous, billed per
---call). A `dashscope.file` is uploaded first.
---@async
---@param fields dashscope.EmojiDetectFields
---@return dashscope.EmojiDetectResult? result
---@return dashscope.Error? err
function Client:emoji_detect(fields) end

---Submits any asynchronous video-synthesis model, sent as given (the tables are checked for
---JSON-ability only). An `oss://` URL anywhere adds `X-DashScope-OssResourceResolve: enable`; a
---`dashscope.file` at the top level of `input` is uploaded first (deeper down it raises).
---@async
---@param model string the service model name
---@param input table the `input` object
---@param parameters? table the `parameters` object (default {})
---@return dashscope.Task? task
---@return dashscope.Error? err
function Client:submit(model, input, parameters) end

---Uploads a local file for `model` (the temporary upload flow; the URL lasts 48 h and works with
---that model only). The model methods do this by themselves for a `dashscope.file` in a URL field.
---Raises on a bad model name, or a path that is no readable, non-empty regular file.
---@async
---@param model string the service model name the file is for
---@param path string|dashscope.LocalFile a local file path (explicit here), or a `dashscope.file`
---@return string? url the `oss://` URL
---@return dashscope.Error? err
function Client:upload(model, path) end

---A handle for a task submitted earlier or by another process. Without `model` the video URL is
---looked for in both documented places. Raises on an id that is not a task id.
---@param id string the task id
---@param model? string the service model name
---@return dashscope.Task task
---@overload fun(self: dashscope.Client, id: string): dashscope.Task
---@nodiscard
function Client:task(id, model) end

---One page of the task list (`GET /tasks`).
---@async
---@param filter? dashscope.TaskFilter
---@return dashscope.TaskPage? page
---@return dashscope.Error? err
function Client:tasks(filter) end

---Every item of the task list, page after page:
---`for item, err in client:each_task{ model = "emoji-v1" } do ... end`. On a failure the item is
---`false` and `err` says why; the loop ends after it.
---@param filter? dashscope.TaskFilter `page_no` is where to start
---@return dashscope.EachTaskIterator iterator
---@nodiscard
function Client:each_task(filter) end

---Waits for every task. A task given twice fills both places.
---@async
---@param tasks dashscope.Task[] tasks of this client (an array without holes)
---@param opts? dashscope.WaitManyOptions
---@return dashscope.ResultList results `results[i]` is task i's result, or nil
---@return dashscope.ErrorList errs `errs[i]` is task i's error, or nil
function Client:wait_all(tasks, opts) end

---Waits for the first task to end.
---@async
---@param tasks dashscope.Task[] tasks of this client
---@param opts? dashscope.WaitManyOptions
---@return dashscope.Task? task the first to end (nil for no tasks)
---@return dashscope.Result? result its result, for SUCCEEDED
---@return dashscope.Error? err its error otherwise
function Client:wait_any(tasks, opts) end

---Every task once per place it has in `tasks`, as it ends:
---`for task, result, err in client:each_done(tasks) do ... end`. At the deadline the rest come with
---`WaitTimeout`, in the order given; once the client is closed (a callback or the loop's body may
---close it), with `Aborted`.
---@param tasks dashscope.Task[] tasks of this client
---@param opts? dashscope.WaitManyOptions
---@return dashscope.EachDoneIterator iterator
---@nodiscard
function Client:each_done(tasks, opts) end

---Follows a task without waiting: the callbacks run from `step` (so from your event loop).
---@param task dashscope.Task a task of this client
---@param callbacks dashscope.WatchCallbacks
---@return dashscope.Task task the same task
function Client:watch(task, callbacks) end

---One non-blocking step: advances every transfer, finishes calls, sends the status queries that
---are due, runs `watch` callbacks.
---@return number delay seconds until the client next has work
function Client:step() end

---For event loops: the sockets libcurl wants watched now.
---@return table<integer, dashscope.SocketMode> sockets `{ [fd] = "r" | "w" | "rw" }`
---@nodiscard
function Client:sockets() end

---For event loops: that socket is ready. Drives it, then steps.
---@param fd integer the socket
---@param readable boolean
---@param writable boolean
---@return number delay seconds until the client next has work
function Client:socket_ready(fd, readable, writable) end

---Jobs kept in a file that survives the process: opens (creates) the journal at `path`, locked by
---this process until closed. See the reference's **Journal**.
---@param path string
---@param opts? dashscope.JournalOptions
---@return dashscope.Journal? journal
---@return dashscope.Error? err JournalBusy, JournalDamaged or JournalError
function Client:journal(path, opts) end

---Where the client's quotas are kept, and whether a shared store is in use now.
---@return dashscope.QuotaStore
---@nodiscard
function Client:quota_store() end

---Whether any task is followed or any call is in flight (an event loop may stop its timer when not).
---@return boolean
---@nodiscard
function Client:busy() end

---Closes the connections: every call and wait in flight returns `nil, err` (`Aborted`), also when
---called from a callback of the client. Idempotent; also the `__close` of
---`local client <close> = dashscope.new()`. Using the client or its tasks afterwards raises.
function Client:close() end

-- Task

---A handle of one asynchronous task.
---@class dashscope.Task
---@field id string the task id
---@field model? string the service's model name ("emoji-v1" for client:emoji); nil for client:task(id) without a model
---@field request_id? string the submit's request id (nil for client:task(id))
local Task = {}

---The last known status (no request).
---@return dashscope.TaskStatus status
---@nodiscard
function Task:status() end

---Whether the status is terminal (SUCCEEDED, FAILED, CANCELED, UNKNOWN).
---@return boolean
---@nodiscard
function Task:ended() end

---One status query now.
---@async
---@return dashscope.TaskStatus? status
---@return dashscope.Error? err
function Task:poll() end

---Waits until the task ends, polling on the client's schedule: the result for SUCCEEDED; for
---FAILED, CANCELED, UNKNOWN or a passed deadline, `nil, err` (`task:result()` still holds what the
---service said).
---@async
---@param opts? dashscope.WaitOptions
---@return dashscope.Result? result
---@return dashscope.Error? err
function Task:wait(opts) end

---The result once the task has ended (also for FAILED, CANCELED, UNKNOWN), else nil.
---@return dashscope.Result? result
---@nodiscard
function Task:result() end

---How the task ended, without asking: the result for SUCCEEDED; else `nil, err` saying why: the
---service's code and message for FAILED (`TaskFailed` when it gave no code), `TaskCanceled`,
---`TaskUnknown`, or the error that ended following it (a final query failure, `Aborted`). `nil`
---and no error while the task has not ended. No string in it contains the API key.
---@return dashscope.Result? result
---@return dashscope.Error? err
function Task:outcome() end

---Cancels a task that is still PENDING; otherwise `nil, err` with `UnsupportedOperation`.
---@async
---@return true|nil ok
---@return dashscope.Error? err
function Task:cancel() end

---Streams the video to `path`, written to a new temporary file beside it (O_EXCL|O_NOFOLLOW, a
---random name) and put in place once complete: `path` is the whole video or untouched. Or to an
---open file handle (`io.stdout`), as it arrives. A task that has not ended is waited for first.
---@async
---@param path string|file* where to write
---@param opts? dashscope.DownloadOptions
---@return (string|file*)? path the path written (or the handle)
---@return dashscope.Error? err
function Task:download(path, opts) end

---Where the task stands, from what the client already knows (no request).
---@return dashscope.Progress progress
---@nodiscard
function Task:progress() end

-- Journal

---Jobs that survive the process (`client:journal(path)`): each submit's intent is written before it
---is sent and its task id as soon as the answer is read; reopened, the journal gives every job
---back, and `submit` with the same key never sends a job twice.
---@class dashscope.Journal
---@field path string the journal's file
local Journal = {}

---The job's task: the first time, writes the intent, sends `client[method](fields)` and writes its
---task id; afterwards the same task, with no request. An ambiguous job is settled first.
---@async
---@param key string the job's key (1 to 1024 bytes, no control characters)
---@param method "videoretalk"|"emoji"|"liveportrait"
---@param fields table the model's flat table of fields
---@return dashscope.Task? task
---@return dashscope.Error? err also Ambiguous, JobChanged, JournalError
function Journal:submit(key, method, fields) end

---What the journal knows of job `key`, or nil.
---@param key string
---@return dashscope.JournalJob?
---@nodiscard
function Journal:job(key) end

---Every job, in the order first written: `for key, job in journal:jobs() do`.
---@return fun(): string?, dashscope.JournalJob?
function Journal:jobs() end

---The task handle of a job with a task (its end is written when the client hears it), or nil.
---@param key string
---@return dashscope.Task?
function Journal:task(key) end

---`task:download`, written down: a job saved to `path` before, whose file is still there with its
---size, costs no request.
---@async
---@param key string
---@param path string
---@param opts? dashscope.DownloadOptions
---@return string? path
---@return dashscope.Error? err
function Journal:download(key, path, opts) end

---Settles an ambiguous job from the task list: "submitted" (its task was found) or "new" (it was
---never created); other states come back as they are.
---@async
---@param key string
---@return dashscope.JobState? state
---@return dashscope.Error? err Ambiguous (retry_in, candidates)
function Journal:resolve(key) end

---Your answer for an ambiguous job: its task is `task_id`, or (`false`) it was never created.
---@param key string
---@param task_id string|false
---@return true|nil ok
---@return dashscope.Error? err JournalError
function Journal:claim(key, task_id) end

---A job that ended without success (or that the service refused) becomes new: the next `submit`
---sends it again; its old task stays claimed.
---@param key string
---@return true|nil ok
---@return dashscope.Error? err JournalError
function Journal:retry(key) end

---Rewrites the journal with one record per job, in one rename.
---@return true|nil ok
---@return dashscope.Error? err JournalError
function Journal:compact() end

---The journal file's size, bytes.
---@return integer
---@nodiscard
function Journal:size() end

---Closes the file and its lock (idempotent; `<close>` on Lua 5.4). The jobs' tasks go on.
function Journal:close() end

return dashscope
