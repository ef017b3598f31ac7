/*
 * watch.h -- what libcurl asks its host to watch: the sockets (each with the
 * readiness it waits for) and the one timer. Filled by libcurl's socket and
 * timer callbacks, read by transport.c to poll, and by an event loop through
 * T:sockets() / T:timeout().
 *
 * Owns the socket table's memory (taken from the Lua state's allocator) and
 * the two libcurl callbacks, which are pure C: they record, never call Lua,
 * never raise. Does not drive libcurl (curl_multi_socket_action is
 * transport.c's job).
 */
#ifndef DS_WATCH_H
#define DS_WATCH_H

#include <poll.h>
#include <stddef.h>

#include <curl/curl.h>
#include <lua.h>

#pragma GCC visibility push(hidden)  /* internal to the module: core.h says why */

typedef struct ds_watch {
  /* poll(2)'s own array, so wait() hands it over as it is. A slot whose fd is
   * -1 is free (poll skips it); slots never move while libcurl runs, only
   * ds_watch_compact (called between libcurl calls) moves them. */
  struct pollfd *fds;
  size_t slots;       /* slots in use, free ones included */
  size_t live;        /* sockets watched */
  size_t cap;         /* slots allocated */
  int timer_set;      /* 0: libcurl wants no timer */
  int oom;            /* the socket callback could not grow the table */
  int fresh;          /* revents hold a poll's answer not yet acted on (see T:wait) */
  double timer_due;   /* ds_clock_now() seconds, when timer_set */
  lua_Alloc alloc;
  void *aud;
} ds_watch;

/* An empty table whose memory will come from alloc. */
void ds_watch_init(ds_watch *w, lua_Alloc alloc, void *aud);

/* Frees the table (and forgets every socket); w may be initialised again. */
void ds_watch_free(ds_watch *w);

/* Makes libcurl report to w through the two callbacks below. */
CURLMcode ds_watch_attach(ds_watch *w, CURLM *multi);

/* Drops the free slots. Only between libcurl calls: it moves slots. */
void ds_watch_compact(ds_watch *w);

/* Records the timer from libcurl's own answer (curl_multi_timeout). */
void ds_watch_sync_timer(ds_watch *w, CURLM *multi);

/* Seconds until the timer is due (0 when overdue), or -1 when there is none. */
double ds_watch_remaining(const ds_watch *w);

/* "r", "w" or "rw" for a slot's poll events. */
const char *ds_watch_mode(short events);

#pragma GCC visibility pop

#endif
