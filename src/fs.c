/*
 * fs.c -- local files for uploads, the key file and downloads (see fs.h).
 *
 * Owns the "dashscope.Fd" userdata and the core functions below. Inputs are looked at with stat
 * before they are opened, so a device is never opened at all, and opened O_NONBLOCK, so a FIFO
 * swapped in between cannot hang the open; fstat then confirms what was opened. Outputs are
 * created O_CREAT|O_EXCL|O_NOFOLLOW: a name that exists, or a symlink planted under it, is an
 * error, never followed. Failures of the world come back as nil and a message (errno's words);
 * only misuse raises. Never touches libcurl.
 *
 *   file_check(path)              size of a readable, non-empty regular file; or nil, why
 *   file_read(path, max)          its bytes (at most max); or nil, why
 *   file_exists(path)             whether anything (even a dangling link) is at path [, why]
 *   create_new(path)              an Fd for a new file (mode 0666 & ~umask); or nil, why, "exists"
 *   random_hex(n)                 2n hex digits from /dev/urandom; or nil, why
 *   place(tmp, path, overwrite)   tmp renamed to path (without overwrite: never replacing one)
 *   fileno(handle)                the descriptor of an open Lua file handle, its buffer flushed
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#include "class.h"
#include "compat.h"
#include "core.h"
#include "fs.h"

#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif

typedef struct {
  int fd;  /* -1 once closed */
} ds_fd;

static const char *kind_of(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

int ds_fs_open_input(const char *path, struct stat *st, const char **what) {
  int fd;
  *what = NULL;
  if (stat(path, st) != 0) return -1;
  if (!S_ISREG(st->st_mode)) {  /* a device is never opened: opening one can act */
    *what = kind_of(st->st_mode);
    errno = 0;
    return -1;
  }
  do fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) return -1;
  if (fstat(fd, st) != 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  if (!S_ISREG(st->st_mode)) {  /* swapped between stat and open */
    *what = kind_of(st->st_mode);
    close(fd);
    errno = 0;
    return -1;
  }
  return fd;
}

const char *ds_fs_check_path(lua_State *L, int idx) {
  size_t len;
  const char *path = luaL_checklstring(L, idx, &len);
  if (len == 0 || memchr(path, '\0', len) != NULL)
    luaL_argerror(L, idx, "a path must be a non-empty string without NUL");
  return path;
}

/* nil and why: what the input is, or errno's words. Returns 2. */
static int input_failed(lua_State *L, const char *what) {
  lua_pushnil(L);
  if (what != NULL) lua_pushfstring(L, "%s, not a regular file", what);
  else lua_pushstring(L, strerror(errno));
  return 2;
}

static int l_file_check(lua_State *L) {
  struct stat st;
  const char *what;
  int fd = ds_fs_open_input(ds_fs_check_path(L, 1), &st, &what);
  if (fd < 0) return input_failed(L, what);
  close(fd);
  if (st.st_size <= 0) {
    lua_pushnil(L);
    lua_pushliteral(L, "an empty file");
    return 2;
  }
  lua_pushinteger(L, (lua_Integer)st.st_size);
  return 1;
}

static int l_file_read(lua_State *L) {
  struct stat st;
  const char *what;
  lua_Integer max = luaL_checkinteger(L, 2);
  luaL_Buffer b;
  size_t total = 0;
  int fd = ds_fs_open_input(ds_fs_check_path(L, 1), &st, &what);
  if (fd < 0) return input_failed(L, what);
  luaL_buffinit(L, &b);
  for (;;) {
    char chunk[4096];
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      close(fd);
      errno = e;
      return input_failed(L, NULL);
    }
    if (n == 0) break;
    total += (size_t)n;
    if (max >= 0 && total > (size_t)max) {
      close(fd);
      lua_pushnil(L);
      lua_pushfstring(L, "larger than %d bytes", (int)max);
      return 2;
    }
    luaL_addlstring(&b, chunk, (size_t)n);
  }
  close(fd);
  luaL_pushresult(&b);
  return 1;
}

