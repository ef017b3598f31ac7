-- A task from submit to its end: statuses, results per model, failure, cancel, resume by id.
local helper = require("spec.support.helper")

local VIDEO, AUDIO, IMAGE = "https://example.com/v.mp4", "https://example.com/a.wav", "https://example.com/f.png"

local function statuses_of(task, opts)
  local seen = {}
  opts = opts or {}
  opts.on_status = function(t, status)
    assert.are.equal(task, t)
    seen[#seen + 1] = status
  end
  local result, err = task:wait(opts)
  return seen, result, err
end

describe("a task", function()
  local client
  before_each(function()
    helper.reset({ durations = { pre_processing = 0.1, running = 0.2, post_processing = 0.1 } })
    client = helper.client()
  end)
  after_each(function() client:close() end)

  it("of videoretalk passes through every status to SUCCEEDED, with its result normalised", function()
    local task = assert(client:videoretalk { video_url = VIDEO, audio_url = AUDIO })
    local seen, result, err = statuses_of(task)
    assert.is_nil(err)
    assert.are.same({ "PENDING", "PRE-PROCESSING", "RUNNING", "POST-PROCESSING", "SUCCEEDED" }, seen)
    assert.are.equal("SUCCEEDED", task:status())
    assert.are.equal(result, task:result())
    assert.are.equal(task.id, result.task_id)
    assert.are.equal("videoretalk", result.model)
    assert.are.equal("SUCCEEDED", result.status)
    assert.truthy(result.video_url:find("^http://127%.0%.0%.1:%d+/results/.*%.mp4%?Expires="))
    assert.are.equal(result.output.video_url, result.video_url)
    assert.are.same({ video_duration = 7.2, size = "1080*1920", video_ratio = "standard", fps = 25 }, result.usage)
    if math.type then assert.are.equal("integer", math.type(result.usage.fps)) end -- 5.3+: integers
    for _, field in ipairs { "submit_time", "scheduled_time", "end_time", "request_id" } do
      assert.are.equal("string", type(result[field]), field)
    end
    assert.truthy(result.submit_time:find("^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d%.%d%d%d$"))
  end)

  it("runs from submit to result over one kept-alive connection", function()
    local task = assert(client:liveportrait { image_url = IMAGE, audio_url = AUDIO })
    assert(task:wait())
    local stats = helper.stats()
    assert.truthy(stats.requests >= 3)
    assert.are.equal(1, stats.connections)
  end)

  it("of liveportrait finds the video under output.results", function()
    local task = assert(client:liveportrait { image_url = IMAGE, audio_url = AUDIO })
    local seen, result = statuses_of(task)
    assert.are.same({ "PENDING", "RUNNING", "SUCCEEDED" }, seen)
    assert.are.equal(result.output.results.video_url, result.video_url)
    assert.are.same({ video_duration = 2.79, video_ratio = "standard" }, result.usage)
  end)

  it("of emoji returns integers as Lua integers", function()
    local task = assert(client:emoji { image_url = IMAGE, driven_id = "dagong_kaixin",
                                       face_bbox = { 1, 2, 30, 40 }, ext_bbox = { 0, 0, 50, 50 } })
    local result = assert(task:wait())
    assert.are.equal(2, result.usage.video_duration)
    if math.type then assert.are.equal("integer", math.type(result.usage.video_duration)) end -- 5.3+
    assert.truthy(result.video_url)
  end)

  it("polls on a schedule that grows from poll_interval to max_poll_interval", function()
    helper.reset({ durations = { running = 1.0 } })
    local c = helper.client({ poll_interval = 0.05, max_poll_interval = 0.2 })
    local task = assert(c:liveportrait { image_url = IMAGE, audio_url = AUDIO })
    assert(task:wait())
    c:close()
    local times = {}
    for _, r in ipairs(helper.log()) do times[#times + 1] = r.time end
    -- gaps between queries: 0.05 s at first, doubling every third query, never above 0.2 s
    local gaps = {}
    for i = 3, #times do gaps[#gaps + 1] = times[i] - times[i - 1] end
    assert.truthy(gaps[1] >= 0.04 and gaps[1] < 0.15, "first gap " .. gaps[1])
    for _, g in ipairs(gaps) do assert.truthy(g < 0.35, "gap " .. g) end
    assert.truthy(#times <= 14, #times .. " requests for a 1 s job")
    assert.truthy(gaps[#gaps] >= 0.15, "last gap " .. gaps[#gaps])
  end)

  it("that fails returns nil and the service's code and message, and keeps the result", function()
    local task = assert(client:videoretalk { video_url = VIDEO .. "?__fail__", audio_url = AUDIO })
    local result, err = task:wait()
    assert.is_nil(result)
    assert.are.equal("InvalidFile.Content", err.code)
    assert.truthy(err.message:find("human body"))
    assert.are.equal(task.id, err.task_id)
    assert.truthy(err.request_id)
    assert.are.equal("FAILED", task:status())
    assert.are.equal("FAILED", task:result().status)
    assert.are.equal("InvalidFile.Content", task:result().code)
    assert.truthy(tostring(err):find("^InvalidFile%.Content: .*%(task " .. task.id:gsub("%-", "%%-")))
  end)

  it("that expires ends as UNKNOWN with TaskUnknown", function()
    local task = assert(client:liveportrait { image_url = IMAGE .. "?__unknown__", audio_url = AUDIO })
    local _, err = task:wait()
    assert.are.equal("TaskUnknown", err.code)
    assert.are.equal("UNKNOWN", task:status())
  end)

  it("can be canceled while PENDING, and then waits to TaskCanceled", function()
    local first = assert(client:emoji { image_url = IMAGE, driven_id = "mengwa_kaixin",
                                        face_bbox = { 1, 2, 30, 40 }, ext_bbox = { 0, 0, 50, 50 } })
    local queued = assert(client:emoji { image_url = IMAGE, driven_id = "mengwa_kaixin",
                                         face_bbox = { 1, 2, 30, 40 }, ext_bbox = { 0, 0, 50, 50 } })
    assert.is_true(queued:cancel())
    assert.are.equal("CANCELED", queued:status())
    local cancel = helper.requests("/cancel")[1]
    assert.are.equal("POST", cancel.method)
    assert.are.equal("/api/v1/tasks/" .. queued.id .. "/cancel", cancel.path)
    local _, err = queued:wait()
    assert.are.equal("TaskCanceled", err.code)
    assert(first:wait())
  end)

  it("that already runs cannot be canceled: nil and UnsupportedOperation", function()
    local task = assert(client:liveportrait { image_url = IMAGE, audio_url = AUDIO })
    assert(task:wait())
    local ok, err = task:cancel()
    assert.is_nil(ok)
    assert.are.equal("UnsupportedOperation", err.code)
    assert.are.equal(400, err.status)
    assert.are.equal(task.id, err.task_id)
    assert.is_false(err.retryable)
  end)

  it("can be resumed by id from another client", function()
    local task = assert(client:liveportrait { image_url = IMAGE, audio_url = AUDIO })
    local other = helper.client()
    local resumed = other:task(task.id, "liveportrait")
    assert.are.equal(task.id, resumed.id)
    local result = assert(resumed:wait())
    assert.are.equal(task.id, result.task_id)
    assert.truthy(result.video_url)
    other:close()
  end)

  it("resumed without its model still finds the video", function()
    local task = assert(client:liveportrait { image_url = IMAGE, audio_url = AUDIO })
    local result = assert(client:task(task.id):wait())
    assert.truthy(result.video_url:find("/results/"))
  end)

  it("that the service does not know is UNKNOWN after one poll", function()
    local task = client:task("00000000-0000-0000-0000-000000000000")
    assert.are.equal("UNKNOWN", task:poll())
    local _, err = task:wait()
    assert.are.equal("TaskUnknown", err.code)
  end)

  it("answers poll with the current status", function()
    local task = assert(client:liveportrait { image_url = IMAGE, audio_url = AUDIO })
    local status = assert(task:poll())
    assert.truthy(status == "PENDING" or status == "RUNNING", status)
    assert.are.equal(1, #helper.requests("/tasks/" .. task.id))
    assert.is_nil(task:result())
  end)

  it("gives up waiting at the deadline with WaitTimeout, and can be waited on again", function()
    helper.reset({ durations = { running = 0.6 } })
    local task = assert(client:liveportrait { image_url = IMAGE, audio_url = AUDIO })
    local result, err = task:wait { timeout = 0.1 }
    assert.is_nil(result)
    assert.are.equal("WaitTimeout", err.code)
    assert.is_true(err.retryable)
    assert.truthy(tostring(err):find("^WaitTimeout: task still"))
    assert(task:wait { timeout = 5 })
  end)

  it("waits through a given sleep function instead of blocking", function()
    local slept = 0
    local task = assert(client:liveportrait { image_url = IMAGE, audio_url = AUDIO })
    local result = assert(task:wait { sleep = function(s)
      slept = slept + 1
      local until_ = os.clock() + s
      repeat until os.clock() >= until_ or s <= 0
    end })
    assert.truthy(slept > 0)
    assert.are.equal("SUCCEEDED", result.status)
  end)

  it("waits inside a coroutine whose sleep yields", function()
    local c = helper.client()
    local task = assert(c:liveportrait { image_url = IMAGE, audio_url = AUDIO })
    local co = coroutine.wrap(function() return task:wait { sleep = coroutine.yield } end)
    local yields, result = 0, nil -- luacheck: ignore 311
    repeat
      result = co()
      yields = yields + 1
      c._transport:wait(0.005)
    until type(result) == "table"
    assert.truthy(yields > 1)
    assert.are.equal("SUCCEEDED", result.status)
    c:close()
  end)

  it("prints its id, model and status", function()
    local task = assert(client:liveportrait { image_url = IMAGE, audio_url = AUDIO })
    assert.are.equal("dashscope.Task " .. task.id .. " (liveportrait, PENDING)", tostring(task))
  end)

  it("refuses unknown wait options", function()
    local task = client:task("abc")
    assert.truthy(helper.raises(function() task:wait { timout = 1 } end):find("did you mean 'timeout'"))
    assert.truthy(helper.raises(function() client:task("a b") end):find("id must be a task id"))
  end)
end)
