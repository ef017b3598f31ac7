-- Commands a spec runs in a shell, and their words: what the build and rock specs share. This file
-- owns nothing but these two functions.
local shell = {}

--- `s` as one shell word.
function shell.quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

--- Runs `cmd` (stderr with stdout): whether it exited 0, and what it printed. The exit status is
--- echoed: on Lua 5.1 and LuaJIT a popen'ed file's close() does not return it.
function shell.run(cmd)
  local p = assert(io.popen(cmd .. " 2>&1; echo \"exit status $?\""))
  local out = p:read("*a")
  p:close()
  local status = tonumber(out:match("exit status (%d+)%s*$"))
  return status == 0, (out:gsub("exit status %d+%s*$", ""))
end

return shell
