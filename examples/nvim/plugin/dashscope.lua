-- :DashscopeLivePortrait {image_url} {audio_url} [template_id]: see examples/nvim/README.md.
-- What the user types here is their own: a URL goes as it is, anything else names a local file of
-- theirs (~ expanded), passed as dashscope.file. The Lua function itself takes only what it is given.
if vim.g.loaded_dashscope then
  return
end
vim.g.loaded_dashscope = true

vim.api.nvim_create_user_command("DashscopeLivePortrait", function(cmd)
  local args = cmd.fargs
  if #args < 2 or #args > 3 then
    vim.notify("usage: :DashscopeLivePortrait {image_url} {audio_url} [template_id]", vim.log.levels.ERROR)
    return
  end
  local ok, media = pcall(function()
    local function media(arg)
      if arg:find("^%a[%w+.-]*://") then return arg end
      return require("dashscope").file(vim.fn.expand(arg))
    end
    return { media(args[1]), media(args[2]) }
  end)
  if not ok then
    vim.notify("DashscopeLivePortrait: " .. tostring(media):gsub("^.-:%d+: ", ""), vim.log.levels.ERROR)
    return
  end
  require("dashscope_nvim").liveportrait { image_url = media[1], audio_url = media[2], template_id = args[3] }
end, { nargs = "+", desc = "Animate a portrait from speech with DashScope LivePortrait" })
