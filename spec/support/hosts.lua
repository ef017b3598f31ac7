-- What the specs that start real hosts (nvim, nginx) share: running shell commands portably,
-- small file helpers, and finding the LuaJIT build those hosts load.
local hosts = {}

-- A shell command: whether it exited 0, and its output. The status is echoed: on Lua 5.1 and
-- LuaJIT a popen'ed file's close() does not return it.
function hosts.run(cmd)
  local p = assert(io.popen("(" .. cmd .. ") 2>&1; echo \"exit status $?\""))
  local out = p:read("*a")
  p:close()
  local status = tonumber(out:match("exit status (%d+)%s*$"))
  return status == 0, (out:gsub("exit status %d+%s*$", ""))
end

--- A loopback port nobody listens on now (the kernel's pick, released at once).
function hosts.free_port()
  local ok, out = hosts.run([[python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])']])
  assert(ok, out)
  return assert(tonumber(out))
end

function hosts.exists(path)
  local f = io.open(path)
  if f then f:close() end
  return f ~= nil
end

function hosts.read(path)
  local f = io.open(path)
  if not f then return nil end
  local text = f:read("*a")
  f:close()
  return text
end

-- The LuaJIT build that nvim and nginx load: the one under test when busted runs under LuaJIT
-- (make test does so among the others), else DASHSCOPE_LUAJIT_BUILD. Its directory, or nil and
-- why not.
function hosts.luajit_build()
  local dir = os.getenv("DASHSCOPE_LUAJIT_BUILD")
  if dir then return dir end
  if type(jit) ~= "table" then
    return nil, "runs under LuaJIT only, whose build nvim and nginx load (make test TEST_LUAS=luajit, "
      .. "or DASHSCOPE_LUAJIT_BUILD=build/luajit)"
  end
  local so = package.searchpath("dashscope.core", package.cpath)
  if not so then return nil, "no dashscope/core.so on package.cpath" end
  return so:match("^(.*)/dashscope/core%.so$") or "."
end

return hosts
