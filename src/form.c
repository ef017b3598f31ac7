/*
 * form.c -- multipart/form-data bodies for requests (see form.h).
 *
 * Owns nothing after returning: the mime handle goes to the caller. Field
 * values are never echoed in errors (they may be signatures or policies).
 */
#include <string.h>

#include <curl/curl.h>
#include <lua.h>
#include <lauxlib.h>

#include "compat.h"
#include "form.h"

static int part_error(lua_State *L, int i, const char *what) {
  return luaL_argerror(L, 2, lua_pushfstring(L, "form[%d] %s", i, what));
}

/* An optional string field of the part on top, without CR, LF or NUL (it goes into a part
 * header). Returns NULL when absent. */
static const char *part_text(lua_State *L, int i, const char *field, int required) {
  const char *s;
  size_t len;
  lua_getfield(L, -1, field);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    if (required) part_error(L, i, lua_pushfstring(L, "needs a string '%s'", field));
    return NULL;
  }
  if (lua_type(L, -1) != LUA_TSTRING)
    part_error(L, i, lua_pushfstring(L, "field '%s' must be a string", field));
  s = lua_tolstring(L, -1, &len);
  if (len == 0 || strcspn(s, "\r\n") != len || memchr(s, '\0', len) != NULL)
    part_error(L, i, lua_pushfstring(L, "field '%s' must be non-empty, without CR, LF or NUL", field));
  lua_pop(L, 1);  /* the part table still holds the string */
  return s;
}

int ds_form_check(lua_State *L, int idx) {
  int i, n;
  if (lua_isnil(L, idx)) return 0;
  if (!lua_istable(L, idx)) luaL_argerror(L, 2, "field 'form' must be an array of parts");
  n = (int)ds_rawlen(L, idx);
  if (n == 0) luaL_argerror(L, 2, "field 'form' must not be empty");
  for (i = 1; i <= n; i++) {
    int has_value, has_file;
    lua_rawgeti(L, idx, i);
    if (!lua_istable(L, -1)) part_error(L, i, "must be a table { name =, value = | file = }");
    part_text(L, i, "name", 1);
    lua_getfield(L, -1, "value");
    has_value = !lua_isnil(L, -1);
    if (has_value && lua_type(L, -1) != LUA_TSTRING) part_error(L, i, "field 'value' must be a string");
    lua_pop(L, 1);
    has_file = part_text(L, i, "file", 0) != NULL;
    if (has_value == has_file) part_error(L, i, "needs exactly one of 'value' and 'file'");
    part_text(L, i, "filename", 0);
    part_text(L, i, "type", 0);
    lua_pop(L, 1);
  }
  return n;
}

/* Adds the checked part on top of the stack to mime. */
static CURLcode add_part(lua_State *L, curl_mime *mime) {
  curl_mimepart *part = curl_mime_addpart(mime);
  CURLcode rc;
  const char *s;
  size_t len;
  if (part == NULL) return CURLE_OUT_OF_MEMORY;
  lua_getfield(L, -1, "name");
  rc = curl_mime_name(part, lua_tostring(L, -1));
  lua_pop(L, 1);
  lua_getfield(L, -1, "value");
  if (rc == CURLE_OK && lua_isstring(L, -1)) {
    s = lua_tolstring(L, -1, &len);
    rc = curl_mime_data(part, s, len);  /* copied */
  }
  lua_pop(L, 1);
  lua_getfield(L, -1, "file");
  if (rc == CURLE_OK && lua_isstring(L, -1))
    rc = curl_mime_filedata(part, lua_tostring(L, -1));  /* streamed at send time */
  lua_pop(L, 1);
  lua_getfield(L, -1, "filename");
  if (rc == CURLE_OK && lua_isstring(L, -1)) rc = curl_mime_filename(part, lua_tostring(L, -1));
  lua_pop(L, 1);
  lua_getfield(L, -1, "type");
  if (rc == CURLE_OK && lua_isstring(L, -1)) rc = curl_mime_type(part, lua_tostring(L, -1));
  lua_pop(L, 1);
  return rc;
}

CURLcode ds_form_build(lua_State *L, int idx, CURL *easy, curl_mime **out) {
  int i, n = (int)ds_rawlen(L, idx);
  CURLcode rc = CURLE_OK;
  curl_mime *mime = curl_mime_init(easy);
  *out = NULL;
  if (mime == NULL) return CURLE_OUT_OF_MEMORY;
  for (i = 1; i <= n && rc == CURLE_OK; i++) {
    lua_rawgeti(L, idx, i);
    rc = add_part(L, mime);
    lua_pop(L, 1);
  }
  if (rc != CURLE_OK) {
    curl_mime_free(mime);
    return rc;
  }
  *out = mime;
  return CURLE_OK;
}
