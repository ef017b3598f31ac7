-- The build as a user meets it: the rockspec builds offline with luarocks, and make install lays
-- the module out as the build tree does.
local helper = require("spec.support.helper")

local function run(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("*a")
  local ok = p:close()
  return ok, out
end

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
    assert(os.execute("mkdir -p " .. copy .. " && cp -r src rockspec " .. copy))
    local ok, out = run("cd " .. copy .. " && luarocks --lua-version=5.4 --tree=" .. tree
      .. " make --deps-mode=none " .. ROCKSPEC)
    os.execute("rm -rf " .. copy)
    assert.is_true(ok, out)
    ok, out = run("LUA_PATH='" .. tree .. "/share/lua/5.4/?.lua;;' LUA_CPATH='" .. tree .. "/lib/lua/5.4/?.so;;' "
      .. "lua5.4 -e 'local d = require \"dashscope\" print(d.VERSION, package.searchpath(\"dashscope\", package.cpath))'")
    assert.is_true(ok, out)
    assert.truthy(out:find(helper.dashscope.VERSION .. "\t" .. tree, 1, true), out)
    os.execute("rm -rf " .. tree)
  end)

  it("installs with make install under DESTDIR and PREFIX", function()
    local dest = os.tmpname()
    os.remove(dest)
    local ok, out = run("make --no-print-directory install DESTDIR=" .. dest .. " PREFIX=/opt/ds")
    assert.is_true(ok, out)
    assert.truthy(io.open(dest .. "/opt/ds/lib/lua/5.4/dashscope.so"))
    assert.truthy(io.open(dest .. "/opt/ds/share/lua/5.4/dashscope/client.lua"))
    os.execute("rm -rf " .. dest)
  end)
end)
