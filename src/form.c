/*
 * form.c -- multipart/form-data bodies for requests (see form.h).
 *
 * Owns nothing after returning: the mime handle goes to the caller, and a
 * file part's descriptor to its mime part (closed when the part is freed).
 * Field values are never echoed in errors (they may be signatures or
 * policies).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <lua.h>
#include <lauxlib.h>

#include "compat.h"
#include "form.h"
#include "fs.h"

static int part_error(lua_State *L, int i, const char *what) {
  return luaL_argerror(L, 2, lua_pushfstring(L, "form[%d] %s", i, what));
}

/* An optional string field of the part on top, without CR, LF or NUL (it goes into a part
 * header; a file's path only may hold CR and LF, since it goes to open()). Returns NULL when
 * absent. */
static const char *part_text(lua_State *L, int i, const char *field, int required) {
  int path = strcmp(field, "file") == 0;
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
  if (len == 0 || (!path && strcspn(s, "\r\n") != len) || memchr(s, '\0', len) != NULL)
    part_error(L, i, lua_pushfstring(L, path ? "field '%s' must be non-empty, without NUL"
                                             : "field '%s' must be non-empty, without CR, LF or NUL", field));
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
    lua_getfield(L, -1, "size");
    if (!lua_isnil(L, -1) && (!has_file || lua_type(L, -1) != LUA_TNUMBER || !(lua_tonumber(L, -1) >= 0)))
      part_error(L, i, "field 'size' must be a number of bytes, with 'file'");
    lua_pop(L, 1);
    lua_pop(L, 1);
  }
  return n;
}

/* A file part's source: the descriptor it is read from, owned until free_source. */
typedef struct {
  int fd;               /* -1: the file failed its check, and the first read says so */
  int err;              /* why fd is -1: errno, or -1 for "not the checked size" */
  curl_off_t size, off;
  int *read_errno;      /* the request's, told why a read aborts */
} ds_source;

static size_t read_source(char *p, size_t size, size_t n, void *ud) {
  ds_source *src = (ds_source *)ud;
  size_t want = size * n;
  ssize_t got;
  struct stat st;
  if (src->fd >= 0 && src->off >= src->size) {  /* all sent: was that the whole file? */
    if (fstat(src->fd, &st) != 0 || st.st_size != src->size) src->err = -1;
    else return 0;
  }
  if (src->fd >= 0 && src->err == 0) {
    if ((curl_off_t)want > src->size - src->off) want = (size_t)(src->size - src->off);
    do got = pread(src->fd, p, want, (off_t)src->off);
    while (got < 0 && errno == EINTR);
    if (got > 0) {
      src->off += got;
      return (size_t)got;
    }
    src->err = got < 0 ? errno : -1;  /* 0 before size: it shrank */
  }
  *src->read_errno = src->err != 0 ? src->err : -1;
  return CURL_READFUNC_ABORT;
}

static int seek_source(void *ud, curl_off_t offset, int origin) {
  ds_source *src = (ds_source *)ud;
  if (origin != SEEK_SET || offset < 0 || offset > src->size) return CURL_SEEKFUNC_CANTSEEK;
  src->off = offset;
  return CURL_SEEKFUNC_OK;
}

static void free_source(void *ud) {
  ds_source *src = (ds_source *)ud;
  if (src->fd >= 0) close(src->fd);
  free(src);
}

/* Streams the file at path into part from a descriptor opened now; `size` < 0: any size. */
static CURLcode file_part(curl_mimepart *part, const char *path, lua_Number size, int *read_errno) {
  struct stat st;
  const char *what;
  CURLcode rc;
  ds_source *src = (ds_source *)malloc(sizeof *src);
  if (src == NULL) return CURLE_OUT_OF_MEMORY;
  src->read_errno = read_errno;
  src->off = 0;
  src->err = 0;
  src->size = 0;
  src->fd = ds_fs_open_input(path, &st, &what);
  if (src->fd < 0) {
    src->err = errno != 0 ? errno : EINVAL;  /* EINVAL: no longer a regular file */
  } else if (size >= 0 && (lua_Number)st.st_size != size) {
    src->err = -1;
    close(src->fd);
    src->fd = -1;
  } else {
    src->size = (curl_off_t)st.st_size;
  }
  if (src->err != 0) src->size = size > 0 ? (curl_off_t)size : 1;  /* so that a read comes, and aborts */
  rc = curl_mime_data_cb(part, src->size, read_source, seek_source, free_source, src);
  if (rc != CURLE_OK) free_source(src);  /* not taken */
  return rc;
}

/* Adds the checked part on top of the stack to mime. */
static CURLcode add_part(lua_State *L, curl_mime *mime, int *read_errno) {
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
  lua_getfield(L, -1, "size");
  lua_getfield(L, -2, "file");
  if (rc == CURLE_OK && lua_isstring(L, -1))  /* streamed at send time, from a descriptor of now */
    rc = file_part(part, lua_tostring(L, -1), lua_isnil(L, -2) ? -1 : lua_tonumber(L, -2), read_errno);
  lua_pop(L, 2);
  lua_getfield(L, -1, "filename");
  if (rc == CURLE_OK && lua_isstring(L, -1)) rc = curl_mime_filename(part, lua_tostring(L, -1));
  lua_pop(L, 1);
  lua_getfield(L, -1, "type");
  if (rc == CURLE_OK && lua_isstring(L, -1)) rc = curl_mime_type(part, lua_tostring(L, -1));
  lua_pop(L, 1);
  return rc;
}

CURLcode ds_form_build(lua_State *L, int idx, CURL *easy, curl_mime **out, int *read_errno) {
  int i, n = (int)ds_rawlen(L, idx);
  CURLcode rc = CURLE_OK;
  curl_mime *mime = curl_mime_init(easy);
  *out = NULL;
  if (mime == NULL) return CURLE_OUT_OF_MEMORY;
  for (i = 1; i <= n && rc == CURLE_OK; i++) {
    lua_rawgeti(L, idx, i);
    rc = add_part(L, mime, read_errno);
    lua_pop(L, 1);
  }
  if (rc != CURLE_OK) {
    curl_mime_free(mime);
    return rc;
  }
  *out = mime;
  return CURLE_OK;
}
