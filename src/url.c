/*
 * url.c -- core.parse_url and core.getdate: libcurl's URL API (curl_url) and date parser
 * (curl_getdate) for the Lua layer. Parsing with the parser the transfers use means a check made
 * on the parts (no userinfo, a loopback host) holds for the connection libcurl then makes.
 *
 * core.parse_url(text) -> { scheme, host, port, path, query, fragment, user, password, options,
 *   zoneid } (absent parts are nil; port an integer), or nil and why. Any scheme parses (oss://
 *   too); the caller decides which it takes. A NUL byte is refused here (libcurl reads C strings);
 *   control characters and spaces are refused by libcurl itself.
 * core.getdate(text) -> epoch seconds, or nil when libcurl cannot read a date in text.
 *
 * Owns no state between calls. A parse's CURLU handle and the strings libcurl returns live in a
 * userdata box whose __gc frees them, so a Lua error (out of memory while pushing a part) leaks
 * nothing; on the normal path they are freed before returning.
 */
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <lauxlib.h>
#include <lua.h>

#include "class.h"
#include "compat.h"
#include "core.h"
#include "url.h"

#define URL_BOX_MT "dashscope.URLParse"

/* The parts in the order of the box's slots, with their field names. */
static const struct {
  CURLUPart part;
  const char *name;
} parts[] = {
    {CURLUPART_SCHEME, "scheme"},     {CURLUPART_USER, "user"},   {CURLUPART_PASSWORD, "password"},
    {CURLUPART_OPTIONS, "options"},   {CURLUPART_HOST, "host"},   {CURLUPART_ZONEID, "zoneid"},
    {CURLUPART_PORT, "port"},         {CURLUPART_PATH, "path"},   {CURLUPART_QUERY, "query"},
    {CURLUPART_FRAGMENT, "fragment"},
};
#define N_PARTS (sizeof parts / sizeof parts[0])

typedef struct {
  CURLU *handle;
  char *text[N_PARTS];
} url_box;

static void box_free(url_box *b) {
  size_t i;
  for (i = 0; i < N_PARTS; i++) {
    curl_free(b->text[i]);
    b->text[i] = NULL;
  }
  if (b->handle != NULL) curl_url_cleanup(b->handle);
  b->handle = NULL;
}

static int box_gc(lua_State *L) {
  box_free((url_box *)luaL_checkudata(L, 1, URL_BOX_MT));
  return 0;
}

/* Why libcurl refused a URL, in words that never quote the URL (it may hold a secret). */
static const char *refusal(CURLUcode rc) {
  switch (rc) {
    case CURLUE_BAD_PORT_NUMBER: return "has a bad port number";
    case CURLUE_UNSUPPORTED_SCHEME: return "has no usable scheme";
    case CURLUE_NO_HOST: return "has no host";
    case CURLUE_OUT_OF_MEMORY: return "could not be parsed (out of memory)";
#if LIBCURL_VERSION_NUM >= 0x075100 /* 7.81.0 named the other refusals */
    case CURLUE_BAD_SCHEME: return "has no usable scheme";
    case CURLUE_BAD_HOSTNAME: return "has no usable host";
    case CURLUE_BAD_IPV6: return "has a bad IPv6 address";
    case CURLUE_BAD_LOGIN: case CURLUE_BAD_USER: case CURLUE_BAD_PASSWORD: return "has bad credentials";
#endif
    default: return "is not a well-formed URL";
  }
}

static int l_parse_url(lua_State *L) {
  size_t len, i;
  const char *text = luaL_checklstring(L, 1, &len);
  url_box *b;
  CURLUcode rc;
  /* the box first, empty, so that __gc is right whatever fails after */
  b = (url_box *)ds_newuserdata(L, sizeof *b);
  memset(b, 0, sizeof *b);
  ds_setmetatable(L, URL_BOX_MT);
  if (memchr(text, '\0', len) != NULL) {
    lua_pushnil(L);
    lua_pushliteral(L, "contains a NUL byte");
    return 2;
  }
  b->handle = curl_url();
  if (b->handle == NULL) return luaL_error(L, "curl_url: out of memory");
  /* NON_SUPPORT_SCHEME: parse any scheme; the caller decides. No guessing of a missing scheme. */
  rc = curl_url_set(b->handle, CURLUPART_URL, text, CURLU_NON_SUPPORT_SCHEME);
  if (rc != CURLUE_OK) {
    box_free(b);
    lua_pushnil(L);
    lua_pushstring(L, refusal(rc));
    return 2;
  }
  for (i = 0; i < N_PARTS; i++) {
    rc = curl_url_get(b->handle, parts[i].part, &b->text[i], 0);
    if (rc == CURLUE_OUT_OF_MEMORY) {
      box_free(b);
      return luaL_error(L, "curl_url_get: out of memory");
    }
    if (rc != CURLUE_OK) b->text[i] = NULL; /* absent part (CURLUE_NO_USER, NO_PORT, ...) */
  }
  lua_createtable(L, 0, (int)N_PARTS);
  for (i = 0; i < N_PARTS; i++) {
    if (b->text[i] == NULL) continue;
    if (parts[i].part == CURLUPART_PORT) {
      /* libcurl has checked it: 1 to 5 digits, at most 65535 */
      lua_pushinteger(L, (lua_Integer)strtol(b->text[i], NULL, 10));
    } else {
      lua_pushstring(L, b->text[i]);
    }
    lua_setfield(L, -2, parts[i].name);
  }
  box_free(b);
  return 1;
}

static int l_getdate(lua_State *L) {
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  time_t t;
  if (memchr(text, '\0', len) != NULL) {
    lua_pushnil(L);
    return 1;
  }
  t = curl_getdate(text, NULL);
  if (t == (time_t)-1) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushinteger(L, (lua_Integer)t);
  return 1;
}

void ds_url_open(lua_State *L) {
  static const luaL_Reg meta[] = {{"__gc", box_gc}, {NULL, NULL}};
  static const luaL_Reg none[] = {{NULL, NULL}};
  ds_class(L, URL_BOX_MT, meta, none);
  lua_pushcfunction(L, l_parse_url);
  lua_setfield(L, -2, "parse_url");
  lua_pushcfunction(L, l_getdate);
  lua_setfield(L, -2, "getdate");
}
