/*
 * transport.h -- the "dashscope.Transport" userdata: one libcurl multi handle
 * driven through its multi_socket interface, and the list of requests it has
 * in flight.
 *
 * The transport owns the multi handle, the in-flight list, the watch table
 * (watch.h: what libcurl wants polled) and the anchor table (its user value)
 * that keeps in-flight requests alive. It does not own requests' easy handles
 * or buffers (request.c does).
 *
 * Lifetimes: a request in flight is anchored in its transport's user value
 * (light userdata -> request), so it cannot be collected mid-transfer while
 * its transport lives; every request keeps its transport alive through its
 * own user value. If both become garbage together, finalizers run in either
 * order: the transport's detaches every request still in flight, a request's
 * takes itself out of a live transport, and one whose transport is gone just
 * frees itself.
 */
#ifndef DS_TRANSPORT_H
#define DS_TRANSPORT_H

#include <curl/curl.h>
#include <lua.h>

#include "core.h"
#include "watch.h"

struct ds_transport {
  CURLM *multi;             /* NULL once closed (or if never opened) */
  ds_watch watch;           /* sockets and timer, as libcurl's callbacks left them */
  ds_request *inflight;     /* requests in flight, doubly linked */
  lua_Integer pending;      /* length of that list */
  lua_Integer started;      /* requests ever added to the multi */
  lua_Integer connections;  /* sum of CURLINFO_NUM_CONNECTS over settled requests */
};

/* Registers the metatable and sets new_transport in the table on top. */
void ds_transport_open(lua_State *L);

/* Puts r in flight on t. The transport's userdata is at index tidx and the
 * request's on top of the stack. Raises on failure, leaving r unsent. */
void ds_transport_add(lua_State *L, ds_transport *t, int tidx, ds_request *r);

/* If r (its userdata at index ridx) is in flight, takes it out: done with
 * kind "aborted" and message reason. Otherwise does nothing. */
void ds_transport_cancel(lua_State *L, ds_request *r, int ridx, const char *reason);

#endif
