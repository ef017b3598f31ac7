-- Each model's request as the server received it, and every rule of its contract (docs/protocol.md §3).
local helper = require("spec.support.helper")

local VIDEO = "https://example.com/media/talk.mp4"
local AUDIO = "https://example.com/media/voice.wav"
local IMAGE = "https://help-static-aliyun-doc.aliyuncs.com/file-manage-files/zh-CN/20250912/uopnly/emoji-%E5%9B%BE%E5%83%8F%E6%A3%80%E6%B5%8B.png"

local function submits()
  return helper.requests("/video-synthesis")
end

-- A valid field set per model, from the docs/protocol.md samples.
local VALID = {
  videoretalk = { video_url = VIDEO, audio_url = AUDIO, ref_image_url = "", video_extension = false },
  emoji = { image_url = IMAGE, driven_id = "mengwa_kaixin", face_bbox = { 212, 194, 460, 441 },
            ext_bbox = { 63, 30, 609, 575 } },
  liveportrait = { image_url = IMAGE, audio_url = AUDIO, template_id = "normal", eye_move_freq = 0.5,
                   video_fps = 30, mouth_move_strength = 1, paste_back = true, head_move_strength = 0.7 },
}

local function with(model, changes)
  local t = {}
  for k, v in pairs(VALID[model]) do t[k] = v end
  for k, v in pairs(changes) do
    if v == "<nil>" then t[k] = nil else t[k] = v end
  end
  return t
end

describe("a model call", function()
  local client
  before_each(function()
    helper.reset()
    client = helper.client()
  end)
  after_each(function() client:close() end)

  it("posts the videoretalk sample body asynchronously, with the key and JSON headers", function()
    local task = assert(client:videoretalk(VALID.videoretalk))
    local log = submits()
    assert.are.equal(1, #log)
    local r = log[1]
    assert.are.equal("POST", r.method)
    assert.are.equal("/api/v1/services/aigc/image2video/video-synthesis", r.path)
    assert.are.equal("Bearer " .. helper.KEY, r.headers["authorization"])
    assert.are.equal("enable", r.headers["x-dashscope-async"])
    assert.truthy(r.headers["content-type"]:find("application/json", 1, true))
    assert.truthy(r.headers["user-agent"]:find("^lua%-dashscope/"))
    assert.is_nil(r.headers["x-dashscope-ossresourceresolve"])
    assert.are.same({ model = "videoretalk",
                      input = { video_url = VIDEO, audio_url = AUDIO, ref_image_url = "" },
                      parameters = { video_extension = false } }, r.json)
    assert.are.equal("videoretalk", task.model)
    assert.are.equal("PENDING", task:status())
    assert.truthy(task.id:find("^%x+%-"))
    assert.truthy(task.request_id)
  end)

  it("posts the emoji sample body exactly, with no parameters object", function()
    assert(client:emoji(VALID.emoji))
    assert.are.same({ model = "emoji-v1",
                      input = { image_url = IMAGE, driven_id = "mengwa_kaixin",
                                face_bbox = { 212, 194, 460, 441 }, ext_bbox = { 63, 30, 609, 575 } } },
                    submits()[1].json)
  end)

  it("posts the liveportrait sample parameters exactly", function()
    assert(client:liveportrait(VALID.liveportrait))
    local body = submits()[1].json
    assert.are.equal("liveportrait", body.model)
    assert.are.same({ image_url = IMAGE, audio_url = AUDIO }, body.input)
    assert.are.same({ template_id = "normal", eye_move_freq = 0.5, video_fps = 30,
                      mouth_move_strength = 1, paste_back = true, head_move_strength = 0.7 },
                    body.parameters)
    assert.truthy(submits()[1].body:find('"video_fps":30[,}]'))
  end)

  it("sends an empty parameters object when none is given, as the official SDK does", function()
    assert(client:liveportrait { image_url = IMAGE, audio_url = AUDIO })
    local r = submits()[1]
    assert.truthy(r.body:find('"parameters":{}', 1, true))
  end)

  it("sends integral floats as JSON integers", function()
    assert(client:videoretalk(with("videoretalk", { query_face_threshold = 150.0 })))
    assert.truthy(submits()[1].body:find('"query_face_threshold":150[,}]'))
  end)

  it("adds the OSS resolve header when an input is an oss:// URL", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "wb"))
    f:write("png")
    f:close()
    local url = assert(client:upload("liveportrait", path))
    os.remove(path)
    assert(client:liveportrait(with("liveportrait", { image_url = url })))
    assert.are.equal("enable", submits()[1].headers["x-dashscope-ossresourceresolve"])
  end)

  it("sends any other async model as given through submit", function()
    local task = assert(client:submit("test-generic", { prompt = "hi", list = { 1, 2 } }, { n = 1 }))
    assert.are.same({ model = "test-generic", input = { prompt = "hi", list = { 1, 2 } },
                      parameters = { n = 1 } }, submits()[1].json)
    assert.are.equal("test-generic", task.model)
  end)
