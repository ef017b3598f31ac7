/*
 * class.h -- how every userdata type of the core is registered (class.c).
 *
 * Owns no state. request.c, transport.c, fs.c and url.c each register their type through it, so
 * none of them reaches up to core.c (the module's entry), which opens them, nor into another.
 */
#ifndef DS_CLASS_H
#define DS_CLASS_H

#include <lua.h>
#include <lauxlib.h>

#pragma GCC visibility push(hidden)  /* internal to the module: core.h says why */

/* Registers a userdata type: the metatable `name` with the `meta` entries (__gc, __close,
 * __tostring) and an __index table of `methods`. Leaves the stack as it found it. */
void ds_class(lua_State *L, const char *name, const luaL_Reg *meta, const luaL_Reg *methods);

#pragma GCC visibility pop

#endif
