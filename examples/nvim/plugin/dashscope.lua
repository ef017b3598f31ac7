-- :DashscopeLivePortrait {image_url} {audio_url} [template_id]: see examples/nvim/README.md.
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
  require("dashscope_nvim").liveportrait { image_url = args[1], audio_url = args[2], template_id = args[3] }
end, { nargs = "+", desc = "Animate a portrait from speech with DashScope LivePortrait" })
