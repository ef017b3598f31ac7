/*
 * transport.c -- the "dashscope.Transport" userdata (see transport.h).
 *
 * Owns the multi handle, the in-flight list, the anchor table that keeps
 * in-flight requests alive, the pool of idle easy handles, and the stats.
 * Drives libcurl only through curl_multi_socket_action: perform() and wait()
 * poll(2) the sockets that watch.c recorded, and an event loop may do the same
 * with sockets(), socket_action() and timer_action(). Never runs Lua code
 * while libcurl is on the stack: libcurl's callbacks only record (watch.c,
 * request.c), and finished transfers are collected after libcurl has
 * returned, so nothing can raise through libcurl.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <curl/curl.h>
#include <lua.h>
#include <lauxlib.h>

#include "class.h"
#include "clock.h"
#include "compat.h"
#include "scrub.h"
#include "transport.h"
#include "watch.h"

/* Connections open at once, over all hosts, unless new_transport is told otherwise. Requests over
 * the cap wait inside libcurl for a connection to come free. */
#define DS_MAX_CONNECTIONS 6L

/* Idle connections the multi may keep for reuse, at least: libcurl's default, 4 per easy handle
 * currently added, shrinks as a burst drains and so closes the connections of one wave of
 * requests just before the next wave needs them. */
#define DS_IDLE_CONNECTIONS 64L

static ds_transport *check_open(lua_State *L) {
  ds_transport *t = (ds_transport *)luaL_checkudata(L, 1, DS_TRANSPORT_MT);
  if (t->multi == NULL) luaL_error(L, "attempt to use a closed " DS_TRANSPORT_MT);
  return t;
}

/* anchor[f] = value on top (pops it): the transport's userdata is at tidx. */
static void anchor(lua_State *L, int tidx, ds_flight *f) {
  ds_getuservalue(L, tidx);
  if (!lua_istable(L, -1)) {  /* cannot happen: t_new sets it first */
    lua_pop(L, 2);
    return;
  }
  lua_pushlightuserdata(L, (void *)f);
  lua_pushvalue(L, -3);
  lua_rawset(L, -3);
  lua_pop(L, 2);
}

/* Once T:settled() has been called, appends f's request userdata (anchored, so alive) to the list
 * it returns next: the caller learns what finished without asking every request it has in flight. */
static void note_settled(lua_State *L, ds_transport *t, int tidx, ds_flight *f) {
  if (!t->collect_settled) return;
  ds_getuservalue(L, tidx);                  /* anchor */
  lua_getfield(L, -1, "settled");            /* anchor, list or nil */
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "settled");
  }
  lua_pushlightuserdata(L, (void *)f);
  lua_rawget(L, -3);                         /* anchor, list, request */
  lua_rawseti(L, -2, (int)ds_rawlen(L, -2) + 1);
  lua_pop(L, 2);
}

/* Takes f out of flight: its handle leaves the multi, its request records the
 * outcome, and the anchor that kept it alive is dropped (last: f may be garbage
 * then). Unless the transport is closing, f joins the list T:settled() returns. */
static void settle(lua_State *L, ds_transport *t, int tidx, ds_flight *f,
                   CURLcode code, const char *reason) {
  long connects = 0;
  curl_multi_remove_handle(t->multi, f->easy);
  if (f->prev) f->prev->next = f->next;
  else t->inflight = f->next;
  if (f->next) f->next->prev = f->prev;
  f->prev = f->next = NULL;
  f->transport = NULL;
  t->pending--;
  curl_easy_getinfo(f->easy, CURLINFO_NUM_CONNECTS, &connects);
  t->connections += connects;
  f->settle(f, code, reason);
  if (t->multi != NULL && !t->closing) note_settled(L, t, tidx, f);
  lua_pushnil(L);
  anchor(L, tidx, f);
}

void ds_transport_add(lua_State *L, ds_transport *t, int tidx, ds_flight *f) {
  CURLMcode mc;
  tidx = ds_absindex(L, tidx);
  lua_pushvalue(L, -1);
  anchor(L, tidx, f);
  mc = curl_multi_add_handle(t->multi, f->easy);
  if (mc != CURLM_OK) {
    lua_pushnil(L);
    anchor(L, tidx, f);
    luaL_error(L, "curl_multi_add_handle: %s", curl_multi_strerror(mc));
    return;
  }
  f->transport = t;
  f->prev = NULL;
  f->next = t->inflight;
  if (t->inflight) t->inflight->prev = f;
  t->inflight = f;
  t->pending++;
  t->started++;
}

