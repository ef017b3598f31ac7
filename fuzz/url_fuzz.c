/*
 * url_fuzz.c -- libFuzzer harness for the URLs and option values a caller (or text from outside,
 * e.g. an OpenResty request) hands to the client: libcurl's URL parser as core.parse_url exposes
 * it (src/url.c), the base-URL rules of dashscope.new (src/dashscope/config.lua), the rule for
 * hosts the service names (src/dashscope/url.lua), the numeric option checks (check.lua) and
 * Retry-After (http.retry_after over core.getdate). fuzz/url_driver.lua does the driving and
 * checks the promises; this file embeds Lua 5.4, loads the module (its C sources are linked in:
 * luaopen_dashscope through package.preload, the Lua layer from src/) and hands each input over.
 *
 * An input is MODE REST (url_driver.lua): MODE 'o' an option value, 'r' a Retry-After value, any
 * other byte: the whole input is a URL, tried as base_url, as DASHSCOPE_HTTP_BASE_URL, as a host
 * the service names, and through core.parse_url.
 *
 * A finding: a memory error or undefined behaviour (ASan, UBSan) in the C parts, a Lua error the
 * code under test raises where it must answer (parse_url, url.remote, retry_after), a raise of
 * dashscope.new that is not its misuse message, and a broken promise: an accepted base URL with
 * credentials, a query or fragment, or plain http:// to a host that is not loopback; an accepted
 * option value that is not finite or not in its range. Each prints the Lua traceback and aborts,
 * so libFuzzer saves the input in fuzz/artifacts/.
 *
 * As in response_fuzz.c, a line hook feeds Lua line edges into libFuzzer's extra counters, since
 * the interpreter is not instrumented.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#ifndef FUZZ_ROOT
#error "FUZZ_ROOT: the checkout's absolute path (the Makefile passes it)"
#endif

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int luaopen_dashscope(lua_State *L);

/* ---- Lua line coverage, as libFuzzer extra counters */

#define COV_SIZE (1u << 14)
__attribute__((section("__libfuzzer_extra_counters"), used)) static uint8_t lua_cov[COV_SIZE];
static uintptr_t cov_prev;

static void line_hook(lua_State *L, lua_Debug *ar) {
  uintptr_t here;
  if (!lua_getinfo(L, "S", ar)) return;
  here = ((uintptr_t)ar->source * 2654435761u) ^ ((uintptr_t)ar->currentline * 40503u);
  here &= COV_SIZE - 1;
  lua_cov[(here ^ cov_prev) & (COV_SIZE - 1)]++;
  cov_prev = here >> 1;
}

/* ---- the interpreter */

static lua_State *L;
static int run_ref = LUA_NOREF;

static int traceback(lua_State *S) {
  const char *msg = lua_tostring(S, 1);
  if (msg == NULL) msg = lua_pushfstring(S, "(a %s raised as the error)", luaL_typename(S, 1));
  luaL_traceback(S, S, msg, 1);
  return 1;
}

static void die(const char *what) {
  fprintf(stderr, "url_fuzz: %s\n%s\n", what, lua_tostring(L, -1));
  abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  L = luaL_newstate();
  if (L == NULL) abort();
  luaL_openlibs(L);
  lua_pushcfunction(L, traceback);
  lua_getglobal(L, "package");
  lua_pushliteral(L, FUZZ_ROOT "/src/?.lua;" FUZZ_ROOT "/fuzz/?.lua;");
  lua_getfield(L, -2, "path");
  lua_concat(L, 2);
  lua_setfield(L, -2, "path");
  lua_getfield(L, -1, "preload");
  lua_pushcfunction(L, luaopen_dashscope);
  lua_setfield(L, -2, "dashscope");
  lua_pop(L, 2);
  /* the driver returns run(input) */
  lua_getglobal(L, "require");
  lua_pushliteral(L, "url_driver");
  if (lua_pcall(L, 1, 1, -3) != LUA_OK) die("loading fuzz/url_driver.lua failed");
  if (lua_type(L, -1) != LUA_TFUNCTION) die("fuzz/url_driver.lua returned no function");
  run_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pop(L, 1);
  lua_sethook(L, line_hook, LUA_MASKLINE, 0);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int top = lua_gettop(L);
  lua_pushcfunction(L, traceback);
  lua_rawgeti(L, LUA_REGISTRYINDEX, run_ref);
  lua_pushlstring(L, (const char *)data, size);
  cov_prev = 0;
  if (lua_pcall(L, 1, 0, top + 1) != LUA_OK) die("a broken promise or a Lua error (see the traceback)");
  lua_settop(L, top);
  lua_gc(L, LUA_GCCOLLECT, 0);
  return 0;
}