end)

-- Every rule of every contract raises, names the field and the rule, and sends nothing.
local RULES = {
  { "videoretalk", { video_url = "<nil>" }, "field 'video_url' is required" },
  { "videoretalk", { audio_url = "<nil>" }, "field 'audio_url' is required" },
  { "videoretalk", { video_url = "ftp://x/y.mp4" }, "field 'video_url' must be an http://, https:// or oss:// URL" },
  { "videoretalk", { video_url = 42 },
    "field 'video_url' must be an http://, https:// or oss:// URL; pass a local file as dashscope.file(path) (got 42)" },
  { "videoretalk", { audio_url = "voice.wav" },
    "field 'audio_url' must be an http://, https:// or oss:// URL; pass a local file as dashscope.file(path) (got \"voice.wav\")" },
  { "videoretalk", { ref_image_url = "nope" }, "field 'ref_image_url' must be an http://, https:// or oss:// URL" },
  { "videoretalk", { ref_image_url = "ftp://example.com/x.png" }, "field 'ref_image_url' must be an http://, https:// or oss:// URL; pass a local file" },
  { "videoretalk", { video_extension = "false" }, "field 'video_extension' must be a boolean" },
  { "videoretalk", { query_face_threshold = 119 }, "field 'query_face_threshold' must be an integer from 120 to 200 (got 119)" },
  { "videoretalk", { query_face_threshold = 201 }, "must be an integer from 120 to 200" },
  { "videoretalk", { query_face_threshold = 150.5 }, "must be an integer from 120 to 200" },
  { "videoretalk", { vidoe_url = VIDEO }, "unknown field \"vidoe_url\" (did you mean 'video_url'?)" },
  { "videoretalk", { parameters = {} }, "unknown field \"parameters\"" },
  { "emoji", { image_url = "<nil>" }, "field 'image_url' is required" },
  { "emoji", { driven_id = "<nil>" }, "field 'driven_id' is required" },
  { "emoji", { face_bbox = "<nil>" }, "give ext_bbox and face_bbox together, or none of them" },
  { "emoji", { ext_bbox = "<nil>" }, "give ext_bbox and face_bbox together, or none of them" },
  { "emoji", { driven_id = "mengwa_kaixn" }, "field 'driven_id' must be one of the 20 documented values (did you mean \"mengwa_kaixin\"?)" },
  { "emoji", { driven_id = "happy" }, "mengwa_kaixin, mengwa_dengyan" },
  { "emoji", { face_bbox = { 212, 194, 460 } }, "field 'face_bbox' must be an array of 4 integers {x1, y1, x2, y2}" },
  { "emoji", { face_bbox = { 460, 194, 212, 441 } }, "0 <= x1 < x2 and 0 <= y1 < y2" },
  { "emoji", { ext_bbox = { 63, 575, 609, 30 } }, "field 'ext_bbox' must be an array of 4 integers" },
  { "emoji", { ext_bbox = { 63, 30, 609, 575.5 } }, "field 'ext_bbox' must be an array" },
  { "emoji", { ext_bbox = { -1, 30, 609, 575 } }, "field 'ext_bbox' must be an array" },
  { "emoji", { face_bbox = { 1, 2, 3, 4, 5 } }, "field 'face_bbox' must be an array" },
  { "emoji", { face_bbox = "212,194,460,441" }, "field 'face_bbox' must be an array" },
  { "emoji", { faceBbox = { 1, 2, 3, 4 } }, "did you mean 'face_bbox'?" },
  { "liveportrait", { image_url = "<nil>" }, "field 'image_url' is required" },
  { "liveportrait", { audio_url = "<nil>" }, "field 'audio_url' is required" },
  { "liveportrait", { template_id = "wild" }, "field 'template_id' must be one of normal, calm, active (got \"wild\")" },
  { "liveportrait", { template_id = "clam" }, "did you mean \"calm\"?" },
  { "liveportrait", { eye_move_freq = 1.01 }, "field 'eye_move_freq' must be a number from 0 to 1" },
  { "liveportrait", { eye_move_freq = -0.1 }, "field 'eye_move_freq' must be a number from 0 to 1" },
  { "liveportrait", { video_fps = 14 }, "field 'video_fps' must be an integer from 15 to 30" },
  { "liveportrait", { video_fps = 31 }, "field 'video_fps' must be an integer from 15 to 30" },
  { "liveportrait", { video_fps = 24.5 }, "field 'video_fps' must be an integer from 15 to 30" },
  { "liveportrait", { mouth_move_strength = 1.6 }, "field 'mouth_move_strength' must be a number from 0 to 1.5" },
  { "liveportrait", { mouth_move_strength = "1" }, "field 'mouth_move_strength' must be a number" },
  { "liveportrait", { paste_back = 1 }, "field 'paste_back' must be a boolean" },
  { "liveportrait", { head_move_strength = 2 }, "field 'head_move_strength' must be a number from 0 to 1" },
  { "liveportrait", { head_move_strength = 0 / 0 }, "field 'head_move_strength' must be a number" },
  { "liveportrait", { fps = 30 }, "did you mean" },
}