void ds_transport_cancel(lua_State *L, ds_flight *f, int ridx, const char *reason) {
  if (f->transport == NULL) return;  /* not in flight */
  ds_getuservalue(L, ridx);  /* the transport's userdata */
  settle(L, f->transport, lua_gettop(L), f, CURLE_ABORTED_BY_CALLBACK, reason);
  lua_pop(L, 1);
}

CURL *ds_transport_handle(ds_transport *t) {
  if (t->nidle > 0) return t->idle[--t->nidle];
  return curl_easy_init();
}

void ds_transport_release(lua_State *L, int ridx, CURL *easy) {
  ds_transport *t;
  ds_getuservalue(L, ridx);  /* the transport's userdata: the request keeps it alive */
  t = (ds_transport *)ds_testudata(L, -1, DS_TRANSPORT_MT);
  lua_pop(L, 1);
  if (t != NULL && t->multi != NULL && t->nidle < DS_IDLE_HANDLES) {
    curl_easy_reset(easy);  /* drops every option: no pointer into the old request stays */
    t->idle[t->nidle++] = easy;
  } else {
    curl_easy_cleanup(easy);
  }
}

/* Overwrites, then frees, a string that held the key: no copy lingers in freed memory. */
static void wipe(char **s) {
  if (*s == NULL) return;
  memset(*s, 0, strlen(*s));
  free(*s);
  *s = NULL;
}

const char *ds_transport_credential(const ds_transport *t) {
  return t->credential;
}

/* T:set_credential(header, secret): the header line requests with credential = true carry, and
 * the secret T:scrub hides. Copied into C memory; the caller drops its Lua strings. */
static int t_set_credential(lua_State *L) {
  ds_transport *t = check_open(L);
  size_t hlen, slen;
  const char *header = luaL_checklstring(L, 2, &hlen);
  const char *secret = luaL_checklstring(L, 3, &slen);
  char *h, *k;
  luaL_argcheck(L, memchr(header, '\r', hlen) == NULL && memchr(header, '\n', hlen) == NULL &&
                strlen(header) == hlen, 2, "header must not contain CR, LF or NUL");
  luaL_argcheck(L, slen > 0 && strlen(secret) == slen, 3, "secret must be a non-empty string");
  h = (char *)malloc(hlen + 1);
  k = (char *)malloc(slen + 1);
  if (h == NULL || k == NULL) {
    free(h);
    free(k);
    return luaL_error(L, "not enough memory");
  }
  memcpy(h, header, hlen + 1);
  memcpy(k, secret, slen + 1);
  wipe(&t->credential);
  wipe(&t->secret);
  t->credential = h;
  t->secret = k;
  ds_scrub_remember(L, 1, &t->secret);  /* core.scrub hides it too, in every error and answer */
  return 0;
}

/* The first occurrence of needle (n bytes) in [p, end), or NULL. */
static const char *find(const char *p, const char *end, const char *needle, size_t n) {
  for (; (size_t)(end - p) >= n; p++)
    if (memcmp(p, needle, n) == 0) return p;
  return NULL;
}

/* T:scrub(text): text with every occurrence of the secret replaced by "<api-key>". */
static int t_scrub(lua_State *L) {
  ds_transport *t = (ds_transport *)luaL_checkudata(L, 1, DS_TRANSPORT_MT);
  size_t len, klen;
  const char *text = luaL_checklstring(L, 2, &len), *end = text + len, *p = text, *hit;
  luaL_Buffer b;
  lua_settop(L, 2);
  if (t->secret == NULL) return 1;
  klen = strlen(t->secret);
  luaL_buffinit(L, &b);
  while ((hit = find(p, end, t->secret, klen)) != NULL) {
    luaL_addlstring(&b, p, (size_t)(hit - p));
    luaL_addstring(&b, "<api-key>");
    p = hit + klen;
  }
  luaL_addlstring(&b, p, (size_t)(end - p));
  luaL_pushresult(&b);
  return 1;
}

