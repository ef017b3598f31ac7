-- :checkhealth dashscope: the module found (where, which version, which JSON), the API key found
-- (where from, as the client says: never the key), the service reachable with it (one task-list page, asked without
-- blocking the editor's loop, 10 s at most), and the versions of what it runs on.
local health = {}

-- Neovim 0.10's vim.health.start/ok/..., 0.8's vim.health.report_*, 0.7's require("health").
local report = vim.health or require("health")
local function say(kind, ...)
  local fn = report[kind] or report["report_" .. kind]
  fn(...)
end

local function check_module(plugin)
  local ok, dashscope = pcall(plugin.library)
  if not ok then
    say("error", tostring(dashscope), {
      "luarocks --lua-version=5.1 --local install dashscope (the plugin looks in ~/.luarocks)",
      "or build a checkout for LuaJIT (make LUA_VERSION=luajit) and setup{ build_dir = 'CHECKOUT/build/luajit' }",
    })
    return nil
  end
  say("ok", ("lua-dashscope %s: %s"):format(dashscope.VERSION, package.searchpath("dashscope", package.path) or "?"))
  local core = require("dashscope.core")
  say("ok", "C core: " .. (package.searchpath("dashscope.core", package.cpath) or "?") .. " (" .. core.libcurl_version .. ")")
  local cjson = pcall(require, "cjson")
  say("ok", cjson and "JSON: lua-cjson" or "JSON: Neovim's vim.json (lua-cjson is not on the path; none is needed)")
  return dashscope
end

-- One task-list page with the plugin's client, in a coroutine; vim.wait turns the loop meanwhile.
local function check_service(plugin)
  local made, client = pcall(plugin.client)
  if not made then
    say("error", tostring(client))
    return
  end
  say("ok", "API key found (" .. client.key_source .. ")")
  local answer
  plugin.run(function(c)
    local page, err = c:tasks { page_size = 1 }
    answer = { page = page, err = err }
  end)
  if not vim.wait(10000, function() return answer ~= nil end, 10) then
    say("error", "no answer from " .. client.base_url .. " within 10 s")
  elseif answer.page then
    say("ok", ("service reachable at %s, the key accepted (%d tasks listed)"):format(client.base_url, answer.page.total or 0))
  else
    say("error", ("service at %s: %s"):format(client.base_url, tostring(answer.err)))
  end
end

function health.check()
  local plugin = require("dashscope_nvim")
  say("start", "dashscope")
  local v = vim.version()
  say("info", ("Neovim %d.%d.%d, %s, event loop %s"):format(v.major, v.minor, v.patch,
    jit and jit.version or _VERSION, vim.uv and "vim.uv" or "vim.loop"))
  if check_module(plugin) then check_service(plugin) end
end

return health
