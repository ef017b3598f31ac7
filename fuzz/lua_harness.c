/*
 * lua_harness.c -- the embedded interpreter of the Lua-driven harnesses (see lua_harness.h).
 *
 * The Lua code runs in an uninstrumented interpreter, so libFuzzer cannot see its branches: a line
 * hook feeds (source, previous line, line) into libFuzzer's extra counters, which makes new Lua
 * edges count as new coverage.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "lua_harness.h"

#ifndef FUZZ_ROOT
#error "FUZZ_ROOT: the checkout's absolute path (the Makefile passes it)"
#endif

int luaopen_dashscope_core(lua_State *L);

lua_State *harness_L;
static const char *harness_name = "fuzz";

/* ---- Lua line coverage, as libFuzzer extra counters */

#define COV_SIZE (1u << 16)
__attribute__((section("__libfuzzer_extra_counters"), used)) static uint8_t lua_cov[COV_SIZE];
static uintptr_t cov_prev;

static void line_hook(lua_State *L, lua_Debug *ar) {
  uintptr_t here;
  if (!lua_getinfo(L, "S", ar)) return;
  /* source strings are interned: their address names the chunk */
  here = ((uintptr_t)ar->source * 2654435761u) ^ ((uintptr_t)ar->currentline * 40503u);
  here &= COV_SIZE - 1;
  lua_cov[(here ^ cov_prev) & (COV_SIZE - 1)]++;
  cov_prev = here >> 1;
}

void harness_cover(int on) {
  lua_sethook(harness_L, on ? line_hook : NULL, on ? LUA_MASKLINE : 0, 0);
}

/* ---- the interpreter */

static int traceback(lua_State *S) {
  const char *msg = lua_tostring(S, 1);
  if (msg == NULL) msg = lua_pushfstring(S, "(a %s raised as the error)", luaL_typename(S, 1));
  luaL_traceback(S, S, msg, 1);
  return 1;
}

void harness_die(const char *what) {
  fprintf(stderr, "%s: %s\n%s\n", harness_name, what, lua_tostring(harness_L, -1));
  abort();
}

void harness_open(const char *name) {
  lua_State *L = luaL_newstate();
  if (L == NULL) abort();
  harness_L = L;
  harness_name = name;
  luaL_openlibs(L);
  /* package.path: the Lua layer from src/, the drivers from fuzz/, then the system's */
  lua_getglobal(L, "package");
  lua_pushliteral(L, FUZZ_ROOT "/src/?.lua;" FUZZ_ROOT "/fuzz/?.lua;");
  lua_getfield(L, -2, "path");
  lua_concat(L, 2);
  lua_setfield(L, -2, "path");
  lua_getfield(L, -1, "preload");
  lua_pushcfunction(L, luaopen_dashscope_core);
  lua_setfield(L, -2, "dashscope.core");
  lua_pop(L, 2);
}

int harness_require(const char *module) {
  lua_State *L = harness_L;
  lua_pushcfunction(L, traceback);
  lua_getglobal(L, "require");
  lua_pushstring(L, module);
  if (lua_pcall(L, 1, 1, -3) != LUA_OK) harness_die("loading a driver failed");
  if (lua_type(L, -1) != LUA_TFUNCTION) {
    lua_pushfstring(L, "fuzz/%s.lua returned no function", module);
    harness_die("a driver returned no function");
  }
  {
    int ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pop(L, 1);  /* the traceback handler */
    return ref;
  }
}

int harness_begin(int ref) {
  int top = lua_gettop(harness_L);
  lua_pushcfunction(harness_L, traceback);
  lua_rawgeti(harness_L, LUA_REGISTRYINDEX, ref);
  return top;
}

void harness_call(int top, int nargs, const char *what) {
  cov_prev = 0;
  if (lua_pcall(harness_L, nargs, 0, top + 1) != LUA_OK) harness_die(what);
  lua_settop(harness_L, top);
  lua_gc(harness_L, LUA_GCCOLLECT, 0);
}