/* Gives the memory freed back to the system where the C library can (glibc keeps freed pages of
 * its heap otherwise): after a large batch, the handles, buffers and the Lua objects of thousands
 * of calls and tasks (bench/README.md, the N10000 row). */
static void give_back_memory(void) {
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}

/* Shared by close and __close; idempotent. The userdata is at index 1. */
static int t_close(lua_State *L) {
  ds_transport *t = (ds_transport *)luaL_checkudata(L, 1, DS_TRANSPORT_MT);
  if (t->multi == NULL) return 0;
  t->closing = 1;
  while (t->inflight != NULL)
    settle(L, t, 1, t->inflight, CURLE_ABORTED_BY_CALLBACK, "transport closed");
  /* Every handle is out of the multi now; the pooled ones never were in it. Requests keep theirs
   * and, seeing multi NULL, clean them up themselves when they close. */
  curl_multi_cleanup(t->multi);  /* may still report sockets removed: the table lives on */
  t->multi = NULL;
  while (t->nidle > 0) curl_easy_cleanup(t->idle[--t->nidle]);
  ds_watch_free(&t->watch);
  wipe(&t->credential);
  wipe(&t->secret);
  give_back_memory();
  return 0;
}

/* __gc: closes, and gives memory back even when closed before: a collection finalizes the
 * transport after it has freed the dead objects of the same cycle (a client and its tasks). */
static int t_gc(lua_State *L) {
  ds_transport *t = (ds_transport *)luaL_checkudata(L, 1, DS_TRANSPORT_MT);
  if (t->multi != NULL) return t_close(L);
  give_back_memory();
  return 0;
}

/* opts.<name>: nil (dflt) or a whole number from 1 to INT_MAX; raises naming the field. */
static long opt_count(lua_State *L, const char *name, long dflt) {
  lua_Number n;
  long v = dflt;
  lua_getfield(L, 1, name);
  if (!lua_isnil(L, -1)) {
    n = lua_tonumber(L, -1);
    if (lua_type(L, -1) != LUA_TNUMBER || !(n >= 1 && n <= (lua_Number)INT_MAX) ||
        (lua_Number)(long)n != n)
      luaL_argerror(L, 1, lua_pushfstring(L, "field '%s' must be a positive integer", name));
    v = (long)n;
  }
  lua_pop(L, 1);
  return v;
}

/* core.new_transport([opts]): opts.max_connections, opts.max_host_connections. */
static int t_new(lua_State *L) {
  static const char *const known[] = {"max_connections", "max_host_connections", NULL};
  long max_total = DS_MAX_CONNECTIONS, max_host;
  void *aud;
  lua_Alloc alloc = lua_getallocf(L, &aud);
  ds_transport *t;
  CURLMcode mc;

  if (!lua_isnoneornil(L, 1)) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, 1) != 0) {
      int i;
      lua_pop(L, 1);
      for (i = 0; known[i] != NULL; i++)
        if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), known[i]) == 0) break;
      if (known[i] == NULL) {
        if (lua_type(L, -1) == LUA_TSTRING)
          luaL_argerror(L, 1, lua_pushfstring(L, "unknown field '%s'", lua_tostring(L, -1)));
        luaL_argerror(L, 1, "option names must be strings");
      }
    }
    max_total = opt_count(L, "max_connections", DS_MAX_CONNECTIONS);
    max_host = opt_count(L, "max_host_connections", max_total);
  } else {
    max_host = max_total;
  }
  lua_settop(L, 0);

  t = (ds_transport *)ds_newuserdata(L, sizeof *t);
  memset(t, 0, sizeof *t);
  ds_watch_init(&t->watch, alloc, aud);
  ds_setmetatable(L, DS_TRANSPORT_MT);
  lua_newtable(L);  /* the anchor of in-flight requests */
  ds_setuservalue(L, -2);
  t->multi = curl_multi_init();
  if (t->multi == NULL) return luaL_error(L, "curl_multi_init failed");
  mc = ds_watch_attach(&t->watch, t->multi);
  if (mc == CURLM_OK)
    mc = curl_multi_setopt(t->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, max_total);
  if (mc == CURLM_OK)
    mc = curl_multi_setopt(t->multi, CURLMOPT_MAX_HOST_CONNECTIONS, max_host);
  if (mc == CURLM_OK)
    mc = curl_multi_setopt(t->multi, CURLMOPT_MAXCONNECTS,
                           max_total > DS_IDLE_CONNECTIONS ? max_total : DS_IDLE_CONNECTIONS);
  if (mc != CURLM_OK) return luaL_error(L, "curl_multi_setopt: %s", curl_multi_strerror(mc));
  return 1;
}

