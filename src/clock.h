/* clock.h: the monotonic clock the scheduler reads (core.now), the wall clock and the process's
 * resource use (core.wallclock, core.rusage) for reports. */
#ifndef DS_CLOCK_H
#define DS_CLOCK_H

#include <lua.h>

#pragma GCC visibility push(hidden)  /* internal to the module: core.h says why */

/* Seconds since an arbitrary fixed point, never going back; a float. */
double ds_clock_now(void);

/* Seconds (non-negative, not NaN) to whole milliseconds, rounded up so that a small positive wait
 * never becomes a busy 0 ms poll, and capped at INT_MAX (about 24 days): what libcurl's options
 * and poll(2) take. */
int ds_clock_ms(double seconds);

/* core.now() -> seconds (float), monotonic. */
int ds_clock_lnow(lua_State *L);

/* core.wallclock() -> seconds since the epoch (float), CLOCK_REALTIME: may jump. */
int ds_clock_lwallclock(lua_State *L);

/* core.rusage() -> { user = seconds, system = seconds, maxrss = kilobytes } for this process. */
int ds_clock_lrusage(lua_State *L);

/* core.sleep(seconds): blocks this thread that long (at most a day; a signal ends it early). For
 * the CLI's scheduler, whose threads all wait on timers; a client waits on its sockets instead. */
int ds_clock_lsleep(lua_State *L);

#pragma GCC visibility pop

#endif
