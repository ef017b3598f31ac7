/*
 * integers.h -- core.integers(value): the integral numbers of a decoded JSON value made integers.
 *
 * Owns that one function. Debian's lua-cjson decodes every number as a float on Lua 5.3+, and the
 * service sends integers (src/dashscope/json.lua says why they matter): every answer passes here,
 * so the walk is in C. Holds no state; touches nothing but the value it is given.
 */
#ifndef DS_INTEGERS_H
#define DS_INTEGERS_H

#include <lua.h>

#pragma GCC visibility push(hidden)  /* internal to the module: core.h says why */

/* Adds integers to the table on top of the stack (the core table). */
void ds_integers_open(lua_State *L);

#pragma GCC visibility pop

#endif