/* T:request(spec): a request in flight on T. It is made by the constructor ds_transport_open was
 * given (request.c's), this method's upvalue, called in this frame so that its misuse errors name
 * T:request's arguments. */
static int t_request(lua_State *L) {
  lua_CFunction new_request = lua_tocfunction(L, lua_upvalueindex(1));
  check_open(L);
  return new_request(L);
}

/* One curl_multi_socket_action; raises (after libcurl has returned) when it failed. */
static void act(lua_State *L, ds_transport *t, curl_socket_t s, int mask) {
  int running = 0;
  CURLMcode mc = curl_multi_socket_action(t->multi, s, mask, &running);
  if (mc == CURLM_OK) return;
  if (t->watch.oom) {
    t->watch.oom = 0;
    luaL_error(L, "not enough memory");
  }
  luaL_error(L, "curl_multi_socket_action: %s", curl_multi_strerror(mc));
}

/* Fires libcurl's timer, and reads back the one it wants next. */
static void fire_timer(lua_State *L, ds_transport *t) {
  act(L, t, CURL_SOCKET_TIMEOUT, 0);
  ds_watch_sync_timer(&t->watch, t->multi);
}

/* Settles every finished transfer, then pushes running, timeout (seconds or nil): what perform,
 * socket_action and timer_action return. The transport's userdata is at index 1. */
static int finish(lua_State *L, ds_transport *t) {
  int left = 0;
  double due;
  CURLMsg *msg;
  while ((msg = curl_multi_info_read(t->multi, &left)) != NULL) {
    CURL *easy = msg->easy_handle;
    CURLcode code = msg->data.result;
    char *priv = NULL;
    ds_flight *f;
    if (msg->msg != CURLMSG_DONE) continue;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
    f = (ds_flight *)(void *)priv;
    if (f != NULL && f->easy == easy && f->transport == t)
      settle(L, t, 1, f, code, NULL);  /* msg is invalid from here on */
  }
  lua_pushinteger(L, t->pending);
  due = ds_watch_remaining(&t->watch);
  if (due < 0) lua_pushnil(L);
  else lua_pushnumber(L, (lua_Number)due);
  return 2;
}

static int poll_failed(lua_State *L) {
  return luaL_error(L, "poll: %s", strerror(errno));
}

/* T:perform(): never blocks. Acts on every watched socket that is ready now and on the timer if
 * it is due, then collects what finished. */
static int t_perform(lua_State *L) {
  ds_transport *t = check_open(L);
  ds_watch *w = &t->watch;
  size_t i;
  ds_watch_compact(w);
  if (w->live > 0) {
    /* Right after wait() the revents are its answer: acting on them saves a second poll per
     * wake-up. A socket they call ready that no longer is costs libcurl one EAGAIN, no more. */
    int n = w->fresh ? 1 : poll(w->fds, (nfds_t)w->slots, 0);
    if (n < 0 && errno != EINTR) return poll_failed(L);
    /* Slots stay put while libcurl runs (new ones are added with revents 0), so each ready
     * socket is seen once; w->slots and w->fds are read again after every action. */
    for (i = 0; n > 0 && i < w->slots; i++) {
      struct pollfd *p = &w->fds[i];
      int fd = p->fd, mask = 0;
      short rev = p->revents;
      if (fd < 0 || rev == 0) continue;
      p->revents = 0;
      if (rev & POLLNVAL) {  /* closed behind libcurl's back: nothing to watch any more */
        p->fd = -1;
        p->events = 0;
        w->live--;
        continue;
      }
      if (rev & (POLLIN | POLLHUP)) mask |= CURL_CSELECT_IN;
      if (rev & POLLOUT) mask |= CURL_CSELECT_OUT;
      if (rev & POLLERR) mask |= CURL_CSELECT_ERR;
      act(L, t, (curl_socket_t)fd, mask);
    }
  }
  w->fresh = 0;
  if (w->timer_set && ds_watch_remaining(w) <= 0) fire_timer(L, t);
  return finish(L, t);
}

