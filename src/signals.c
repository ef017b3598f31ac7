/*
 * signals.c -- SIGINT, SIGTERM and SIGHUP turned into a Lua error, for the command-line tool (see
 * signals.h): a program stopped by one of them unwinds through its own code, so that the library's
 * cleanups run (a download removes its partial file), and then says what it leaves behind (the
 * task id) before it exits with 128 + the signal's number.
 *
 * core.trap_signals(fn, ...) calls fn(...) with handlers installed; the first signal caught makes
 * the calling Lua thread raise the error value { signal = N } at its next Lua instruction, as
 * lua.c does for Ctrl-C (a count hook set from the handler). A blocking wait of the core returns
 * on the signal: the handlers have no SA_RESTART, and transport.c's wait returns on EINTR. The
 * error is raised once: a second signal ends the process at once, by its default action (the user
 * insists, or the program is stuck outside Lua). When fn has returned, in C, the three signals are
 * blocked and the hook is taken away, so nothing can be raised in the code that reports and exits.
 *
 * Only a count hook is set, not a call hook: a call hook would fire on entering a C function run
 * under pcall (pcall(cjson.decode, ...)), where a pcall that expects a C error would swallow it.
 * LuaJIT's compiled traces check no hook: a program that traps signals under LuaJIT turns the JIT
 * off (the CLI does; it waits on the network, not on the CPU).
 */
#include <signal.h>
#include <stddef.h>

#include <lua.h>
#include <lauxlib.h>

#include "signals.h"

static const int trapped[] = { SIGINT, SIGTERM, SIGHUP };
static const char *const trapped_names[] = { "SIGINT", "SIGTERM", "SIGHUP" };
#define NTRAPPED (sizeof trapped / sizeof trapped[0])

/* The one exception to "no mutable C globals": a signal handler is given nothing but the signal's
 * number, and a signal's disposition is itself process-wide, so what it acts on cannot live in a
 * userdata. Only the program that calls trap_signals (the CLI, one lua_State) ever sets these. */
static lua_State *trap_state = NULL;          /* the thread the error is raised in, while trapping */
static volatile sig_atomic_t trapping = 0;    /* 1 while fn runs */
static volatile sig_atomic_t caught = 0;      /* the first signal's number; 0 before it */

/* The count hook: runs at the next Lua instruction after the handler set it, and only once. */
static void raise_caught(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  lua_createtable(L, 0, 1);
  lua_pushinteger(L, (lua_Integer)caught);
  lua_setfield(L, -2, "signal");
  lua_error(L);
}

static void on_signal(int sig) {
  if (caught != 0) {  /* a second signal: no more unwinding, the default action now */
    struct sigaction dfl;
    dfl.sa_handler = SIG_DFL;
    dfl.sa_flags = 0;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, NULL);
    raise(sig);
    return;
  }
  caught = sig;
  /* lua_sethook is the one Lua API function meant to be called from a signal handler (lua.c's
   * laction, luajit.c's the same): it only stores the hook and its mask in the state. */
  if (trapping && trap_state != NULL)
    lua_sethook(trap_state, raise_caught, LUA_MASKCOUNT, 1);  /* NOLINT(bugprone-signal-handler,cert-sig30-c) */
}

/* core.trap_signals(fn, ...): true and fn's results, or false and what it raised ({ signal = N }
 * when a signal stopped it). A signal that was ignored when the program started (nohup, a
 * background job) stays ignored; SIGINT, which the standalone interpreter handles by then, is
 * taken over. On return the three signals are blocked for good: report, then exit. */
static int l_trap_signals(lua_State *L) {
  struct sigaction act;
  sigset_t set;
  size_t i;
  int status;
  luaL_checktype(L, 1, LUA_TFUNCTION);
  act.sa_handler = on_signal;
  act.sa_flags = 0;  /* no SA_RESTART: poll(2) returns EINTR, so the waiting thread wakes */
  sigemptyset(&set);
  for (i = 0; i < NTRAPPED; i++) sigaddset(&set, trapped[i]);
  act.sa_mask = set;
  trap_state = L;
  trapping = 1;
  for (i = 0; i < NTRAPPED; i++) {
    struct sigaction old;
    if (sigaction(trapped[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN) continue;
    if (sigaction(trapped[i], &act, NULL) != 0) {
      trapping = 0;
      return luaL_error(L, "sigaction failed");
    }
  }
  status = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
  sigprocmask(SIG_BLOCK, &set, NULL);
  trapping = 0;
  lua_sethook(L, NULL, 0, 0);  /* a hook set but not yet run */
  lua_pushboolean(L, status == 0);
  lua_insert(L, 1);
  return lua_gettop(L);
}

/* core.caught_signal(): the number and name ("SIGTERM") of the first signal caught, or nil. */
static int l_caught_signal(lua_State *L) {
  int sig = (int)caught;
  size_t i;
  if (sig == 0) return 0;
  lua_pushinteger(L, sig);
  for (i = 0; i < NTRAPPED; i++) {
    if (trapped[i] == sig) {
      lua_pushstring(L, trapped_names[i]);
      return 2;
    }
  }
  return 1;
}

void ds_signals_open(lua_State *L) {
  lua_pushcfunction(L, l_trap_signals);
  lua_setfield(L, -2, "trap_signals");
  lua_pushcfunction(L, l_caught_signal);
  lua_setfield(L, -2, "caught_signal");
}
