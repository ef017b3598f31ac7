-- Animate a face photo with a preset expression template (Emoji).
--   DASHSCOPE_API_KEY=sk-... lua5.4 examples/emoji.lua [IMAGE_URL_OR_FILE] [DRIVEN_ID] [OUT.mp4]
-- No boxes are given, so the client runs emoji-detect-v1 on the image first and uses the boxes it
-- finds (a refused face stops here, with the detector's reason, and nothing is submitted). A local
-- file (marked with dashscope.file, see show.media) is uploaded for you. With OUT.mp4 the video is downloaded there.
package.path = (arg[0]:match("^(.*/)") or "./") .. "?.lua;" .. package.path
local dashscope = require("dashscope")
local show = require("show")

local client = dashscope.new()
local SAMPLE = "https://help-static-aliyun-doc.aliyuncs.com/file-manage-files/zh-CN/20250912/uopnly/"
  .. "emoji-%E5%9B%BE%E5%83%8F%E6%A3%80%E6%B5%8B.png"
local task, err = client:emoji {
  image_url = show.media(arg[1] or SAMPLE), -- a URL, or a local file marked with dashscope.file
  driven_id = arg[2] or "mengwa_kaixin",
}
local result = show.follow(task, err)
print("video: " .. result.video_url)
if arg[3] then
  print("saved: " .. assert(task:download(arg[3], { overwrite = true })))
end
