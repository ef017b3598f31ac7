/*
 * core.c -- luaopen_dashscope_core, the one exported symbol: require "dashscope.core".
 *
 * Owns process-wide setup (curl_global_init, once) and the table "dashscope.core" returns:
 * VERSION, curl_version, libcurl_version, isatty (here); new_transport, scrub, integers
 * (transport.c, scrub.c, integers.c); now, wallclock, rusage, sleep (clock.c); the local-file
 * functions of fs.c; open_log and sync_dir (logfile.c: the batch journal's file); parse_url and getdate (url.c); trap_signals and caught_signal (signals.c, for the CLI
 * only). It only opens those parts and requires nothing from Lua: the public module is
 * dashscope.lua, a Lua module over this one.
 */
#include <unistd.h>

#include <curl/curl.h>
#include <lua.h>
#include <lauxlib.h>

#include "clock.h"
#include "core.h"
#include "fs.h"
#include "integers.h"
#include "logfile.h"
#include "request.h"
#include "scrub.h"
#include "signals.h"
#include "transport.h"
#include "url.h"

/* The library's only mutable C global (signals.c's, for the CLI alone, aside): a once-guard.
 * curl_global_init is itself reference-counted (and thread-safe since 7.84), so a racing second
 * call is harmless; libcurl is never cleaned up, as other states may still use it. */
static int curl_ready = 0;

/* core.isatty(fd): whether fd is a terminal (the CLI draws a live status line only then). */
static int l_isatty(lua_State *L) {
  lua_Integer fd = luaL_checkinteger(L, 1);
  lua_pushboolean(L, fd >= 0 && fd <= 1024 && isatty((int)fd) == 1);
  return 1;
}

static void set_function(lua_State *L, const char *name, lua_CFunction f) {
  lua_pushcfunction(L, f);
  lua_setfield(L, -2, name);
}

DS_API int luaopen_dashscope_core(lua_State *L) {
  if (!curl_ready) {
    CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK) return luaL_error(L, "curl_global_init: %s", curl_easy_strerror(rc));
    curl_ready = 1;
  }
  lua_createtable(L, 0, 24);
  ds_request_open(L);
  ds_transport_open(L, ds_request_new);  /* T:request makes requests with request.c's constructor */
  ds_scrub_open(L);    /* scrub: hides the keys transports hold */
  ds_integers_open(L); /* integers: a decoded answer's whole numbers as integers */
  ds_fs_open(L);       /* file_check, create_new, place, ...: see fs.h */
  ds_logfile_open(L);  /* open_log, sync_dir: the batch journal's file (logfile.h) */
  ds_url_open(L);      /* parse_url, getdate */
  ds_signals_open(L);  /* trap_signals, caught_signal: for the CLI only */
  set_function(L, "now", ds_clock_lnow);
  set_function(L, "wallclock", ds_clock_lwallclock);
  set_function(L, "rusage", ds_clock_lrusage);
  set_function(L, "sleep", ds_clock_lsleep);
  set_function(L, "isatty", l_isatty);
  lua_pushliteral(L, DS_VERSION);
  lua_setfield(L, -2, "VERSION");
  lua_pushstring(L, curl_version());
  lua_setfield(L, -2, "curl_version");
  /* libcurl's own version alone, for the User-Agent: curl_version() names every library libcurl
   * was built with (a few hundred bytes), and libcurl formats the User-Agent byte by byte twice
   * per request (its printf), which made it a tenth of a status query's instructions. */
  lua_pushfstring(L, "libcurl/%s", curl_version_info(CURLVERSION_NOW)->version);
  lua_setfield(L, -2, "libcurl_version");
  return 1;
}
