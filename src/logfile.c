/*
 * logfile.c -- the append-only log file (see logfile.h).
 *
 *   open_log(path)        a Log, locked (flock, exclusive, never waited for); or nil, why
 *                         [, "locked"] when another open Log (this process's or another's) holds it
 *   sync_dir(path)        fsync of a directory: a rename in it is durable; true, or nil, why
 *   Log:read()            the whole file, from its first byte (the lock keeps it still)
 *   Log:append(bytes)     written whole (O_APPEND), then fdatasync: on the disk when it returns;
 *                         true, or nil, why
 *   Log:truncate(n)       cut to n bytes (a record torn by a crash), synced; true, or nil, why
 *   Log:size()            bytes
 *   Log:close()           releases the lock; idempotent, also __gc and __close
 *
 * The file is opened O_NOFOLLOW (a link planted at the name is refused, never followed) with mode
 * 0600: it names the user's jobs and files. The lock is flock's, so it is released by the kernel
 * when the process dies, SIGKILL included: a rerun after a crash never finds a stale lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lua.h>
#include <lauxlib.h>

#include "class.h"
#include "compat.h"
#include "core.h"
#include "fs.h"
#include "logfile.h"

#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif

typedef struct {
  int fd;  /* -1 once closed */
} ds_log;

static int failed(lua_State *L, int e) {
  lua_pushnil(L);
  lua_pushstring(L, strerror(e));
  return 2;
}

static ds_log *check_log(lua_State *L) {
  ds_log *log = (ds_log *)luaL_checkudata(L, 1, DS_LOG_MT);
  if (log->fd < 0) luaL_error(L, "attempt to use a closed " DS_LOG_MT);
  return log;
}

static int l_open_log(lua_State *L) {
  const char *path = ds_fs_check_path(L, 1);
  struct stat st;
  ds_log *log = (ds_log *)ds_newuserdata(L, sizeof *log);
  log->fd = -1;  /* safe state first: __gc closes nothing */
  ds_setmetatable(L, DS_LOG_MT);
  do log->fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, 0600);
  while (log->fd < 0 && errno == EINTR);
  if (log->fd < 0) return failed(L, errno);
  if (fstat(log->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    int e = S_ISREG(st.st_mode) ? errno : EINVAL;
    close(log->fd);
    log->fd = -1;
    return failed(L, e);
  }
  if (flock(log->fd, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    close(log->fd);
    log->fd = -1;
    failed(L, e);
    if (e != EWOULDBLOCK) return 2;
    lua_pushliteral(L, "locked");
    return 3;
  }
  return 1;
}

static int l_sync_dir(lua_State *L) {
  int fd, rc;
  do fd = open(ds_fs_check_path(L, 1), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) return failed(L, errno);
  rc = fsync(fd);
  if (rc != 0 && errno != EINVAL && errno != EROFS) {  /* some file systems cannot sync a directory */
    int e = errno;
    close(fd);
    return failed(L, e);
  }
  close(fd);
  lua_pushboolean(L, 1);
  return 1;
}

static int log_read(lua_State *L) {
  ds_log *log = check_log(L);
  luaL_Buffer b;
  off_t at = 0;
  luaL_buffinit(L, &b);
  for (;;) {
    char chunk[8192];
    ssize_t n = pread(log->fd, chunk, sizeof chunk, at);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return failed(L, errno);
    if (n == 0) break;
    luaL_addlstring(&b, chunk, (size_t)n);
    at += n;
  }
  luaL_pushresult(&b);
  return 1;
}

static int synced(lua_State *L, int fd) {
  if (fdatasync(fd) != 0 && errno != EINVAL && errno != EROFS) return failed(L, errno);
  lua_pushboolean(L, 1);
  return 1;
}

static int log_append(lua_State *L) {
  ds_log *log = check_log(L);
  size_t len, done = 0;
  const char *bytes = luaL_checklstring(L, 2, &len);
  while (done < len) {
    ssize_t n = write(log->fd, bytes + done, len - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return failed(L, errno);
    done += (size_t)n;
  }
  return synced(L, log->fd);
}

static int log_truncate(lua_State *L) {
  ds_log *log = check_log(L);
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_argcheck(L, n >= 0, 2, "must not be negative");
  if (ftruncate(log->fd, (off_t)n) != 0) return failed(L, errno);
  return synced(L, log->fd);
}

static int log_size(lua_State *L) {
  struct stat st;
  if (fstat(check_log(L)->fd, &st) != 0) return failed(L, errno);
  lua_pushinteger(L, (lua_Integer)st.st_size);
  return 1;
}

/* Shared by close, __gc and __close; idempotent. Closing the descriptor releases the lock. */
static int log_close(lua_State *L) {
  ds_log *log = (ds_log *)luaL_checkudata(L, 1, DS_LOG_MT);
  if (log->fd >= 0) {
    close(log->fd);
    log->fd = -1;
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int log_gc(lua_State *L) {
  log_close(L);
  return 0;
}

static int log_tostring(lua_State *L) {
  ds_log *log = (ds_log *)luaL_checkudata(L, 1, DS_LOG_MT);
  if (log->fd < 0) lua_pushliteral(L, DS_LOG_MT " (closed)");
  else lua_pushfstring(L, DS_LOG_MT " (%d)", log->fd);
  return 1;
}

static const luaL_Reg log_methods[] = {
  {"read", log_read},
  {"append", log_append},
  {"truncate", log_truncate},
  {"size", log_size},
  {"close", log_close},
  {NULL, NULL}
};

static const luaL_Reg log_meta[] = {
  {"__gc", log_gc},
  {"__close", log_gc},
  {"__tostring", log_tostring},
  {NULL, NULL}
};

static const luaL_Reg logfile_functions[] = {
  {"open_log", l_open_log},
  {"sync_dir", l_sync_dir},
  {NULL, NULL}
};

void ds_logfile_open(lua_State *L) {
  ds_class(L, DS_LOG_MT, log_meta, log_methods);
  ds_setfuncs(L, logfile_functions, 0);
}
