/*
 * transport.h -- the "dashscope.Transport" userdata: one libcurl multi handle
 * driven through its multi_socket interface, and the list of requests it has
 * in flight.
 *
 * The transport owns the multi handle, the in-flight list, the credential
 * (the API key lives here, in C, so no Lua value, debug hook or error can show
 * it once the client is made), the watch table
 * (watch.h: what libcurl wants polled), the anchor table (its user value)
 * that keeps in-flight requests alive, and a pool of idle easy handles. It
 * does not own requests' easy handles or buffers (request.c does): an easy
 * handle belongs to exactly one request or to the pool. It knows a request only
 * as the ds_flight below, which the request embeds: transport.c needs nothing of
 * request.c, and request.c builds on this file. A request takes one
 * from the pool (ds_transport_handle) and gives it back when it closes
 * (ds_transport_release); a handle in the pool is out of the multi and in
 * curl_easy_reset state, so nothing of its last request (options, header
 * list, buffers, CURLOPT_PRIVATE) is left in it.
 *
 * Lifetimes: a request in flight is anchored in its transport's user value
 * (its flight's address -> request), so it cannot be collected mid-transfer while
 * its transport lives; the same table's "settled" list holds the requests
 * settled since the last T:settled(), until that call hands it over; every request keeps its transport alive through its
 * own user value. If both become garbage together, finalizers run in either
 * order: the transport's detaches every request still in flight, a request's
 * takes itself out of a live transport, and one whose transport is gone just
 * frees itself. A handle goes back into the pool only while the transport is
 * open (multi non-NULL); closing the transport cleans up every pooled handle,
 * so a request finalized after its transport cleans up its own handle.
 */
#ifndef DS_TRANSPORT_H
#define DS_TRANSPORT_H

#include <curl/curl.h>
#include <lua.h>

#include "core.h"
#include "watch.h"

#pragma GCC visibility push(hidden)  /* internal to the module: core.h says why */

/* Idle easy handles a transport keeps for its next requests, at most. */
#define DS_IDLE_HANDLES 16

/* What a transport knows of a request: the part of it that goes in and out of flight, embedded in
 * the request's userdata (request.h). The request sets easy and settle before ds_transport_add and
 * points its handle's CURLOPT_PRIVATE here; the transport writes transport, prev and next, and
 * calls settle once, when the handle is out of the multi: done, failed, or cancelled. */
typedef struct ds_flight ds_flight;
struct ds_flight {
  CURL *easy;                 /* the request's handle (the request owns it) */
  /* Records how the transfer ended (reason non-NULL: aborted, with that message); runs no Lua. */
  void (*settle)(ds_flight *f, CURLcode code, const char *reason);
  ds_transport *transport;    /* non-NULL only while in flight */
  ds_flight *prev, *next;     /* the transport's in-flight list */
};

struct ds_transport {
  CURLM *multi;             /* NULL once closed (or if never opened) */
  ds_watch watch;           /* sockets and timer, as libcurl's callbacks left them */
  ds_flight *inflight;      /* requests in flight, doubly linked */
  lua_Integer pending;      /* length of that list */
  lua_Integer started;      /* requests ever added to the multi */
  lua_Integer connections;  /* sum of CURLINFO_NUM_CONNECTS over settled requests */
  CURL *idle[DS_IDLE_HANDLES];  /* pooled handles: out of the multi, reset; empty once closed */
  int nidle;                /* how many of idle[] are in use */
  int collect_settled;      /* T:settled() has been called: settle() lists what it settles */
  char *credential;         /* owned: "Authorization: Bearer ..." for requests with credential = true */
  char *secret;             /* owned: the key itself, for T:scrub; both wiped and freed on close */
  int closing;              /* t_close is settling what is left: nobody will read the list */
};

/* The transport's credential header line, or NULL when none was set. */
const char *ds_transport_credential(const ds_transport *t);

/* Registers the metatable and sets new_transport in the table on top.
 * new_request is what T:request(spec) runs, in T:request's own frame (the transport, checked open,
 * at 1, the spec at 2): request.c's ds_request_new, handed over by core.c. */
void ds_transport_open(lua_State *L, lua_CFunction new_request);

/* Puts f in flight on t. The transport's userdata is at index tidx and the
 * request's on top of the stack. Raises on failure, leaving f out of flight. */
void ds_transport_add(lua_State *L, ds_transport *t, int tidx, ds_flight *f);

/* If f (its request's userdata at index ridx) is in flight, takes it out: settled as aborted
 * with message reason. Otherwise does nothing. */
void ds_transport_cancel(lua_State *L, ds_flight *f, int ridx, const char *reason);

/* An easy handle for a new request on open transport t, in curl_easy_reset state: a pooled one,
 * else a new one. The caller owns it (and sets every option it needs). NULL when libcurl could not
 * make one. */
CURL *ds_transport_handle(ds_transport *t);

/* The request whose userdata is at ridx, out of flight, is done with its handle easy: it goes back
 * (reset) into the pool of the request's transport if that is open and has room, else is cleaned
 * up. Either way the caller no longer owns it. */
void ds_transport_release(lua_State *L, int ridx, CURL *easy);

#pragma GCC visibility pop

#endif
