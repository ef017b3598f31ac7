/*
 * integers.c -- core.integers(value) (see integers.h): a float with an integer's exact value
 * becomes that integer (math.tointeger's rule), in a table in place, nested tables included;
 * values only (a decoded JSON object's keys are strings, an array's already integers). On Lua 5.1
 * and LuaJIT, where every number is a double, the value is returned as it is.
 */
#include <lua.h>
#include <lauxlib.h>

#include "integers.h"

/* Deeper raises: above what json.lua lets a decoded answer be (its decode depth), so an answer
 * never reaches it, and the C stack stays bounded whatever a caller passes (a cycle included). */
#define DS_INTEGERS_DEPTH 200

#if LUA_VERSION_NUM >= 503
/* Pushes the number at `idx` as an integer and returns 1 when it is a float with an integer's
 * exact value; otherwise pushes nothing and returns 0. */
static int push_exact(lua_State *L, int idx) {
  int exact = 0;
  lua_Integer i;
  if (lua_type(L, idx) != LUA_TNUMBER || lua_isinteger(L, idx)) return 0;
  i = lua_tointegerx(L, idx, &exact);
  if (exact) lua_pushinteger(L, i);
  return exact;
}

static void integers(lua_State *L, int idx, int depth) {
  if (depth > DS_INTEGERS_DEPTH) luaL_error(L, "dashscope: a value nested deeper than %d levels", DS_INTEGERS_DEPTH);
  luaL_checkstack(L, 4, "integers");
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {  /* ..., key, value */
    if (lua_type(L, -1) == LUA_TTABLE) {
      integers(L, lua_gettop(L), depth + 1);
    } else if (push_exact(L, -1)) {  /* ..., key, value, integer */
      lua_pushvalue(L, -3);
      lua_insert(L, -2);
      lua_rawset(L, idx);  /* an existing key: allowed during the walk */
    }
    lua_pop(L, 1);
  }
}
#endif

/* core.integers(value): a number as an integer when it has one's exact value; a table with its
 * numbers so, in place (and returned); anything else as it is. */
static int l_integers(lua_State *L) {
  lua_settop(L, 1);
#if LUA_VERSION_NUM >= 503
  if (lua_type(L, 1) == LUA_TTABLE) {
    integers(L, 1, 1);
  } else {
    push_exact(L, 1);
  }
#endif
  return 1;
}

void ds_integers_open(lua_State *L) {
  lua_pushcfunction(L, l_integers);
  lua_setfield(L, -2, "integers");
}
