/* clock.c: the clocks and the process's own resource use. Deadlines, back-off and poll schedules
 * must not jump when the wall clock is set, so they read CLOCK_MONOTONIC (ds_clock_now), never
 * time() or os.time(). The wall clock and getrusage are for reports (the bench): core.wallclock,
 * core.rusage. */
#include <limits.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <errno.h>
#include <time.h>

#include <lua.h>
#include <lauxlib.h>

#include "clock.h"

static double seconds(clockid_t id)
{
    struct timespec ts;
    if (clock_gettime(id, &ts) != 0)
        return 0.0; /* cannot happen on Linux; a frozen clock is still safe for the callers */
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double ds_clock_now(void)
{
    return seconds(CLOCK_MONOTONIC);
}

int ds_clock_ms(double seconds_)
{
    double ms = seconds_ * 1000;
    int whole;
    if (!(ms > 0)) return 0;
    if (ms >= (double)INT_MAX) return INT_MAX;
    whole = (int)ms;
    return (double)whole < ms ? whole + 1 : whole;
}

int ds_clock_lnow(lua_State *L)
{
    lua_pushnumber(L, ds_clock_now());
    return 1;
}

int ds_clock_lwallclock(lua_State *L)
{
    lua_pushnumber(L, seconds(CLOCK_REALTIME));
    return 1;
}

static double tv_seconds(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

int ds_clock_lrusage(lua_State *L)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) {
        lua_pushnil(L);
        lua_pushliteral(L, "getrusage failed");
        return 2;
    }
    lua_createtable(L, 0, 3);
    lua_pushnumber(L, tv_seconds(ru.ru_utime));
    lua_setfield(L, -2, "user");
    lua_pushnumber(L, tv_seconds(ru.ru_stime));
    lua_setfield(L, -2, "system");
    lua_pushinteger(L, (lua_Integer)ru.ru_maxrss); /* kilobytes on Linux */
    lua_setfield(L, -2, "maxrss");
    return 1;
}

int ds_clock_lsleep(lua_State *L)
{
    double s = luaL_checknumber(L, 1);
    struct timespec ts;
    if (!(s > 0)) return 0;
    if (s > 86400) s = 86400;
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    /* a signal ends the sleep early: the CLI's trapped signals must be seen at once */
    nanosleep(&ts, NULL);
    return 0;
}
