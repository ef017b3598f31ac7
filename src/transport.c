/*
 * transport.c -- the "dashscope.Transport" userdata (see transport.h).
 *
 * Owns the multi handle, the in-flight list, the anchor table that keeps
 * in-flight requests alive, and the stats. Never runs Lua code while libcurl
 * is on the stack: perform() only collects finished transfers and wait() only
 * polls, so nothing can raise through libcurl.
 */
#include <limits.h>
#include <string.h>

#include <curl/curl.h>
#include <lua.h>
#include <lauxlib.h>

#include "compat.h"
#include "request.h"
#include "transport.h"

/* Idle connections the multi may keep for reuse. libcurl's default, 4 per
 * easy handle currently added, shrinks as a burst drains and so closes the
 * connections of one wave of requests just before the next wave needs them. */
#define DS_IDLE_CONNECTIONS 64L

static ds_transport *check_open(lua_State *L) {
  ds_transport *t = (ds_transport *)luaL_checkudata(L, 1, DS_TRANSPORT_MT);
  if (t->multi == NULL) luaL_error(L, "attempt to use a closed " DS_TRANSPORT_MT);
  return t;
}

/* anchor[r] = value on top (pops it): the transport's userdata is at tidx. */
static void anchor(lua_State *L, int tidx, ds_request *r) {
  ds_getuservalue(L, tidx);
  if (!lua_istable(L, -1)) {  /* cannot happen: t_new sets it first */
    lua_pop(L, 2);
    return;
  }
  lua_pushlightuserdata(L, (void *)r);
  lua_pushvalue(L, -3);
  lua_rawset(L, -3);
  lua_pop(L, 2);
}

/* Takes r out of flight: its handle leaves the multi, its outcome is recorded
 * and the anchor that kept it alive is dropped (last: r may be garbage then). */
static void settle(lua_State *L, ds_transport *t, int tidx, ds_request *r,
                   CURLcode code, const char *reason) {
  curl_multi_remove_handle(t->multi, r->easy);
  if (r->prev) r->prev->next = r->next;
  else t->inflight = r->next;
  if (r->next) r->next->prev = r->prev;
  r->prev = r->next = NULL;
  r->transport = NULL;
  t->pending--;
  ds_request_settle(r, code, reason);
  t->connections += r->connects;
  lua_pushnil(L);
  anchor(L, tidx, r);
}

void ds_transport_add(lua_State *L, ds_transport *t, int tidx, ds_request *r) {
  CURLMcode mc;
  tidx = ds_absindex(L, tidx);
  lua_pushvalue(L, -1);
  anchor(L, tidx, r);
  mc = curl_multi_add_handle(t->multi, r->easy);
  if (mc != CURLM_OK) {
    lua_pushnil(L);
    anchor(L, tidx, r);
    luaL_error(L, "curl_multi_add_handle: %s", curl_multi_strerror(mc));
    return;
  }
  r->transport = t;
  r->prev = NULL;
  r->next = t->inflight;
  if (t->inflight) t->inflight->prev = r;
  t->inflight = r;
  r->state = DS_REQ_PENDING;
  t->pending++;
  t->started++;
}

void ds_transport_cancel(lua_State *L, ds_request *r, int ridx, const char *reason) {
  if (r->state != DS_REQ_PENDING || r->transport == NULL) return;
  ds_getuservalue(L, ridx);  /* the transport's userdata */
  settle(L, r->transport, lua_gettop(L), r, CURLE_ABORTED_BY_CALLBACK, reason);
  lua_pop(L, 1);
}

/* Shared by close, __gc and __close; idempotent. The userdata is at index 1. */
static int t_close(lua_State *L) {
  ds_transport *t = (ds_transport *)luaL_checkudata(L, 1, DS_TRANSPORT_MT);
  if (t->multi == NULL) return 0;
  while (t->inflight != NULL)
    settle(L, t, 1, t->inflight, CURLE_ABORTED_BY_CALLBACK, "transport closed");
  curl_multi_cleanup(t->multi);
  t->multi = NULL;
  return 0;
}

static int t_new(lua_State *L) {
  ds_transport *t = (ds_transport *)ds_newuserdata(L, sizeof *t);
  memset(t, 0, sizeof *t);
  ds_setmetatable(L, DS_TRANSPORT_MT);
  lua_newtable(L);  /* the anchor of in-flight requests */
  ds_setuservalue(L, -2);
  t->multi = curl_multi_init();
  if (t->multi == NULL) return luaL_error(L, "curl_multi_init failed");
  curl_multi_setopt(t->multi, CURLMOPT_MAXCONNECTS, DS_IDLE_CONNECTIONS);
  return 1;
}

static int t_request(lua_State *L) {
  ds_transport *t = check_open(L);
  return ds_request_new(L, t);
}

static int t_perform(lua_State *L) {
  ds_transport *t = check_open(L);
  int running = 0, left = 0;
  long ms = -1;
  CURLMsg *msg;
  CURLMcode mc = curl_multi_perform(t->multi, &running);
  if (mc != CURLM_OK)
    return luaL_error(L, "curl_multi_perform: %s", curl_multi_strerror(mc));
  while ((msg = curl_multi_info_read(t->multi, &left)) != NULL) {
    CURL *easy = msg->easy_handle;
    CURLcode code = msg->data.result;
    char *priv = NULL;
    ds_request *r;
    if (msg->msg != CURLMSG_DONE) continue;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
    r = (ds_request *)(void *)priv;
    if (r != NULL && r->easy == easy && r->transport == t)
      settle(L, t, 1, r, code, NULL);  /* msg is invalid from here on */
  }
  if (curl_multi_timeout(t->multi, &ms) != CURLM_OK) ms = -1;
  lua_pushinteger(L, t->pending);
  if (ms < 0) lua_pushnil(L);
  else lua_pushnumber(L, (lua_Number)ms / 1000.0);
  return 2;
}

/* Seconds (float) to whole milliseconds, rounded up so that a small positive
 * wait never becomes a busy 0 ms poll. */
static int to_ms(lua_State *L, int arg, lua_Number s) {
  lua_Number ms;
  int whole;
  luaL_argcheck(L, s >= 0, arg, "non-negative number of seconds expected");
  ms = s * 1000;
  if (ms >= (lua_Number)INT_MAX) return INT_MAX;
  whole = (int)ms;
  return (lua_Number)whole < ms ? whole + 1 : whole;
}

static int t_wait(lua_State *L) {
  ds_transport *t = check_open(L);
  int ms = to_ms(L, 2, luaL_checknumber(L, 2));
  CURLMcode mc = curl_multi_poll(t->multi, NULL, 0, ms, NULL);
  if (mc != CURLM_OK)
    return luaL_error(L, "curl_multi_poll: %s", curl_multi_strerror(mc));
  return 0;
}

static int t_pending(lua_State *L) {
  ds_transport *t = check_open(L);
  lua_pushinteger(L, t->pending);
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

static const luaL_Reg t_methods[] = {
  {"request", t_request},
  {"perform", t_perform},
  {"wait", t_wait},
  {"pending", t_pending},
  {"stats", t_stats},
  {"close", t_close},
  {NULL, NULL}
};

static const luaL_Reg t_meta[] = {
  {"__gc", t_close},
  {"__close", t_close},
  {"__tostring", t_tostring},
  {NULL, NULL}
};

void ds_transport_open(lua_State *L) {
  ds_class(L, DS_TRANSPORT_MT, t_meta, t_methods);
  lua_pushcfunction(L, t_new);
  lua_setfield(L, -2, "new_transport");
}
