/*
 * signals.h -- core.trap_signals(fn, ...) and core.caught_signal(), for the command-line tool.
 *
 * Owns the process's handlers of SIGINT, SIGTERM and SIGHUP while trap_signals runs, and nothing
 * else: the library never calls it (a module must not take its host's signals; an nginx worker or
 * an editor has its own). Touches no other file's state.
 */
#ifndef DS_SIGNALS_H
#define DS_SIGNALS_H

#include <lua.h>

#pragma GCC visibility push(hidden)  /* internal to the module: core.h says why */

/* Sets trap_signals and caught_signal in the table on top of the stack (the core table). */
void ds_signals_open(lua_State *L);

#pragma GCC visibility pop

#endif
