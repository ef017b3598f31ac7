-- Registers the commands of lua/dashscope_nvim/commands.lua (:help dashscope). Nothing else is
-- loaded here: the library and the client come with the first command, so startup costs nothing.
if vim.g.loaded_dashscope then
  return
end
vim.g.loaded_dashscope = true

for _, command in ipairs(require("dashscope_nvim.commands").LIST) do
  local name = command.name
  vim.api.nvim_create_user_command(name, function(cmd)
    require("dashscope_nvim.commands").run(name, cmd)
  end, {
    nargs = "*",
    bang = command.bang,
    desc = command.desc .. ": " .. command.usage,
    complete = function(lead, line)
      return require("dashscope_nvim.commands").complete(name, lead, line)
    end,
  })
end
