-- Lip-sync a video to new audio with VideoRetalk.
--   DASHSCOPE_API_KEY=sk-... lua5.4 examples/videoretalk.lua VIDEO AUDIO [REF_IMAGE] (URLs or local files)
-- The video: mp4/avi/mov, 2-120 s, a frontal close-up; the audio: wav/mp3/aac, 2-120 s.
package.path = (arg[0]:match("^(.*/)") or "./") .. "?.lua;" .. package.path
local dashscope = require("dashscope")
local show = require("show")

local usage = "videoretalk.lua VIDEO_URL AUDIO_URL [REF_IMAGE_URL]"
local client = dashscope.new()
local result = show.follow(client:videoretalk {
  video_url = show.media(show.arg(1, nil, usage)), -- a URL, or a local file (dashscope.file)
  audio_url = show.media(show.arg(2, nil, usage)),
  ref_image_url = arg[3] and show.media(arg[3]) or "", -- which face to re-voice when several appear
  video_extension = false,        -- audio longer than video: cut the audio
  query_face_threshold = 170,
})
print("video: " .. result.video_url)
