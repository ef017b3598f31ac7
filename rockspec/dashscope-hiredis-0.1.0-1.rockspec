-- dashscope.hiredis, the Redis quota store's connection (quota = "redis://..."), apart from the
-- rock dashscope so that only its users need libhiredis (Debian: libhiredis-dev). Same release
-- tarball as the rock dashscope (dashscope-0.1.0-1.rockspec says how it is made).
--
--   luarocks install dashscope-hiredis
--   make rock && luarocks install build/dist/dashscope-hiredis-0.1.0-1.src.rock
rockspec_format = "3.0"
package = "dashscope-hiredis"
version = "0.1.0-1"
source = {
  url = "https://github.com/lua-dashscope/lua-dashscope/releases/download/v0.1.0/lua-dashscope-0.1.0.tar.gz",
  dir = "lua-dashscope-0.1.0",
}
description = {
  summary = "The Redis quota store of lua-dashscope (dashscope.hiredis, over libhiredis)",
  detailed = [[
Lets the clients of lua-dashscope on any number of hosts share the service's quotas through a Redis
server (the client option quota = "redis://host:port"): a non-blocking hiredis connection, watched
with the client's own libcurl loop.
]],
  homepage = "https://github.com/lua-dashscope/lua-dashscope",
  issues_url = "https://github.com/lua-dashscope/lua-dashscope/issues",
  license = "MIT",
  labels = { "dashscope", "redis", "hiredis" },
}
dependencies = {
  "lua >= 5.1",
  "dashscope == 0.1.0",
}
-- hiredis.h is under <prefix>/include on every distribution (Debian: /usr/include/hiredis/), so
-- both are probed; HIREDIS_DIR= or HIREDIS_INCDIR=/HIREDIS_LIBDIR= point at another one.
external_dependencies = {
  HIREDIS = { header = "hiredis/hiredis.h", library = "hiredis" },
}
build = {
  type = "builtin",
  modules = {
    ["dashscope.hiredis"] = {
      sources = { "src/hiredis/hiredis.c", "src/class.c" },
      libraries = { "hiredis" },
      incdirs = { "$(HIREDIS_INCDIR)" },
      libdirs = { "$(HIREDIS_LIBDIR)" },
      defines = { "_POSIX_C_SOURCE=200809L" },
    },
  },
}