static int l_file_exists(lua_State *L) {
  struct stat st;
  if (lstat(ds_fs_check_path(L, 1), &st) == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_pushboolean(L, 0);
  if (errno == ENOENT) return 1;
  lua_pushstring(L, strerror(errno));
  return 2;
}

/* ---- the Fd userdata */

static ds_fd *check_fd(lua_State *L) {
  ds_fd *f = (ds_fd *)luaL_checkudata(L, 1, DS_FD_MT);
  if (f->fd < 0) luaL_error(L, "attempt to use a closed " DS_FD_MT);
  return f;
}

static int fd_fileno(lua_State *L) {
  lua_pushinteger(L, check_fd(L)->fd);
  return 1;
}

/* Fd:sync(): the bytes on the disk before the file is renamed into place (a full disk on some file
 * systems shows only here). true, or nil and why. */
static int fd_sync(lua_State *L) {
  ds_fd *f = check_fd(L);
  if (fsync(f->fd) != 0 && errno != EINVAL && errno != EROFS) {  /* EINVAL: cannot be synced */
    lua_pushnil(L);
    lua_pushstring(L, strerror(errno));
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* Shared by close, __gc and __close; idempotent. close() reports a late write error. */
static int fd_close(lua_State *L) {
  ds_fd *f = (ds_fd *)luaL_checkudata(L, 1, DS_FD_MT);
  int rc;
  if (f->fd < 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  rc = close(f->fd);
  f->fd = -1;
  if (rc != 0 && errno != EINTR) {  /* after EINTR the descriptor is gone all the same (Linux) */
    lua_pushnil(L);
    lua_pushstring(L, strerror(errno));
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int fd_gc(lua_State *L) {
  fd_close(L);
  return 0;
}

static int fd_tostring(lua_State *L) {
  ds_fd *f = (ds_fd *)luaL_checkudata(L, 1, DS_FD_MT);
  if (f->fd < 0) lua_pushliteral(L, DS_FD_MT " (closed)");
  else lua_pushfstring(L, DS_FD_MT " (%d)", f->fd);
  return 1;
}

/* create_new(path): a new, empty file opened for writing, never through an existing name or link.
 * The mode is 0666 less the umask, as for any file the user creates (the video is theirs to
 * share); the safety comes from O_EXCL|O_NOFOLLOW and the caller's unpredictable name. */
static int l_create_new(lua_State *L) {
  const char *path = ds_fs_check_path(L, 1);
  ds_fd *f = (ds_fd *)ds_newuserdata(L, sizeof *f);
  f->fd = -1;  /* safe state first: __gc closes nothing */
  ds_setmetatable(L, DS_FD_MT);
  do f->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, 0666);
  while (f->fd < 0 && errno == EINTR);
  if (f->fd < 0) {
    int e = errno;
    lua_pushnil(L);
    lua_pushstring(L, strerror(e));
    if (e == EEXIST || e == ELOOP) {  /* ELOOP: a symlink sits at the name */
      lua_pushliteral(L, "exists");
      return 3;
    }
    return 2;
  }
  return 1;
}

static int l_random_hex(lua_State *L) {
  static const char digits[] = "0123456789abcdef";
  unsigned char bytes[32];
  char hex[2 * sizeof bytes];
  lua_Integer n = luaL_checkinteger(L, 1);
  size_t got = 0, i;
  int fd;
  luaL_argcheck(L, n >= 1 && n <= (lua_Integer)sizeof bytes, 1, "must be from 1 to 32");
  do fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC | O_NOCTTY);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) return input_failed(L, NULL);
  while (got < (size_t)n) {
    ssize_t r = read(fd, bytes + got, (size_t)n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      int e = r < 0 ? errno : EIO;
      close(fd);
      errno = e;
      return input_failed(L, NULL);
    }
    got += (size_t)r;
  }
  close(fd);
  for (i = 0; i < got; i++) {
    hex[2 * i] = digits[bytes[i] >> 4];
    hex[2 * i + 1] = digits[bytes[i] & 15];
  }
  lua_pushlstring(L, hex, 2 * got);
  return 1;
}

/* place(tmp, path, overwrite): tmp becomes path. Without overwrite, link() then unlink(): atomic,
 * so a file that appeared at path meanwhile is never replaced ("exists"). A file system without
 * hard links falls back to a look, then rename. true, or nil, why [, "exists"]. */
static int l_place(lua_State *L) {
  const char *tmp = ds_fs_check_path(L, 1), *path = ds_fs_check_path(L, 2);
  int overwrite = lua_toboolean(L, 3);
  if (!overwrite) {
    struct stat st;
    if (link(tmp, path) == 0) {
      unlink(tmp);
      lua_pushboolean(L, 1);
      return 1;
    }
    if (errno != EEXIST && errno != EPERM && errno != ENOTSUP &&
        errno != EXDEV && errno != EMLINK) {
      lua_pushnil(L);
      lua_pushstring(L, strerror(errno));
      return 2;
    }
    if (errno == EEXIST || lstat(path, &st) == 0) {
      lua_pushnil(L);
      lua_pushstring(L, strerror(EEXIST));
      lua_pushliteral(L, "exists");
      return 3;
    }
  }
  if (rename(tmp, path) != 0) {
    lua_pushnil(L);
    lua_pushstring(L, strerror(errno));
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* The FILE of an open Lua file handle at idx; raises for anything else, or a closed one. */
static FILE *lua_file(lua_State *L, int idx) {
#if LUA_VERSION_NUM >= 502
  luaL_Stream *p = (luaL_Stream *)luaL_checkudata(L, idx, LUA_FILEHANDLE);
  if (p->closef == NULL) luaL_argerror(L, idx, "attempt to use a closed file");
  return p->f;
#else  /* 5.1 and LuaJIT: the userdata starts with the FILE *, NULL once closed */
  FILE **p = (FILE **)luaL_checkudata(L, idx, LUA_FILEHANDLE);
  if (*p == NULL) luaL_argerror(L, idx, "attempt to use a closed file");
  return *p;
#endif
}

static int l_fileno(lua_State *L) {
  FILE *f = lua_file(L, 1);
  int fd;
  fflush(f);  /* what Lua wrote before comes first */
  fd = fileno(f);
  if (fd < 0) luaL_argerror(L, 1, "the file handle has no descriptor");
  lua_pushinteger(L, fd);
  return 1;
}

static const luaL_Reg fd_methods[] = {
  {"fileno", fd_fileno},
  {"sync", fd_sync},
  {"close", fd_close},
  {NULL, NULL}
};

static const luaL_Reg fd_meta[] = {
  {"__gc", fd_gc},
  {"__close", fd_gc},
  {"__tostring", fd_tostring},
  {NULL, NULL}
};

static const luaL_Reg fs_functions[] = {
  {"file_check", l_file_check},
  {"file_read", l_file_read},
  {"file_exists", l_file_exists},
  {"create_new", l_create_new},
  {"random_hex", l_random_hex},
  {"place", l_place},
  {"fileno", l_fileno},
  {NULL, NULL}
};

void ds_fs_open(lua_State *L) {
  ds_class(L, DS_FD_MT, fd_meta, fd_methods);
  ds_setfuncs(L, fs_functions, 0);
}
