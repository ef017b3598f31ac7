/*
 * logfile.h -- an append-only log file that survives a crash (the batch journal's file): opened
 * and locked by one process at a time, appended in whole records, each made durable before the
 * append returns.
 *
 * logfile.c owns the "dashscope.Log" userdata (an owned, locked descriptor). It touches no libcurl
 * handle, no request and no other file's state; what the records mean is the Lua layer's
 * (src/dashscope/journal_log.lua).
 */
#ifndef DS_LOGFILE_H
#define DS_LOGFILE_H

#include <lua.h>

#pragma GCC visibility push(hidden)  /* internal to the module: core.h says why */

#define DS_LOG_MT "dashscope.Log"

/* Adds open_log and sync_dir to the table on top of the stack (the core table) and registers the
 * Log metatable (read, append, truncate, size, close). */
void ds_logfile_open(lua_State *L);

#pragma GCC visibility pop

#endif
