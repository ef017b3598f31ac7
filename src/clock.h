/* clock.h: the monotonic clock the scheduler reads (core.now). */
#ifndef DS_CLOCK_H
#define DS_CLOCK_H

#include <lua.h>

/* Seconds since an arbitrary fixed point, never going back; a float. */
double ds_clock_now(void);

/* core.now() -> seconds (float). */
int ds_clock_lnow(lua_State *L);

#endif
