/*
 * module.c -- luaopen_dashscope_core, the one exported symbol: the C core, `dashscope.core`.
 *
 * Owns process-wide setup (curl_global_init, once) and the "dashscope.core"
 * table: VERSION, curl_version, new_transport, now, wallclock, rusage (clock.c), isatty, the
 * local-file functions of fs.c, parse_url and getdate (url.c), and trap_signals and caught_signal
 * (signals.c, for the CLI only). It needs nothing from Lua and loads alone; the public
 * module is the Lua entry, dashscope.lua, which requires it.
 */
#include <unistd.h>

#include <curl/curl.h>
#include <lua.h>
#include <lauxlib.h>

#include "clock.h"
#include "compat.h"
#include "core.h"
#include "fs.h"
#include "request.h"
#include "signals.h"
#include "transport.h"
#include "url.h"

/* The library's only mutable C global (signals.c's, for the CLI alone, aside): a once-guard.
 * curl_global_init is itself reference-counted (and thread-safe since 7.84), so a racing second
 * call is harmless; libcurl is never cleaned up, as other states may still use it. */
static int curl_ready = 0;

void ds_class(lua_State *L, const char *name, const luaL_Reg *meta, const luaL_Reg *methods) {
  luaL_newmetatable(L, name);
  ds_setfuncs(L, meta, 0);
  lua_newtable(L);
  ds_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}

/* core.isatty(fd): whether fd is a terminal (the CLI draws a live status line only then). */
static int l_isatty(lua_State *L) {
  lua_Integer fd = luaL_checkinteger(L, 1);
  lua_pushboolean(L, fd >= 0 && fd <= 1024 && isatty((int)fd) == 1);
  return 1;
}

DS_API int luaopen_dashscope_core(lua_State *L) {
  if (!curl_ready) {
    CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK) return luaL_error(L, "curl_global_init: %s", curl_easy_strerror(rc));
    curl_ready = 1;
  }

  lua_createtable(L, 0, 8);
  ds_request_open(L);
  ds_transport_open(L);
  ds_fs_open(L);       /* file_check, create_new, place, ...: see fs.h */
  ds_url_open(L);      /* parse_url, getdate */
  ds_signals_open(L);  /* trap_signals, caught_signal: for the CLI only */
  lua_pushcfunction(L, ds_clock_lnow);
  lua_setfield(L, -2, "now");
  lua_pushcfunction(L, ds_clock_lwallclock);
  lua_setfield(L, -2, "wallclock");
  lua_pushcfunction(L, ds_clock_lrusage);
  lua_setfield(L, -2, "rusage");
  lua_pushcfunction(L, l_isatty);
  lua_setfield(L, -2, "isatty");
  lua_pushliteral(L, DS_VERSION);
  lua_setfield(L, -2, "VERSION");
  lua_pushstring(L, curl_version());
  lua_setfield(L, -2, "curl_version");
  return 1;
}
