/*
 * scrub.c -- core.scrub(value): every occurrence of any API key that a transport of this Lua state
 * holds, replaced by "<api-key>", in a string or in every string (values and keys) of a table,
 * nested tables included (see scrub.h).
 *
 * Every error value (errors.lua) and every decoded answer of the service (json.lua) passes
 * through here, so a server quoting the key back in any field shows it nowhere: not in
 * tostring(err), not in a result table, not in what the CLI prints.
 *
 * Why the care: a key is read through a transport's pointer (the slot ds_scrub_remember was
 * given, inside the transport's userdata, so valid as long as the set's entry), and a Lua
 * allocation may run a finalizer, which may be that transport's __gc wiping and freeing the key.
 * So the key is only read in stretches that allocate no Lua memory: the replacement is built in
 * malloc'd memory, owned meanwhile by a userdata box whose __gc frees it should pushing the result
 * raise (out of memory). Buffers that held text are wiped before they are freed, and no key ever
 * becomes a Lua string.
 */
#include <stdlib.h>
#include <string.h>

#include <lua.h>
#include <lauxlib.h>

#include "compat.h"
#include "scrub.h"

/* registry: weak-keyed, holder userdata (a transport) -> light userdata of its key's slot */
#define SECRETS "dashscope.secrets"
#define BOX_MT "dashscope.ScrubBuffer"
#define MASK "<api-key>"

typedef struct box {
  char *p;
  size_t n;
} box;

static void burn(char **p, size_t n) {
  if (*p == NULL) return;
  memset(*p, 0, n);
  free(*p);
  *p = NULL;
}

static int box_gc(lua_State *L) {
  box *b = (box *)luaL_checkudata(L, 1, BOX_MT);
  burn(&b->p, b->n);
  return 0;
}

/* The first occurrence of needle (n > 0 bytes) in [p, end), or NULL. */
static const char *find(const char *p, const char *end, const char *needle, size_t n) {
  while ((size_t)(end - p) >= n) {
    const char *c = (const char *)memchr(p, needle[0], (size_t)(end - p) - n + 1);
    if (c == NULL) return NULL;
    if (memcmp(c, needle, n) == 0) return c;
    p = c + 1;
  }
  return NULL;
}

/* text (len bytes) with every key (klen > 0 bytes) replaced by MASK, in *out (malloc'd, *outlen
 * bytes): 1; 0 when the key does not occur (*out untouched); -1 when out of memory. */
static int replace(const char *text, size_t len, const char *key, size_t klen, char **out,
                   size_t *outlen) {
  const char *end = text + len, *p = text, *hit;
  size_t hits = 0, size, masklen = sizeof(MASK) - 1;
  char *buf, *w;
  while ((hit = find(p, end, key, klen)) != NULL) {
    hits++;
    p = hit + klen;
  }
  if (hits == 0) return 0;
  if (masklen > klen && hits > ((size_t)-1 - len - 1) / (masklen - klen)) return -1;
  size = len - hits * klen + hits * masklen;  /* hits * klen <= len, and the growth fits */
  buf = (char *)malloc(size + 1);
  if (buf == NULL) return -1;
  for (p = text, w = buf; (hit = find(p, end, key, klen)) != NULL; p = hit + klen) {
    memcpy(w, p, (size_t)(hit - p));
    w += hit - p;
    memcpy(w, MASK, masklen);
    w += masklen;
  }
  memcpy(w, p, (size_t)(end - p));
  buf[size] = '\0';
  *out = buf;
  *outlen = size;
  return 1;
}

/* Pops the value lua_next pushed (a key's slot) and returns the key it holds, or NULL when there
 * is none (not set yet, or wiped by the transport's close). */
static const char *key_of(lua_State *L) {
  char *const *slot = (char *const *)lua_touserdata(L, -1);
  const char *key = slot != NULL ? *slot : NULL;
  lua_pop(L, 1);
  return key != NULL && key[0] != '\0' ? key : NULL;
}

/* Replaces every key of the set (at index set) in text, into b (owned by the box): 1 when one
 * occurred, 0 when none did, -1 when out of memory. Allocates no Lua memory: no finalizer can run
 * while a key is read. */
static int replace_all(lua_State *L, int set, const char *text, size_t len, box *b) {
  const char *cur = text;
  size_t curlen = len;
  int changed = 0;
  lua_pushnil(L);
  while (lua_next(L, set) != 0) {
    const char *key = key_of(L);
    if (key != NULL) {
      char *out = NULL;
      size_t outlen = 0;
      int r = replace(cur, curlen, key, strlen(key), &out, &outlen);
      if (r < 0) {
        lua_pop(L, 1);
        return -1;
      }
      if (r > 0) {
        burn(&b->p, b->n);
        b->p = out;
        b->n = outlen;
        cur = out;
        curlen = outlen;
        changed = 1;
      }
    }
  }
  return changed;
}

/* True when some key of the set occurs in text: the cheap first look, with no allocation. */
static int holds_key(lua_State *L, int set, const char *text, size_t len) {
  lua_pushnil(L);
  while (lua_next(L, set) != 0) {
    const char *key = key_of(L);
    if (key != NULL && find(text, text + len, key, strlen(key)) != NULL) {
      lua_pop(L, 1);
      return 1;
    }
  }
  return 0;
}

