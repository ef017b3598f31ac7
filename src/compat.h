/*
 * compat.h -- the 5.1 / LuaJIT 2.1 shim. Code is written against Lua 5.4 and
 * calls the ds_-prefixed names below; on 5.2+ they map to the real API, on
 * 5.1 / LuaJIT they are small static functions. The prefix means they can
 * never clash with LuaJIT 2.1's own luaL_setfuncs / luaL_testudata.
 *
 * Owns nothing but these names; include it after lua.h / lauxlib.h.
 */
#ifndef DS_COMPAT_H
#define DS_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

#if LUA_VERSION_NUM >= 502

#define ds_absindex(L, i)        lua_absindex(L, (i))
#define ds_setfuncs(L, l, nup)   luaL_setfuncs(L, (l), (nup))
#define ds_testudata(L, i, tn)   luaL_testudata(L, (i), (tn))
#define ds_setmetatable(L, tn)   luaL_setmetatable(L, (tn))
#define ds_rawlen(L, i)          lua_rawlen(L, (i))

#else /* Lua 5.1 and LuaJIT */

#define ds_absindex(L, i) \
  ((i) > 0 || (i) <= LUA_REGISTRYINDEX ? (i) : lua_gettop(L) + (i) + 1)
#define ds_rawlen(L, i)          lua_objlen(L, (i))

static inline void ds_setfuncs(lua_State *L, const luaL_Reg *l, int nup) {
  luaL_checkstack(L, nup + 1, "too many upvalues");
  for (; l->name != NULL; l++) {
    int i;
    for (i = 0; i < nup; i++) lua_pushvalue(L, -nup);
    lua_pushcclosure(L, l->func, nup);
    lua_setfield(L, -(nup + 2), l->name);
  }
  lua_pop(L, nup);
}

static inline void *ds_testudata(lua_State *L, int i, const char *tname) {
  void *p = lua_touserdata(L, i);
  if (p == NULL || !lua_getmetatable(L, i)) return NULL;
  luaL_getmetatable(L, tname);
  if (!lua_rawequal(L, -1, -2)) p = NULL;
  lua_pop(L, 2);
  return p;
}

static inline void ds_setmetatable(lua_State *L, const char *tname) {
  luaL_getmetatable(L, tname);
  lua_setmetatable(L, -2);
}

#endif

#define ds_newlib(L, l) \
  (lua_createtable(L, 0, (int)(sizeof(l) / sizeof((l)[0]) - 1)), ds_setfuncs(L, (l), 0))

/* Userdata with room for one user value. */
#if LUA_VERSION_NUM >= 504
#define ds_newuserdata(L, sz)    lua_newuserdatauv(L, (sz), 1)
#else
#define ds_newuserdata(L, sz)    lua_newuserdata(L, (sz))
#endif

/*
 * ds_setuservalue pops a value and makes it the user value of the userdata at
 * index i; ds_getuservalue pushes it back. Before 5.3 a user value must be a
 * table, so the value is kept at index 1 of a small table.
 */
#if LUA_VERSION_NUM >= 503
#define ds_setuservalue(L, i)    ((void)lua_setuservalue(L, (i)))
#define ds_getuservalue(L, i)    ((void)lua_getuservalue(L, (i)))
#else
static inline void ds_setuservalue(lua_State *L, int i) {
  i = ds_absindex(L, i);
  lua_createtable(L, 1, 0);
  lua_insert(L, -2);
  lua_rawseti(L, -2, 1);
#if LUA_VERSION_NUM == 502
  lua_setuservalue(L, i);
#else
  lua_setfenv(L, i);
#endif
}

static inline void ds_getuservalue(lua_State *L, int i) {
#if LUA_VERSION_NUM == 502
  lua_getuservalue(L, i);
#else
  lua_getfenv(L, i);
#endif
  if (lua_istable(L, -1)) lua_rawgeti(L, -1, 1);
  else lua_pushnil(L);
  lua_remove(L, -2);
}
#endif

#endif
