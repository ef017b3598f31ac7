/*
 * fs.h -- local files, opened the way a careful Unix tool opens them: an input never blocks (a FIFO
 * or a device is refused, not waited on), an output is created new (O_EXCL|O_NOFOLLOW) under an
 * unpredictable name, never through a link someone planted.
 *
 * fs.c owns these functions and the "dashscope.Fd" userdata (an owned file descriptor). It touches
 * no libcurl handle and no request: request.c and form.c call ds_fs_open_input and keep what it
 * opens.
 */
#ifndef DS_FS_H
#define DS_FS_H

#include <sys/stat.h>

#include <lua.h>

#pragma GCC visibility push(hidden)  /* internal to the module: core.h says why */

#define DS_FD_MT "dashscope.Fd"

/* Opens `path` for reading without ever blocking (O_RDONLY|O_NONBLOCK|O_NOCTTY|O_CLOEXEC) and
 * checks that it is a regular file; *st receives its fstat. Returns the descriptor (the caller
 * closes it), or -1 with errno set; a file that is no regular file gives -1, errno 0 and *what set
 * to what it is ("a directory", "a FIFO", ...). */
int ds_fs_open_input(const char *path, struct stat *st, const char **what);

/* The path argument at idx: a non-empty string without NUL, else a misuse (raises). */
const char *ds_fs_check_path(lua_State *L, int idx);

/* Adds the file functions to the table on top of the stack (the core table) and registers the
 * Fd metatable: file_check, file_read, file_exists, create_new, random_hex, place, fileno. */
void ds_fs_open(lua_State *L);

#pragma GCC visibility pop

#endif
