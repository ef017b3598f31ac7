-- The build as a user meets it: the C core dashscope.core loads alone and exports one symbol, the
-- rockspecs list every source and no architecture, and make install lays the module out as the
-- build tree does (dashscope.lua, dashscope/core.so, dashscope/*.lua). The rocks themselves are
-- built, installed and run in spec/rock_spec.lua (once per CI).
local helper = require("spec.support.helper")
local shell = require("spec.support.shell")

local run = shell.run

-- The interpreter under test (make test sets LUA): its LUA_VERSION for make, and the version of
-- its module directories (LuaJIT's are 5.1's).
local LUA = os.getenv("LUA") or "lua5.4"
local LUA_VERSION = LUA:match("^lua(%d%.%d)$") or (LUA == "luajit" and "luajit") or "5.4"
local ABI = _VERSION:match("%d+%.%d+")

local function listing(pattern)
  local files = {}
  local p = assert(io.popen("ls " .. pattern))
  for line in p:lines() do files[#files + 1] = line end
  p:close()
  table.sort(files)
  return files
end

local ROCKSPEC = "rockspec/dashscope-" .. helper.dashscope.VERSION .. "-1.rockspec"

local function exists(path)
  local f = io.open(path)
  if f then f:close() end
  return f ~= nil
end

-- The build directory the C core under test comes from (make test puts it first on LUA_CPATH):
-- the directory above the first dashscope/core.so on package.cpath (Lua 5.1 has no searchpath).
local function build_under_test()
  for template in package.cpath:gmatch("[^;]+") do
    local so = template:gsub("%?", "dashscope/core")
    if exists(so) then return so:match("^(.*)/dashscope/core%.so$") or "." end
  end
  error("no dashscope/core.so on package.cpath")
end

-- The functions a shared object exports, one a line (defined, global, in the text section: what
-- another object could call), after whether nm ran.
local function exported(so)
  return run("nm -D --defined-only " .. so .. " | awk '$2 == \"T\" { print $3 }'")
end

-- The builds to load the C core from in a fresh process: the one under test, with its interpreter,
-- and LuaJIT's (build/luajit) if it exists and is not that one.
local function builds()
  local list = { { lua = LUA, dir = build_under_test() } }
  if LUA ~= "luajit" and exists("build/luajit/dashscope/core.so") then
    list[#list + 1] = { lua = "luajit", dir = "build/luajit" }
  end
  return list
end

describe("the C core, dashscope.core", function()
  it("loads alone in a fresh interpreter, and loads no Lua module of the library", function()
    for _, b in ipairs(builds()) do
      -- Nothing but the build on the paths: a core that required Lua would fail to load.
      local ok, out = run("LUA_PATH='" .. b.dir .. "/?.lua' LUA_CPATH='" .. b.dir .. "/?.so' " .. b.lua
        .. [[ -e 'local core = require("dashscope.core")
          local others = {}
          for name in pairs(package.loaded) do
            if name:find("^dashscope") and name ~= "dashscope.core" then others[#others + 1] = name end
          end
          print(core.VERSION, type(core.new_transport), package.loaded["dashscope.core"] == core,
                package.loaded["dashscope"], package.loaded["dashscope.client"], #others)']])
      assert.is_true(ok, b.lua .. ": " .. out)
      assert.are.equal(helper.dashscope.VERSION .. "\tfunction\ttrue\tnil\tnil\t0\n", out)
    end
  end)

  it("loads as the issue's done-means says, paths set in Lua (build/, Lua 5.4)", function()
    if not exists("build/dashscope/core.so") then return end -- make test builds 5.4 first
    local ok, out = run([[lua5.4 -e 'package.path="build/?.lua;build/?/init.lua;"..package.path; ]]
      .. [[package.cpath="build/?.so;"..package.cpath; require("dashscope.core") ]]
      .. [[print(package.loaded["dashscope"], package.loaded["dashscope.client"])']])
    assert.is_true(ok, out)
    assert.are.equal("nil\tnil\n", out)
  end)

  it("exports one symbol, luaopen_dashscope_core", function()
    for _, b in ipairs(builds()) do
      local ok, out = exported(b.dir .. "/dashscope/core.so")
      assert.is_true(ok, out)
      assert.are.equal("luaopen_dashscope_core\n", out)
    end
  end)

  it("is what require \"dashscope\" stands on: dashscope.lua, then the Lua layer, then the core", function()
    for _, b in ipairs(builds()) do
      assert.is_true(exists(b.dir .. "/dashscope.lua"), b.dir)
      -- The build first on the paths (then the system's, for cjson): require "dashscope" finds
      -- dashscope.lua before any C module.
      local ok, out = run("LUA_PATH='" .. b.dir .. "/?.lua;;' LUA_CPATH='" .. b.dir .. "/?.so;;' " .. b.lua
        .. [[ -e 'local dashscope = require("dashscope")
          print(dashscope.VERSION, type(package.loaded["dashscope.client"]), type(package.loaded["dashscope.core"]))']])
      assert.is_true(ok, b.lua .. ": " .. out)
      assert.are.equal(helper.dashscope.VERSION .. "\ttable\ttable\n", out)
    end
  end)
end)

describe("the build", function()
  it("has a rockspec for this VERSION that lists every source file", function()
    local text = assert(helper.read_file(ROCKSPEC), "missing " .. ROCKSPEC)
    for _, file in ipairs(listing("src/*.c src/dashscope.lua src/dashscope/*.lua src/dashscope/cli/*.lua")) do
      assert.truthy(text:find('"' .. file .. '"', 1, true), file .. " is not in " .. ROCKSPEC)
    end
    -- libhiredis is the other rock's: this one builds without it
    assert.falsy(text:find("hiredis\"", 1, true), ROCKSPEC .. " names hiredis")
  end)

  it("has a rock dashscope-hiredis for this VERSION that builds dashscope.hiredis from src/hiredis", function()
    local spec = "rockspec/dashscope-hiredis-" .. helper.dashscope.VERSION .. "-1.rockspec"
    local text = assert(helper.read_file(spec), "missing " .. spec)
    for _, file in ipairs(listing("src/hiredis/*.c src/class.c")) do
      assert.truthy(text:find('"' .. file .. '"', 1, true), file .. " is not in " .. spec)
    end
    assert.truthy(text:find('"dashscope == ' .. helper.dashscope.VERSION .. '"', 1, true), spec)
  end)

  it("names no architecture in its rockspecs: libcurl is found the LuaRocks way", function()
    for _, spec in ipairs(listing("rockspec/*.rockspec")) do
      local text = assert(helper.read_file(spec))
      assert.falsy(text:find("-linux-gnu", 1, true), spec)
      assert.falsy(text:find("x86_64", 1, true), spec)
    end
  end)

  it("installs with make install under DESTDIR and PREFIX", function()
    local dest = os.tmpname()
    os.remove(dest)
    local ok, out = run("make --no-print-directory install LUA_VERSION=" .. LUA_VERSION
      .. " DESTDIR=" .. dest .. " PREFIX=/opt/ds")
    assert.is_true(ok, out)
    assert.truthy(io.open(dest .. "/opt/ds/lib/lua/" .. ABI .. "/dashscope/core.so"), out)
    assert.truthy(io.open(dest .. "/opt/ds/share/lua/" .. ABI .. "/dashscope.lua"), out)
    assert.truthy(io.open(dest .. "/opt/ds/share/lua/" .. ABI .. "/dashscope/client.lua"), out)
    -- the types, as a lua-language-server addon (types/README.md)
    assert.truthy(io.open(dest .. "/opt/ds/share/lua-dashscope/types/config.json"), out)
    assert.truthy(io.open(dest .. "/opt/ds/share/lua-dashscope/types/library/dashscope.lua"), out)
    assert.truthy(io.open(dest .. "/opt/ds/share/lua-dashscope/types/library/dashscope/uv.lua"), out)
    local cli = assert(io.open(dest .. "/opt/ds/bin/dashscope"), out)
    assert.are.equal("#!/usr/bin/env " .. LUA, cli:read("*l")) -- runs with the interpreter it was built for
    cli:close()
    os.execute("rm -rf " .. dest)
  end)
end)
