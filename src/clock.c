/* clock.c: the monotonic clock. Deadlines, back-off and poll schedules must not jump when the wall
 * clock is set, so they read CLOCK_MONOTONIC, never time() or os.time(). */
#include <time.h>

#include "clock.h"

double ds_clock_now(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0.0; /* cannot happen on Linux; a frozen clock is still safe for the callers */
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int ds_clock_lnow(lua_State *L)
{
    lua_pushnumber(L, ds_clock_now());
    return 1;
}