describe("a model call with bad input", function()
  local client
  setup(function()
    helper.reset()
    client = helper.client()
  end)
  teardown(function() client:close() end)

  for _, case in ipairs(RULES) do
    local model, changes, expected = case[1], case[2], case[3]
    local label = next(changes)
    it(model .. " refuses " .. label .. " = " .. tostring(changes[label]) .. " before sending", function()
      local before = helper.stats().requests
      local message = helper.raises(function() client[model](client, with(model, changes)) end)
      assert.are.equal(before, helper.stats().requests, "nothing reaches the server")
      assert.truthy(message:find(model .. ": ", 1, true), message)
      assert.truthy(message:find(expected, 1, true), "expected «" .. expected .. "» in «" .. message .. "»")
      assert.truthy(message:find("models_spec.lua", 1, true), "the error points at the caller: " .. message)
    end)
  end

  it("accepts every boundary value of every range", function()
    assert(client:videoretalk(with("videoretalk", { query_face_threshold = 120 })))
    assert(client:videoretalk(with("videoretalk", { query_face_threshold = 200, video_extension = true })))
    assert(client:liveportrait(with("liveportrait", { eye_move_freq = 0, video_fps = 15, mouth_move_strength = 0,
                                                      head_move_strength = 0, template_id = "calm" })))
    assert(client:liveportrait(with("liveportrait", { eye_move_freq = 1, video_fps = 30, mouth_move_strength = 1.5,
                                                      head_move_strength = 1, template_id = "active",
                                                      paste_back = false })))
  end)

  it("accepts all 20 driven_id templates", function()
    local ids = {}
    for _, rule in ipairs(helper.dashscope.models.emoji.fields) do
      if rule.name == "driven_id" then ids = rule.values end
    end
    assert.are.equal(20, #ids)
    for _, id in ipairs(ids) do
      assert(client:emoji(with("emoji", { driven_id = id })))
    end
  end)

  it("refuses a non-table, and a call made with a dot", function()
    assert.truthy(helper.raises(function() client:videoretalk("x") end):find("expects a table of fields", 1, true))
    assert.truthy(helper.raises(function() client.emoji(VALID.emoji) end):find("with a colon", 1, true))
  end)

  it("refuses what JSON cannot carry in submit", function()
    assert.truthy(helper.raises(function() client:submit("", {}) end):find("model must be a non-empty string", 1, true))
    assert.truthy(helper.raises(function() client:submit("m", "x") end):find("input must be a table", 1, true))
    assert.truthy(helper.raises(function() client:submit("m", { f = print }) end):find("input.f is a function", 1, true))
    assert.truthy(helper.raises(function() client:submit("m", { 1, x = 2 }) end):find("mixes array items", 1, true))
    local loop = {}
    loop.self = loop
    assert.truthy(helper.raises(function() client:submit("m", loop) end):find("refers back to itself", 1, true))
    assert.truthy(helper.raises(function() client:submit("m", {}, { x = 1 / 0 }) end):find("not a finite number", 1, true))
  end)
end)
