-- The rocks as a user meets them (issue 14): `make rock` makes the release tarball and the two
-- source rocks; each installs offline (--deps-mode=none) into a fresh tree, for Lua 5.4 and for
-- LuaJIT, and a job runs against the local server from that tree alone (plus Debian's lua-cjson).
-- It builds with the compiler and installs twice: once per CI, under lua5.4 only, and not under
-- valgrind or ASan (the C under test there is the suite's own build; this is luarocks' and gcc's).
local helper = require("spec.support.helper")
local shell = require("spec.support.shell")

local VERSION = helper.dashscope.VERSION
local ROCK = "dashscope-" .. VERSION .. "-1"
local LUA = os.getenv("LUA") or "lua5.4"
local WHY_NOT = LUA ~= "lua5.4" and "once per CI, under lua5.4 (this is " .. LUA .. ")"
  or helper.UNDER_VALGRIND and "not under valgrind: it checks luarocks' build, not our memory"
  or (helper.UNDER_ASAN or os.getenv("ASAN_OPTIONS")) and "not under ASan: it checks luarocks' build"

local quote = shell.quote

-- What `cmd` printed; it must exit 0.
local function must(cmd)
  local ok, out = shell.run(cmd)
  assert(ok, cmd .. "\n" .. out)
  return out
end

-- The two interpreters, each with how luarocks is run for it: Lua 5.4 as Debian's luarocks knows
-- it; LuaJIT as Lua 5.1 with LuaJIT's interpreter and headers (a config of its own).
local function targets(tmp)
  local luajit_config = tmp .. "/luajit-config.lua"
  local incdir = assert(must("pkg-config --cflags-only-I luajit"):match("^%-I(%S+)"), "no luajit.pc")
  local f = assert(io.open(luajit_config, "w"))
  f:write('lua_interpreter = "luajit"\n', ('variables = { LUA_INCDIR = %q }\n'):format(incdir))
  f:close()
  return {
    { name = "lua5.4", abi = "5.4", tree = tmp .. "/tree-5.4", luarocks = "luarocks --lua-version=5.4" },
    { name = "luajit", abi = "5.1", tree = tmp .. "/tree-luajit",
      luarocks = "LUAROCKS_CONFIG=" .. quote(luajit_config) .. " luarocks --lua-version=5.1" },
  }
end

-- Debian's lua-cjson directory for an ABI (luarocks does not see Debian's rocks: --deps-mode=none).
local function cjson_dir(abi)
  local out = must("dpkg -L lua-cjson")
  return assert(out:match("\n(/[^\n]*/lua/" .. abi:gsub("%.", "%%.") .. ")/cjson%.so\n"), out)
end

-- A command that runs with only the tree (and cjson) on the paths: no LUA_PATH of the suite's.
local function tree_env(t)
  return ("env -u LUA_PATH_5_4 -u LUA_CPATH_5_4 LUA_PATH=%s LUA_CPATH=%s"):format(
    quote(t.tree .. "/share/lua/" .. t.abi .. "/?.lua;" .. t.tree .. "/share/lua/" .. t.abi .. "/?/init.lua"),
    quote(t.tree .. "/lib/lua/" .. t.abi .. "/?.so;" .. cjson_dir(t.abi) .. "/?.so"))
end

-- One liveportrait job against the local server, then where dashscope, its core and cjson came
-- from, one a line.
local JOB = [[
local dashscope = require("dashscope")
local client = assert(dashscope.new { api_key = arg[2], base_url = arg[1], poll_interval = 0.02,
  max_poll_interval = 0.05, rate_limits = false })
local task = assert(client:liveportrait { image_url = "https://example.com/face.png",
  audio_url = "https://example.com/a.wav" })
assert(task:wait())
print(task:status(), dashscope.VERSION)
print(package.searchpath("dashscope", package.path))
print(package.searchpath("dashscope.core", package.cpath))
print(package.searchpath("cjson", package.cpath))
]]

local tmp, dist -- made once, by the first case
local function release()
  if dist then return dist end
  tmp = os.tmpname()
  os.remove(tmp)
  must("mkdir -p " .. quote(tmp))
  dist = tmp .. "/dist"
  must("make --no-print-directory rock DIST=" .. quote(dist))
  return dist
end

describe("the rocks (make rock, luarocks install)", function()
  teardown(function()
    if tmp then os.execute("rm -rf " .. quote(tmp)) end
  end)

  it("are linted clean by luarocks lint", function()
    if WHY_NOT then return pending(WHY_NOT) end
    for _, spec in ipairs { "rockspec/" .. ROCK .. ".rockspec", "rockspec/dashscope-hiredis-" .. VERSION .. "-1.rockspec" } do
      must("luarocks lint " .. spec)
    end
  end)

  it("are made by make rock: the release tarball and two source rocks that carry it", function()
    if WHY_NOT then return pending(WHY_NOT) end
    local d = release()
    local base = "lua-dashscope-" .. VERSION
    local listing = must("tar tzf " .. quote(d .. "/" .. base .. ".tar.gz"))
    for _, file in ipairs { "Makefile", "src/core.c", "src/dashscope.lua", "bin/dashscope",
                            "spec/with-server", "scripts/luarocks-test.lua", "rockspec/" .. ROCK .. ".rockspec" } do
      assert.truthy(("\n" .. listing):find("\n" .. base .. "/" .. file .. "\n", 1, true), file)
    end
    assert.truthy(listing:find("\n" .. base .. "/types/", 1, true), "no types")
    assert.falsy(listing:find("\n" .. base .. "/build/", 1, true), "build/ is packed")
    for _, rock in ipairs { ROCK, "dashscope-hiredis-" .. VERSION .. "-1" } do
      local entries = {}
      for name in must("unzip -Z1 " .. quote(d .. "/" .. rock .. ".src.rock")):gmatch("[^\n]+") do
        entries[#entries + 1] = name
      end
      table.sort(entries)
      assert.are.same({ rock .. ".rockspec", base .. ".tar.gz" }, entries)
    end
  end)

  it("install offline into a fresh tree for Lua 5.4 and LuaJIT, and a job runs from that tree alone", function()
    if WHY_NOT then return pending(WHY_NOT) end
    local d = release()
    for _, t in ipairs(targets(tmp)) do
      must("cd " .. quote(tmp) .. " && " .. t.luarocks .. " --tree=" .. quote(t.tree)
        .. " install --deps-mode=none " .. quote(d .. "/" .. ROCK .. ".src.rock"))
      helper.reset(helper.FAST)
      local script = tmp .. "/job.lua"
      local f = assert(io.open(script, "w"))
      f:write(JOB)
      f:close()
      local out = must(tree_env(t) .. " " .. t.name .. " " .. quote(script) .. " "
        .. quote(helper.BASE_URL) .. " " .. quote(helper.KEY))
      local status, version, lua, core, cjson = out:match("^(%S+)\t(%S+)\n([^\n]+)\n([^\n]+)\n([^\n]+)\n$")
      assert.are.equal("SUCCEEDED", status, t.name .. ": " .. out)
      assert.are.equal(VERSION, version)
      assert.are.equal(t.tree .. "/share/lua/" .. t.abi .. "/dashscope.lua", lua)
      assert.are.equal(t.tree .. "/lib/lua/" .. t.abi .. "/dashscope/core.so", core)
      assert.are.equal(cjson_dir(t.abi) .. "/cjson.so", cjson)
      -- without the rock dashscope-hiredis, a Redis quota store says which rock to install
      local said = must(tree_env(t) .. " " .. t.name .. " -e " .. quote('print(select(2, pcall(require("dashscope").new, '
        .. '{ api_key = "sk-x", quota = "redis://127.0.0.1:1" })))'))
      assert.truthy(said:find('quota = "redis://127.0.0.1:1"', 1, true), said)
      assert.truthy(said:find("install the rock dashscope-hiredis", 1, true), said)
      -- luarocks compiles without -fvisibility=hidden: the headers hide what is internal themselves
      assert.are.equal("luaopen_dashscope_core\n",
        must("nm -D --defined-only " .. quote(core) .. " | awk '$2 == \"T\" { print $3 }'"), t.name)
      -- the launcher luarocks writes runs the CLI with this interpreter and this tree
      assert.truthy(must(tree_env(t) .. " " .. quote(t.tree .. "/bin/dashscope") .. " --help"):find("liveportrait", 1, true))
      -- the types: in the rock's directory, not on any path
      local rock_dir = must(t.luarocks .. " --tree=" .. quote(t.tree) .. " show --rock-dir dashscope"):match("^(%S+)")
      assert.are.equal(t.tree .. "/lib/luarocks/rocks-" .. t.abi .. "/dashscope/" .. VERSION .. "-1", rock_dir)
      -- as the lua-language-server addon types/README.md describes: config.json beside library/
      assert.truthy(io.open(rock_dir .. "/types/config.json"), rock_dir)
      assert.truthy(io.open(rock_dir .. "/types/library/dashscope.lua"), rock_dir)
      assert.truthy(io.open(rock_dir .. "/types/library/dashscope/uv.lua"), rock_dir)
      assert.is_nil(io.open(t.tree .. "/share/lua/" .. t.abi .. "/types"), "types on package.path")
    end
  end)

  it("install dashscope-hiredis beside it, and dashscope.hiredis loads from the tree", function()
    if WHY_NOT then return pending(WHY_NOT) end
    local d = release()
    local t = targets(tmp)[1]
    -- into the tree of the case above (its dependency, dashscope == VERSION, is not checked:
    -- --deps-mode=none; the module needs nothing of it to load)
    must("cd " .. quote(tmp) .. " && " .. t.luarocks .. " --tree=" .. quote(t.tree) .. " install --deps-mode=none "
      .. quote(d .. "/dashscope-hiredis-" .. VERSION .. "-1.src.rock"))
    local out = must(tree_env(t) .. " lua5.4 -e " .. quote(
      'local h = require("dashscope.hiredis") print(type(h.connect), package.searchpath("dashscope.hiredis", package.cpath))'))
    assert.are.equal("function\t" .. t.tree .. "/lib/lua/5.4/dashscope/hiredis.so\n", out)
  end)

  -- The Neovim plugin (examples/nvim) over the LuaJIT tree above, as `luarocks --local` users get
  -- it: setup{ rocks_tree } and nothing else on the paths; :checkhealth, then a job by command.
  it("serve the Neovim plugin from the LuaJIT tree: :checkhealth dashscope finds it, a job runs", function()
    if WHY_NOT then return pending(WHY_NOT) end
    if not shell.run("command -v nvim") then return pending("nvim is not installed (apt-get install neovim)") end
    local t = targets(tmp)[2]
    assert.truthy(io.open(t.tree .. "/lib/lua/5.1/dashscope/core.so"), "the case above installs the LuaJIT tree")
    helper.reset(helper.FAST)
    local script = tmp .. "/nvim.lua"
    local f = assert(io.open(script, "w"))
    f:write([=[
local notes, out = {}, io.open(os.getenv("DS_OUT"), "w")
vim.notify = function(m) notes[#notes + 1] = m end
require("dashscope_nvim").setup { rocks_tree = os.getenv("DS_TREE") }
vim.cmd("checkhealth dashscope")
out:write(table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), "\n"), "\n")
vim.cmd("DashscopeLivePortrait https://example.com/face.png https://example.com/a.wav")
local done = vim.wait(20000, function() return (notes[#notes] or ""):find(" video: ") ~= nil end, 10)
out:write(table.concat(notes, "\n"), "\n")
out:close()
vim.cmd(done and "qall!" or "cquit 1")
]=])
    f:close()
    local found = tmp .. "/nvim.out"
    local ok, said = shell.run(("cd %s && env -u LUA_PATH -u LUA_CPATH DASHSCOPE_API_KEY=%s DASHSCOPE_HTTP_BASE_URL=%s "
      .. "DS_TREE=%s DS_OUT=%s timeout 60 nvim --headless --clean --cmd %s -c %s </dev/null"):format(
      quote(tmp), quote(helper.KEY), quote(helper.BASE_URL), quote(t.tree), quote(found),
      quote("set rtp^=" .. select(2, shell.run("pwd")):gsub("%s+$", "") .. "/examples/nvim"), quote("luafile " .. script)))
    local text = helper.read_file(found) or ""
    assert.is_true(ok, said .. "\n" .. text)
    assert.truthy(text:find("OK: lua-dashscope " .. VERSION .. ": " .. t.tree .. "/share/lua/5.1/dashscope.lua", 1, true), text)
    assert.truthy(text:find("OK: C core: " .. t.tree .. "/lib/lua/5.1/dashscope/core.so", 1, true), text)
    assert.truthy(text:find("OK: service reachable at ", 1, true), text)
    assert.truthy(text:find("dashscope: task %S+ video: http://127%.0%.0%.1:"), text)
  end)
end)
