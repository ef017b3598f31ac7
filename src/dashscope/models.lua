-- The model contracts, as data (docs/protocol.md §3). One checker (check.lua) reads every table and the
-- client builds the request body from it, so adding a model means adding a table here.
--
-- A model: method name -> {
--   model = service model name,
--   doc = what it does, in one line (help texts, docs),
--   synchronous = true for a detector, a synchronous pre-check (docs/protocol.md §7; answers a table, submits nothing),
--   fixed = { parameters = {...} } sent as they are (not fields the caller gives),
--   detect = { method = detector, fills = { field = output key } }: when every field it fills is
--            absent, the detector runs first and its answer fills them (or its refusal is returned),
--   result = where the video URL is in a SUCCEEDED answer ("output.video_url" unless given),
--   parameters = true when the body always carries a `parameters` object (as the SDK sends it),
--   fields = rules for check.fields: name, where ("input" | "parameters"), type, required,
--            default (what the service assumes; documentation only: we send only what was given),
--            min/max, values, doc (one line for docs and annotations).
-- }

local DRIVEN_IDS = {
  -- 萌娃 kid
  "mengwa_kaixin", "mengwa_dengyan", "mengwa_gandong", "mengwa_renzhen_1", "mengwa_jidong",
  "mengwa_kun_1", "mengwa_jiaoxie",
  -- 打工 office
  "dagong_kaixin", "dagong_yangwang", "dagong_kunhuo", "dagong_zhuakuang", "dagong_wunai",
  "dagong_weixiao", "dagong_ganji",
  -- 经典 classic
  "jingdian_tiaopi", "jingdian_deyi_1", "jingdian_qidai", "jingdian_landuo_1", "jingdian_xianqi",
  "jingdian_lei",
}

local models = {}

models.videoretalk = {
  model = "videoretalk",
  doc = "lip-sync a video to new audio",
  parameters = true,
  fields = {
    { name = "video_url", where = "input", type = "url", required = true,
      doc = "the video to lip-sync: mp4/avi/mov, 2-120 s, 15-60 fps, each side 640-2048 px, <= 300 MB" },
    { name = "audio_url", where = "input", type = "url", required = true,
      doc = "the new speech: wav/mp3/aac, 2-120 s, <= 30 MB" },
    { name = "ref_image_url", where = "input", type = "url", allow_empty = true, default = "",
      doc = "a frontal face of the person to re-voice when several appear; empty: the largest face" },
    { name = "video_extension", where = "parameters", type = "boolean", default = false,
      doc = "audio longer than video: true extends the video (reversed, then forward); false cuts the audio" },
    { name = "query_face_threshold", where = "parameters", type = "integer", min = 120, max = 200,
      default = 170, doc = "face match threshold for ref_image_url; lower matches more loosely" },
  },
}

models.emoji = {
  model = "emoji-v1",
  doc = "animate a face photo with an expression template",
  fields = {
    { name = "image_url", where = "input", type = "url", required = true,
      doc = "a frontal portrait that passed emoji-detect-v1: 400-7000 px per side, <= 10 MB" },
    { name = "driven_id", where = "input", type = "enum", required = true, values = DRIVEN_IDS,
      doc = "the expression template" },
    { name = "face_bbox", where = "input", type = "bbox",
      doc = "face box {x1, y1, x2, y2} in px: emoji-detect-v1's bbox_face (omit both boxes: detected for you)" },
    { name = "ext_bbox", where = "input", type = "bbox",
      doc = "the dynamic expression area {x1, y1, x2, y2}, about 1:1: emoji-detect-v1's ext_bbox_face" },
  },
  detect = { method = "emoji_detect", fills = { face_bbox = "face_bbox", ext_bbox = "ext_bbox" } },
}

models.liveportrait = {
  model = "liveportrait",
  doc = "animate a portrait photo from speech audio",
  result = "output.results.video_url",
  parameters = true,
  fields = {
    { name = "image_url", where = "input", type = "url", required = true,
      doc = "a portrait that passed liveportrait-detect: < 10 MB, aspect <= 2, longest side <= 4096 px" },
    { name = "audio_url", where = "input", type = "url", required = true,
      doc = "speech: wav/mp3, < 15 MB, 1 s - 3 min" },
    { name = "template_id", where = "parameters", type = "enum", values = { "normal", "calm", "active" },
      default = "normal", doc = "head motion: normal (moderate), calm (small), active (large, singing)" },
    { name = "eye_move_freq", where = "parameters", type = "number", min = 0, max = 1, default = 0.5,
      doc = "blinks per second" },
    { name = "video_fps", where = "parameters", type = "integer", min = 15, max = 30, default = 24,
      doc = "frames per second of the output" },
    { name = "mouth_move_strength", where = "parameters", type = "number", min = 0, max = 1.5,
      default = 1, doc = "0 means no mouth movement" },
    { name = "paste_back", where = "parameters", type = "boolean", default = true,
      doc = "true pastes the face back onto the full image; false outputs the face region only" },
    { name = "head_move_strength", where = "parameters", type = "number", min = 0, max = 1,
      default = 0.7, doc = "strength of head movement" },
  },
}

models.liveportrait_detect = {
  model = "liveportrait-detect",
  synchronous = true,
  doc = "check that a portrait suits liveportrait",
  fields = {
    { name = "image_url", where = "input", type = "url", required = true,
      doc = "the portrait to check for liveportrait: jpeg/jpg/png/bmp/webp, < 10 MB, aspect <= 2, longest side <= 4096 px" },
  },
}

models.emoji_detect = {
  model = "emoji-detect-v1",
  synchronous = true,
  doc = "check a face photo for emoji-v1 and find its boxes",
  fixed = { parameters = { ratio = "1:1" } },
  fields = {
    { name = "image_url", where = "input", type = "url", required = true,
      doc = "the face photo to check for emoji-v1: 400-7000 px per side, <= 10 MB, one frontal uncovered face" },
  },
}

return models
