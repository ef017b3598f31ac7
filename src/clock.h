/* clock.h: the monotonic clock the scheduler reads (core.now), the wall clock and the process's
 * resource use (core.wallclock, core.rusage) for reports. */
#ifndef DS_CLOCK_H
#define DS_CLOCK_H

#include <lua.h>

/* Seconds since an arbitrary fixed point, never going back; a float. */
double ds_clock_now(void);

/* core.now() -> seconds (float), monotonic. */
int ds_clock_lnow(lua_State *L);

/* core.wallclock() -> seconds since the epoch (float), CLOCK_REALTIME: may jump. */
int ds_clock_lwallclock(lua_State *L);

/* core.rusage() -> { user = seconds, system = seconds, maxrss = kilobytes } for this process. */
int ds_clock_lrusage(lua_State *L);

#endif