/* The string at idx, scrubbed, pushed (the same string when no key occurs in it). */
static void scrub_string(lua_State *L, int set, int idx) {
  size_t len;
  const char *text = lua_tolstring(L, idx, &len);
  box *b;
  int r;
  luaL_checkstack(L, 4, "scrub");
  if (!holds_key(L, set, text, len)) {
    lua_pushvalue(L, idx);
    return;
  }
  b = (box *)ds_newuserdata(L, sizeof *b);  /* may run finalizers: before any key is read */
  b->p = NULL;
  b->n = 0;
  ds_setmetatable(L, BOX_MT);
  r = replace_all(L, set, text, len, b);
  if (r < 0) luaL_error(L, "not enough memory");
  if (r == 0) lua_pushvalue(L, idx);  /* a finalizer wiped the key meanwhile */
  else lua_pushlstring(L, b->p, b->n);
  burn(&b->p, b->n);
  lua_remove(L, -2);  /* the box */
}

/* Scrubs the table at idx in place: string values, string keys, nested tables (each once: seen
 * is the set of tables met). */
static void scrub_table(lua_State *L, int set, int seen, int idx, int depth) {
  int renames = 0, i;
  idx = ds_absindex(L, idx);
  if (depth > DS_SCRUB_DEPTH) luaL_error(L, "dashscope: a value nested deeper than %d levels", DS_SCRUB_DEPTH);
  luaL_checkstack(L, 8, "scrub");
  lua_pushvalue(L, idx);
  lua_rawget(L, seen);
  if (lua_toboolean(L, -1)) {
    lua_pop(L, 1);
    return;
  }
  lua_pop(L, 1);
  lua_pushvalue(L, idx);
  lua_pushboolean(L, 1);
  lua_rawset(L, seen);
  lua_newtable(L);  /* keys to rename after the walk: { old, new, old, new, ... } */
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {  /* ..., renames, key, value */
    if (lua_type(L, -1) == LUA_TSTRING) {
      scrub_string(L, set, -1);
      if (!lua_rawequal(L, -1, -2)) {
        lua_pushvalue(L, -3);
        lua_insert(L, -2);
        lua_rawset(L, idx);  /* an existing key: allowed during the walk */
      } else {
        lua_pop(L, 1);
      }
    } else if (lua_type(L, -1) == LUA_TTABLE) {
      scrub_table(L, set, seen, -1, depth + 1);
    }
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TSTRING) {
      scrub_string(L, set, -1);
      if (!lua_rawequal(L, -1, -2)) {
        lua_pushvalue(L, -2);
        lua_rawseti(L, -4, ++renames);
        lua_rawseti(L, -3, ++renames);
      } else {
        lua_pop(L, 1);
      }
    }
  }
  for (i = 1; i < renames; i += 2) {  /* t[new] = t[old]; t[old] = nil */
    lua_rawgeti(L, -1, i + 1);
    lua_rawgeti(L, -2, i);
    lua_rawget(L, idx);
    lua_rawset(L, idx);
    lua_rawgeti(L, -1, i);
    lua_pushnil(L);
    lua_rawset(L, idx);
  }
  lua_pop(L, 1);
}

/* Can a value decoded from the JSON text at idx hold a key? Without a backslash every string of it
 * (key or value) is a run of the text's own bytes, so only if the text holds one; an escape could
 * spell a key the bytes do not show, so a text with a backslash always may. */
static int source_may_hold(lua_State *L, int set, int idx) {
  size_t len;
  const char *text = lua_tolstring(L, idx, &len);
  return memchr(text, '\\', len) != NULL || holds_key(L, set, text, len);
}

/* core.scrub(value [, source]): a string scrubbed; a table scrubbed in place (and returned);
 * anything else as it is. Raises for a table nested deeper than DS_SCRUB_DEPTH. `source`, a
 * string: the JSON text a table was decoded from (json.lua), which spares the walk of an answer
 * that cannot hold a key (every answer but one quoting it back): a look at the text instead. */
static int l_scrub(lua_State *L) {
  int type = lua_type(L, 1);
  lua_settop(L, 2);
  if (type != LUA_TSTRING && type != LUA_TTABLE) {
    lua_settop(L, 1);
    return 1;
  }
  lua_getfield(L, LUA_REGISTRYINDEX, SECRETS);
  if (!lua_istable(L, 3) ||  /* no client has a key yet; or an answer with none in its text */
      (type == LUA_TTABLE && lua_type(L, 2) == LUA_TSTRING && !source_may_hold(L, 3, 2))) {
    lua_settop(L, 1);
    return 1;
  }
  lua_replace(L, 2);  /* the set */
  if (type == LUA_TSTRING) {
    scrub_string(L, 2, 1);
    return 1;
  }
  lua_newtable(L);  /* seen */
  scrub_table(L, 2, 3, 1, 1);
  lua_settop(L, 1);
  return 1;
}

void ds_scrub_remember(lua_State *L, int tidx, char **secret) {
  tidx = ds_absindex(L, tidx);
  lua_getfield(L, LUA_REGISTRYINDEX, SECRETS);
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, SECRETS);
  }
  lua_pushvalue(L, tidx);
  lua_pushlightuserdata(L, (void *)secret);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

void ds_scrub_open(lua_State *L) {
  if (luaL_newmetatable(L, BOX_MT)) {
    lua_pushcfunction(L, box_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, l_scrub);
  lua_setfield(L, -2, "scrub");
}
