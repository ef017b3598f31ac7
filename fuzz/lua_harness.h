/*
 * lua_harness.h -- what the Lua-driven libFuzzer harnesses (response_fuzz.c, url_fuzz.c) share: one
 * embedded Lua 5.4 state with the module's C sources linked in (luaopen_dashscope_core through
 * package.preload["dashscope.core"], the Lua layer from src/, drivers from fuzz/), Lua line
 * coverage fed to libFuzzer, and dying loudly with the Lua traceback. Each harness owns its inputs
 * and its driver.
 */
#ifndef FUZZ_LUA_HARNESS_H
#define FUZZ_LUA_HARNESS_H

#include <lua.h>

/* The harness's state, once harness_open has run. */
extern lua_State *harness_L;

/* Makes the state; `name` prefixes the messages of harness_die. */
void harness_open(const char *name);

/* require(module), which must return a function: a registry reference to it. Dies otherwise. */
int harness_require(const char *module);

/* Lua line coverage into libFuzzer's extra counters: on (1) or off (0). */
void harness_cover(int on);

/* Pushes the traceback handler and the function of `ref`; returns the stack top from before, for
 * harness_call. Push the arguments, then call harness_call. */
int harness_begin(int ref);

/* Calls what harness_begin pushed with `nargs` arguments: on a Lua error, dies (`what`, and the
 * traceback); else drops everything above `top` and collects Lua's garbage, so that libFuzzer's leak
 * check sees balanced mallocs. */
void harness_call(int top, int nargs, const char *what);

/* Prints `what` and the message on top of the stack, then aborts (libFuzzer keeps the input). */
void harness_die(const char *what);

#endif
