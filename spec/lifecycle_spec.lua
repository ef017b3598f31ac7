-- The whole job lifecycle against the local server's three hosts: detectors, local files through
-- the temporary upload, downloads from the result host, the task list, and resuming a task.
local helper = require("spec.support.helper")
local file = helper.dashscope.file

local FAST = helper.FAST

-- A scratch file with `bytes` of content; removed by cleanup().
local scratch = {}
local function temp_file(name, bytes)
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p '" .. dir .. "'"))
  local path = dir .. "/" .. name
  helper.write_file(path, bytes or string.rep("x", 2048))
  scratch[#scratch + 1] = dir
  return path, dir
end
local function cleanup()
  for _, dir in ipairs(scratch) do os.execute("rm -rf '" .. dir .. "'") end
  scratch = {}
end

local read = helper.read_file

local function by_kind(kind)
  local out = {}
  for _, r in ipairs(helper.log()) do
    local k = r.host == "upload" and "upload" or r.host == "results" and "result"
      or r.path:find("/face%-detect") and "detect" or r.path:find("/video%-synthesis") and "submit"
      or r.path:find("/uploads") and "policy" or "other"
    if k == kind then out[#out + 1] = r end
  end
  return out
end

-- No request to a storage host carries the key, in any header.
local function assert_no_key_beyond_service()
  for _, r in ipairs(helper.log()) do
    if r.host ~= "api" then
      assert.is_nil(r.headers.authorization, r.host .. " got an Authorization header")
      for name, value in pairs(r.headers) do
        assert.is_falsy(tostring(value):find(helper.KEY, 1, true), r.host .. " got the key in " .. name)
      end
    end
  end
end

describe("detectors", function()
  local client
  before_each(function()
    helper.reset(FAST)
    client = helper.client()
  end)

  it("answer liveportrait-detect's pass and refusal as tables, synchronously", function()
    local ok = assert(client:liveportrait_detect { image_url = "https://example.com/face.png" })
    assert.is_true(ok.pass)
    assert.are.equal("", ok.message)
    local no = assert(client:liveportrait_detect { image_url = "https://example.com/noface.png" })
    assert.is_false(no.pass)
    assert.are.equal("No human face detected.", no.message)
    local sent = by_kind("detect")[1]
    assert.is_nil(sent.headers["x-dashscope-async"])
    assert.are.equal("liveportrait-detect", sent.json.model)
  end)

  it("answer emoji-detect-v1's boxes, with parameters.ratio 1:1, or its refusal code", function()
    local ok = assert(client:emoji_detect { image_url = "https://example.com/face.png" })
    assert.is_true(ok.pass)
    assert.are.same({ 212, 194, 460, 441 }, ok.face_bbox)
    assert.are.same({ 63, 30, 609, 575 }, ok.ext_bbox)
    assert.are.same({ ratio = "1:1" }, by_kind("detect")[1].json.parameters)
    local no = assert(client:emoji_detect { image_url = "https://example.com/noface.png" })
    assert.is_false(no.pass)
    assert.are.equal("InvalidFile.FacePose", no.code)
  end)

  it("run before an emoji job without boxes, and fill them in", function()
    local t = assert(client:emoji { image_url = "https://example.com/face.png", driven_id = "mengwa_kaixin" })
    assert(t:wait())
    local input = by_kind("submit")[1].json.input
    assert.are.same({ 212, 194, 460, 441 }, input.face_bbox)
    assert.are.same({ 63, 30, 609, 575 }, input.ext_bbox)
  end)

  it("keep a refused face from ever becoming a submitted job", function()
    local t, err = client:emoji { image_url = "https://example.com/noface.png", driven_id = "mengwa_kaixin" }
    assert.is_nil(t)
    assert.are.equal("InvalidFile.FacePose", err.code)
    assert.is_false(err.detect.pass)
    assert.truthy(tostring(err):find("no emoji-v1 job was submitted", 1, true))
    assert.are.equal(0, #by_kind("submit"))
    assert.are.equal(0, helper.stats().submits or 0)
  end)

  it("are skipped when both boxes are given, and refuse one box alone before sending", function()
    assert(client:emoji { image_url = "https://example.com/face.png", driven_id = "mengwa_kaixin",
                          face_bbox = { 1, 2, 30, 40 }, ext_bbox = { 0, 0, 50, 50 } })
    assert.are.equal(0, #by_kind("detect"))
    helper.reset(FAST)
    local msg = helper.raises(function()
      client:emoji { image_url = "https://example.com/face.png", driven_id = "mengwa_kaixin", face_bbox = { 1, 2, 3, 4 } }
    end)
    assert.truthy(msg:find("together", 1, true))
    assert.are.equal(0, #helper.log())
  end)
end)

describe("local files", function()
  local client
  before_each(function()
    helper.reset(FAST)
    client = helper.client()
  end)
  after_each(cleanup)

  it("go up through getPolicy and the upload host, then the job carries oss:// URLs", function()
    local image = temp_file("face.png", "PNGDATA")
    local audio = temp_file("voice.wav", "WAVDATA")
    local t = assert(client:liveportrait { image_url = file(image), audio_url = file(audio) })
    assert(t:wait())
    local policies = by_kind("policy")
    assert.are.equal(1, #policies) -- one policy for both files
    assert.truthy(policies[1].path:find("model=liveportrait", 1, true))
    local uploads = by_kind("upload")
    assert.are.equal(2, #uploads)
    for _, u in ipairs(uploads) do
      assert.truthy(u.headers["content-type"]:find("multipart/form-data", 1, true))
      local body = u.body
      local file_at = body:find('name="file"', 1, true)
      for _, field in ipairs { "OSSAccessKeyId", "Signature", "policy", "key", "x-oss-forbid-overwrite" } do
        local at = body:find('name="' .. field .. '"', 1, true)
        assert.truthy(at and at < file_at, field .. " before file")
      end
    end
    local submit = by_kind("submit")[1]
    assert.truthy(submit.json.input.image_url:find("^oss://"))
    assert.truthy(submit.json.input.audio_url:find("^oss://"))
    assert.are.equal("enable", submit.headers["x-dashscope-ossresourceresolve"])
    local stored = helper.control("GET", "/uploads")
    assert.are.equal(2, #stored)
    assert_no_key_beyond_service()
  end)

  it("reuse a policy and never reuse a name", function()
    local path = temp_file("same.png")
    local a = assert(client:upload("liveportrait", path))
    local b = assert(client:upload("liveportrait", path))
    assert.are_not.equal(a, b)
    assert.are.equal(1, #by_kind("policy"))
  end)

  it("are uploaded once per model: a detector's copy is its own", function()
    local image = temp_file("face.png")
    local t = assert(client:emoji { image_url = file(image), driven_id = "mengwa_kaixin" })
    assert(t:wait())
    local models = {}
    for _, p in ipairs(by_kind("policy")) do models[#models + 1] = p.path:match("model=([%w%-]+)") end
    table.sort(models)
    assert.are.same({ "emoji-detect-v1", "emoji-v1" }, models)
    assert.are.equal(2, #by_kind("upload"))
  end)

  it("that are missing or no regular file raise at dashscope.file, before anything is sent", function()
    local _, dir = temp_file("there.png")
    for _, bad in ipairs { dir .. "/missing.png", "file://" .. dir .. "/there.png", dir } do
      local msg = helper.raises(function()
        client:liveportrait { image_url = file(bad), audio_url = "https://example.com/a.wav" }
      end)
      assert.truthy(msg:find("dashscope.file", 1, true), msg)
      assert.truthy(msg:find("regular file", 1, true), msg)
    end
    assert.are.equal(0, #helper.log())
  end)

  it("report an upload the host refuses as nil, err, and submit nothing", function()
    helper.reset { policy_expire_seconds = 0 } -- every policy has expired by the time it is used
    local t, err = client:liveportrait { image_url = file(temp_file("face.png")), audio_url = "https://example.com/a.wav" }
    assert.is_nil(t)
    assert.are.equal(403, err.status)
    assert.truthy(tostring(err):find("expired", 1, true))
    assert.are.equal(2, #by_kind("policy")) -- tried once more with a fresh policy
    assert.are.equal(0, #by_kind("submit"))
  end)
end)

describe("task:download", function()
  local client
  before_each(function()
    helper.reset(FAST)
    client = helper.client()
  end)
  after_each(cleanup)

  local function finished_task() return helper.finished_task(client) end

  it("streams the video to the path, with progress, and sends the result host no key", function()
    local t = finished_task()
    local _, dir = temp_file("placeholder")
    local out = dir .. "/out.mp4"
    local calls, last = 0, nil
    assert.are.equal(out, assert(t:download(out, { on_progress = function(done, total)
      calls, last = calls + 1, { done, total }
    end })))
    local video = read(out)
    assert.are.equal(65536, #video)
    assert.are.equal("ftyp", video:sub(5, 8))
    assert.is_true(calls >= 1)
    assert.are.same({ 65536, 65536 }, last)
    assert.are.equal(1, #by_kind("result"))
    assert_no_key_beyond_service()
  end)

  it("waits for a task still running, then downloads", function()
    local t = assert(client:liveportrait { image_url = "https://example.com/f.png", audio_url = "https://example.com/a.wav" })
    local _, dir = temp_file("placeholder")
    assert(t:download(dir .. "/late.mp4"))
    assert.are.equal(65536, #read(dir .. "/late.mp4"))
  end)

  it("leaves an existing file alone unless told to overwrite", function()
    local t = finished_task()
    local path = temp_file("exists.mp4", "mine")
    local ok, err = t:download(path)
    assert.is_nil(ok)
    assert.are.equal("FileExists", err.code)
    assert.are.equal("mine", read(path))
    assert(t:download(path, { overwrite = true }))
    assert.are.equal(65536, #read(path))
  end)

  it("says clearly when the signed URL has expired, and leaves no file behind", function()
    helper.reset { durations = FAST.durations, concurrency = 0, result_url_lifetime = 0 }
    local t = finished_task()
    local _, dir = temp_file("placeholder")
    local ok, err = t:download(dir .. "/gone.mp4")
    assert.is_nil(ok)
    assert.are.equal("ResultExpired", err.code)
    assert.truthy(tostring(err):find("expired", 1, true))
    local p = io.popen("ls '" .. dir .. "'")
    local listing = p:read("*a")
    p:close()
    assert.are.equal("placeholder\n", listing) -- neither the file nor a partial one
  end)

  it("refuses a task that did not succeed", function()
    helper.reset { durations = FAST.durations, concurrency = 0,
                   outcome = { status = "FAILED", code = "InvalidFile.Content", message = "bad" } }
    local t = assert(client:liveportrait { image_url = "https://example.com/f.png", audio_url = "https://example.com/a.wav" })
    local ok, err = t:download(os.tmpname() .. ".mp4")
    assert.is_nil(ok)
    assert.are.equal("InvalidFile.Content", err.code)
  end)
end)

describe("the task list", function()
  local client
  before_each(function()
    helper.reset(FAST)
    client = helper.client()
  end)

  local function submit(n)
    local tasks = {}
    for i = 1, n do
      tasks[i] = assert(client:liveportrait { image_url = "https://example.com/f" .. i .. ".png",
                                              audio_url = "https://example.com/a.wav" })
    end
    return tasks
  end

  it("returns the documented page, filtered", function()
    local tasks = submit(3)
    client:wait_all(tasks)
    local page = assert(client:tasks { status = "SUCCEEDED", model = "liveportrait", page_size = 2 })
    assert.are.equal(3, page.total)
    assert.are.equal(2, #page.data)
    assert.are.equal(1, page.page_no)
    assert.are.equal(2, page.page_size)
    assert.are.equal(2, page.total_page)
    assert.are.equal("SUCCEEDED", page.data[1].status)
    local q = by_kind("other")[#by_kind("other")].path
    assert.truthy(q:find("model_name=liveportrait", 1, true) and q:find("status=SUCCEEDED", 1, true))
  end)

  it("iterates every page", function()
    local tasks = submit(5)
    local seen = {}
    for item, err in client:each_task { page_size = 2 } do
      assert.is_truthy(item, err)
      seen[item.task_id] = true
    end
    for _, t in ipairs(tasks) do assert.is_true(seen[t.id]) end
  end)

  it("takes epoch seconds as times and refuses a bad filter before sending", function()
    submit(1)
    local page = assert(client:tasks { start_time = os.time() - 600, end_time = os.time() + 600 })
    assert.are.equal(1, page.total)
    helper.reset(FAST)
    assert.truthy(helper.raises(function() client:tasks { status = "DONE" } end):find("status", 1, true))
    assert.truthy(helper.raises(function() client:tasks { page_sise = 2 } end):find("page_size", 1, true))
    assert.are.equal(0, #helper.log())
  end)

  it("lets another client resume a task by id and collect its result", function()
    local t = submit(1)[1]
    local other = helper.client()
    local result = assert(other:task(t.id):wait())
    assert.are.equal(t.id, result.task_id)
    assert.truthy(result.video_url:find("/results/", 1, true))
  end)
end)
