-- :checkhealth dashscope looks for lua/dashscope/health.lua on the runtimepath; the check itself
-- is the plugin's (lua/dashscope_nvim/health.lua). The library has no module of this name.
return {
  check = function()
    require("dashscope_nvim.health").check()
  end,
}
