/*
 * class.c -- ds_class, the one way a userdata type of the core is made (class.h).
 *
 * Owns nothing but that function: a leaf below request.c, transport.c, fs.c and url.c, so that
 * their types register themselves without reaching up to core.c, which opens them.
 */
#include <lua.h>
#include <lauxlib.h>

#include "class.h"
#include "compat.h"

void ds_class(lua_State *L, const char *name, const luaL_Reg *meta, const luaL_Reg *methods) {
  luaL_newmetatable(L, name);
  ds_setfuncs(L, meta, 0);
  lua_newtable(L);
  ds_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}