/* Seconds (float) to whole milliseconds (ds_clock_ms: rounded up, capped). */
static int to_ms(lua_State *L, int arg, lua_Number s) {
  luaL_argcheck(L, s >= 0, arg, "non-negative number of seconds expected");
  return ds_clock_ms((double)s);
}

/* The optional extra descriptor of T:wait (arguments 3 and 4): 1 and *p set when both are given;
 * an fd with events nil is nothing to watch (a store's connection that wants nothing now). */
static int extra_fd(lua_State *L, struct pollfd *p) {
  static const char *const modes[] = {"r", "w", "rw", NULL};
  static const short events[] = {POLLIN, POLLOUT, POLLIN | POLLOUT};
  lua_Integer fd;
  if (lua_isnoneornil(L, 3) || lua_isnoneornil(L, 4)) return 0;
  fd = luaL_checkinteger(L, 3);
  luaL_argcheck(L, fd >= 0 && fd <= INT_MAX, 3, "file descriptor expected");
  p->fd = (int)fd;
  p->events = events[luaL_checkoption(L, 4, NULL, modes)];
  p->revents = 0;
  return 1;
}

/* poll(2) over the watched sockets and `extra`, for up to ms. The revents the sockets get are
 * copied back into the watch table (the extra fd's are not kept). */
static int poll_with(lua_State *L, ds_watch *w, const struct pollfd *extra, int ms) {
  struct pollfd local[16], *fds = local;
  size_t i, n = w->slots + 1;
  int rc;
  if (n > sizeof local / sizeof local[0])
    fds = (struct pollfd *)lua_newuserdata(L, n * sizeof *fds);  /* garbage once returned */
  for (i = 0; i < w->slots; i++) fds[i] = w->fds[i];
  fds[w->slots] = *extra;
  rc = poll(fds, (nfds_t)n, ms);
  for (i = 0; rc >= 0 && i < w->slots; i++) w->fds[i].revents = fds[i].revents;
  return rc;
}

/* T:wait(seconds [, fd, events]): blocks until a watched socket is ready, libcurl's timer is due,
 * or the time is up (a signal may end it sooner). With nothing watched it only sleeps. Acts on
 * nothing: the next perform acts on what this poll saw. With fd and events ("r", "w" or "rw"),
 * that descriptor too is polled (a quota store's connection: dashscope.hiredis's conn:fd() and
 * conn:events()), so the wait ends when the store answers; whether it is ready is not kept or
 * acted on here: its owner polls it for itself. */
static int t_wait(lua_State *L) {
  ds_transport *t = check_open(L);
  ds_watch *w = &t->watch;
  int ms = to_ms(L, 2, luaL_checknumber(L, 2)), rc;
  double left = ds_watch_remaining(w);
  struct pollfd extra;
  int has_extra = extra_fd(L, &extra);
  if (left >= 0) {
    int timer_ms = to_ms(L, 2, left);
    if (timer_ms < ms) ms = timer_ms;
  }
  ds_watch_compact(w);
  if (has_extra) rc = poll_with(L, w, &extra, ms);
  else rc = poll(w->live > 0 ? w->fds : NULL, (nfds_t)w->slots, ms);
  if (rc < 0) {
    if (errno != EINTR) return poll_failed(L);
    return 0;  /* interrupted: revents say nothing, perform polls for itself */
  }
  w->fresh = w->live > 0;  /* the next perform acts on these revents */
  return 0;
}

/* An optional boolean argument: absent and nil are false. */
static int opt_flag(lua_State *L, int arg) {
  if (lua_isnoneornil(L, arg)) return 0;
  luaL_checktype(L, arg, LUA_TBOOLEAN);
  return lua_toboolean(L, arg);
}

