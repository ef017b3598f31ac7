-- `luarocks test rockspec/dashscope-0.1.0-1.rockspec` from a checkout: luarocks runs this file with
-- the interpreter it targets (--lua-version, or lua_interpreter in its config: LuaJIT's), and this
-- builds the module for that interpreter and runs the whole suite against the local server, as
-- `make test TEST_LUAS=<it>` does (Makefile, test-one), without installing any package. Arguments
-- after `--` go to busted: `luarocks test rockspec/dashscope-0.1.0-1.rockspec -- --filter=upload`.
-- This file owns nothing: it only names the interpreter to the Makefile.

-- The Makefile's name for this interpreter (LUA_VERSION), its executable and pkg-config name.
local version = rawget(_G, "jit") and "luajit" or _VERSION:match("^Lua (%d+%.%d+)$")
local bin = version == "luajit" and "luajit" or "lua" .. version
local build = version == "5.4" and "build" or "build/" .. bin

local function quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- os.execute's answer on 5.1 (a status number) and on 5.2+ (ok, "exit", code): the exit code.
local function run(command)
  local a, _, c = os.execute(command)
  if type(a) == "number" then return a >= 256 and math.floor(a / 256) or a end
  return a and 0 or (c or 1)
end

local function fail(message)
  io.stderr:write("luarocks test: ", message, "\n")
  os.exit(1)
end

if run("command -v busted >/dev/null 2>&1") ~= 0 then
  fail("busted is not on PATH (Debian: apt-get install lua-busted; or luarocks install busted)")
end
if run("command -v " .. bin .. " >/dev/null 2>&1 && pkg-config --exists " .. bin) ~= 0 then
  fail(bin .. " or its headers (" .. bin .. ".pc) are not installed: the suite builds and runs under " .. bin)
end

-- The checkout: the directory above this script's.
local root = (arg and arg[0] or ""):match("^(.*)/scripts/[^/]*$") or "."
local flags = {}
for i = 1, #(arg or {}) do flags[#flags + 1] = quote(arg[i]) end
os.exit(run(("make --no-print-directory -C %s test-one LUA_VERSION=%s LUA=%s LUA_PC=%s BUILD=%s BUSTED_FLAGS=%s")
  :format(quote(root), version, bin, bin, build, quote(table.concat(flags, " ")))))
