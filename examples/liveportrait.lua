-- Animate a portrait photo from speech audio with LivePortrait.
--   DASHSCOPE_API_KEY=sk-... lua5.4 examples/liveportrait.lua IMAGE_URL_OR_FILE AUDIO_URL_OR_FILE
-- The image should have passed liveportrait-detect; the audio is wav/mp3, 1 s to 3 min.
package.path = (arg[0]:match("^(.*/)") or "./") .. "?.lua;" .. package.path
local dashscope = require("dashscope")
local show = require("show")

local image = show.arg(1, "https://help-static-aliyun-doc.aliyuncs.com/file-manage-files/zh-CN/20250911/ynhjrg/p874909.png",
  "liveportrait.lua IMAGE_URL AUDIO_URL")
local audio = show.arg(2, nil, "liveportrait.lua IMAGE_URL AUDIO_URL")

local client = dashscope.new() -- the key from DASHSCOPE_API_KEY (or the key file)
local result = show.follow(client:liveportrait {
  image_url = show.media(image), -- a URL, or a local file marked with dashscope.file
  audio_url = show.media(audio),
  template_id = "normal",   -- normal | calm | active
  eye_move_freq = 0.5,
  video_fps = 30,
  mouth_move_strength = 1,
  paste_back = true,
  head_move_strength = 0.7,
})
print("video: " .. result.video_url)