/* T:socket_action(fd, readable, writable): for an event loop that watched fd. */
static int t_socket_action(lua_State *L) {
  ds_transport *t = check_open(L);
  lua_Integer fd = luaL_checkinteger(L, 2);
  int mask = 0;
  luaL_argcheck(L, fd >= 0 && fd <= INT_MAX, 2, "file descriptor expected");
  if (opt_flag(L, 3)) mask |= CURL_CSELECT_IN;
  if (opt_flag(L, 4)) mask |= CURL_CSELECT_OUT;
  lua_settop(L, 1);
  act(L, t, (curl_socket_t)fd, mask);
  return finish(L, t);
}

/* T:timer_action(): for an event loop whose timer for T:timeout() went off. */
static int t_timer_action(lua_State *L) {
  ds_transport *t = check_open(L);
  lua_settop(L, 1);
  fire_timer(L, t);
  return finish(L, t);
}

/* T:timeout(): seconds until libcurl's timer is due (0 when overdue), or nil. */
static int t_timeout(lua_State *L) {
  ds_transport *t = check_open(L);
  double left = ds_watch_remaining(&t->watch);
  if (left < 0) lua_pushnil(L);
  else lua_pushnumber(L, (lua_Number)left);
  return 1;
}

/* T:sockets(): { [fd] = "r" | "w" | "rw" }, what libcurl wants watched now. */
static int t_sockets(lua_State *L) {
  ds_transport *t = check_open(L);
  ds_watch *w = &t->watch;
  size_t i;
  lua_createtable(L, 0, (int)w->live);
  for (i = 0; i < w->slots; i++) {
    if (w->fds[i].fd < 0) continue;
    lua_pushinteger(L, (lua_Integer)w->fds[i].fd);
    lua_pushstring(L, ds_watch_mode(w->fds[i].events));
    lua_rawset(L, -3);
  }
  return 1;
}

static int t_pending(lua_State *L) {
  ds_transport *t = check_open(L);
  lua_pushinteger(L, t->pending);
  return 1;
}

/* T:settled(): the requests settled (done, failed or cancelled) since the last call, in order, or
 * nil when none. The first call starts the list: a transport nobody asks keeps none. */
static int t_settled(lua_State *L) {
  ds_transport *t = check_open(L);
  lua_settop(L, 1);
  t->collect_settled = 1;
  ds_getuservalue(L, 1);
  lua_getfield(L, -1, "settled");
  lua_pushnil(L);
  lua_setfield(L, -3, "settled");
  return 1;
}

static int t_stats(lua_State *L) {
  ds_transport *t = check_open(L);
  lua_createtable(L, 0, 2);
  lua_pushinteger(L, t->started);
  lua_setfield(L, -2, "requests");
  lua_pushinteger(L, t->connections);
  lua_setfield(L, -2, "connections");
  return 1;
}

static int t_tostring(lua_State *L) {
  ds_transport *t = (ds_transport *)luaL_checkudata(L, 1, DS_TRANSPORT_MT);
  if (t->multi == NULL) lua_pushliteral(L, DS_TRANSPORT_MT " (closed)");
  else lua_pushfstring(L, DS_TRANSPORT_MT " (%d in flight)", (int)t->pending);
  return 1;
}

/* And "request" (t_request, with its constructor: ds_transport_open). */
static const luaL_Reg t_methods[] = {
  {"perform", t_perform},
  {"wait", t_wait},
  {"sockets", t_sockets},
  {"socket_action", t_socket_action},
  {"timer_action", t_timer_action},
  {"timeout", t_timeout},
  {"pending", t_pending},
  {"settled", t_settled},
  {"set_credential", t_set_credential},
  {"scrub", t_scrub},
  {"stats", t_stats},
  {"close", t_close},
  {NULL, NULL}
};

static const luaL_Reg t_meta[] = {
  {"__gc", t_gc},
  {"__close", t_close},
  {"__tostring", t_tostring},
  {NULL, NULL}
};

void ds_transport_open(lua_State *L, lua_CFunction new_request) {
  ds_class(L, DS_TRANSPORT_MT, t_meta, t_methods);
  luaL_getmetatable(L, DS_TRANSPORT_MT);
  lua_getfield(L, -1, "__index");
  lua_pushcfunction(L, new_request);
  lua_pushcclosure(L, t_request, 1);
  lua_setfield(L, -2, "request");
  lua_pop(L, 2);
  lua_pushcfunction(L, t_new);
  lua_setfield(L, -2, "new_transport");
}
