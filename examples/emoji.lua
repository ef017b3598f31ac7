-- Animate a face photo with a preset expression template (Emoji).
--   DASHSCOPE_API_KEY=sk-... lua5.4 examples/emoji.lua [IMAGE_URL] [DRIVEN_ID]
-- The boxes come from emoji-detect-v1 (bbox_face -> face_bbox, ext_bbox_face -> ext_bbox); these
-- are the detector's answer for the documented sample image.
package.path = (arg[0]:match("^(.*/)") or "./") .. "?.lua;" .. package.path
local dashscope = require("dashscope")
local show = require("show")

local client = dashscope.new()
local result = show.follow(client:emoji {
  image_url = arg[1] or "https://help-static-aliyun-doc.aliyuncs.com/file-manage-files/zh-CN/20250912/uopnly/emoji-%E5%9B%BE%E5%83%8F%E6%A3%80%E6%B5%8B.png",
  driven_id = arg[2] or "mengwa_kaixin",
  face_bbox = { 212, 194, 460, 441 },
  ext_bbox = { 63, 30, 609, 575 },
})
print("video: " .. result.video_url)
