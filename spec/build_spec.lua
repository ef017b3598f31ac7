-- The build as a user meets it: the rockspec builds offline with luarocks, and make install lays
-- the module out as the build tree does.
local helper = require("spec.support.helper")

-- The exit status is echoed: on Lua 5.1 and LuaJIT a popen'ed file's close() does not return it.
local function run(cmd)
  local p = assert(io.popen(cmd .. " 2>&1; echo \"exit status $?\""))
  local out = p:read("*a")
  p:close()
  local status = tonumber(out:match("exit status (%d+)%s*$"))
  return status == 0, (out:gsub("exit status %d+%s*$", ""))
end

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

describe("the build", function()
  it("has a rockspec for this VERSION that lists every source file", function()
    local f = assert(io.open(ROCKSPEC), "missing " .. ROCKSPEC)
    local text = f:read("*a")
    f:close()
    for _, file in ipairs(listing("src/*.c src/dashscope/*.lua")) do
      assert.truthy(text:find('"' .. file .. '"', 1, true), file .. " is not in " .. ROCKSPEC)
    end
  end)

  it("builds and installs with luarocks make, offline", function()
    if helper.UNDER_VALGRIND then return end -- the compiler is not our code
    -- In a copy of the sources: luarocks' builtin build leaves objects beside them.
    local tree, copy = os.tmpname(), os.tmpname()
    os.remove(tree)
    os.remove(copy)
    assert(os.execute("mkdir -p " .. copy .. " && cp -r src rockspec bin " .. copy))
    -- for the Lua version under test (LuaJIT: built for, and run by, lua5.1)
    local ok, out = run("cd " .. copy .. " && luarocks --lua-version=" .. ABI .. " --tree=" .. tree
      .. " make --deps-mode=none " .. ROCKSPEC)
    os.execute("rm -rf " .. copy)
    assert.is_true(ok, out)
    ok, out = run("LUA_PATH='" .. tree .. "/share/lua/" .. ABI .. "/?.lua;;' LUA_CPATH='" .. tree .. "/lib/lua/"
      .. ABI .. "/?.so;;' lua" .. ABI .. " -e 'local d = require \"dashscope\" "
      .. "for t in package.cpath:gmatch(\"[^;]+\") do local f = t:gsub(\"%?\", \"dashscope/core\") "
      .. "if io.open(f) then print(d.VERSION, f) break end end'")
    assert.is_true(ok, out)
    assert.truthy(out:find(helper.dashscope.VERSION .. "\t" .. tree, 1, true), out)
    ok, out = run(tree .. "/bin/dashscope --help")
    assert.is_true(ok, out)
    assert.truthy(out:find("liveportrait", 1, true), out)
    os.execute("rm -rf " .. tree)
  end)

  it("installs with make install under DESTDIR and PREFIX", function()
    local dest = os.tmpname()
    os.remove(dest)
    local ok, out = run("make --no-print-directory install LUA_VERSION=" .. LUA_VERSION
      .. " DESTDIR=" .. dest .. " PREFIX=/opt/ds")
    assert.is_true(ok, out)
    assert.truthy(io.open(dest .. "/opt/ds/lib/lua/" .. ABI .. "/dashscope.so"), out)
    assert.truthy(io.open(dest .. "/opt/ds/share/lua/" .. ABI .. "/dashscope/client.lua"), out)
    assert.truthy(io.open(dest .. "/opt/ds/share/lua-dashscope/types/dashscope.lua"), out)
    local cli = assert(io.open(dest .. "/opt/ds/bin/dashscope"), out)
    assert.are.equal("#!/usr/bin/env " .. LUA, cli:read("*l")) -- runs with the interpreter it was built for
    cli:close()
    os.execute("rm -rf " .. dest)
  end)
end)
