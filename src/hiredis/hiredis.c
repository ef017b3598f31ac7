/*
 * hiredis.c -- luaopen_dashscope_hiredis, the one exported symbol: require "dashscope.hiredis", a
 * non-blocking Redis connection over hiredis's async API, for the shared quota store.
 *
 *   local conn, err = hiredis.connect(host, port)   -- starts a connect; nil, err when it cannot
 *   conn:send(argv) -> id                            -- queued in order; nil, err once closed
 *   conn:perform() -> { {id =, value =} | {id =, err =}, ... }   -- never blocks
 *   conn:fd(), conn:events(), conn:action(readable, writable), conn:state(), conn:close()
 *
 * Ids count from 1 per connection, and outcomes come in the order the commands were sent. A
 * value is an integer, a string (bulk or status), false (a nil reply) or a table (an array);
 * an error reply is the outcome's err, and a connection that closes gives every command still
 * waiting an err: why it closed (state() says it too), or "connection closed" after close().
 *
 * Owns the "dashscope.Redis" userdata: one redisAsyncContext (hiredis's: its socket, buffers and
 * callback list), the queue of the commands sent and their replies, and the reader functions
 * that bound what a server can make us allocate. A module of its own, beside dashscope.core, so
 * that the core loads where hiredis is not installed; it shares only class.c (how a type is made).
 *
 * Nothing here runs Lua code inside hiredis, nor raises through it: hiredis is entered only from
 * the methods below (and __gc), its callbacks and the event adapter only record into the
 * userdata, and replies become Lua values after hiredis has returned. The redisAsyncContext is
 * freed either by close() (redisAsyncFree) or by hiredis itself when the connection fails; in
 * both cases its last act is the adapter's cleanup, which forgets it (conn->ac = NULL), so no
 * pointer to a freed context is kept. The userdata outlives every context it made (__gc closes).
 *
 * hiredis 0.14 (Debian 12) aborts the process on some inputs (assertions) and on a few
 * allocation failures of its own (hi_malloc); the first are kept out (see refuse_command and
 * admit), the second cannot be.
 */
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <lua.h>
#include <lauxlib.h>

#include "../class.h"
#include "../compat.h"
#include "../core.h"

#define RD_MT "dashscope.Redis"

/* What a server may send for one reply before we close the connection with an error: a string
 * (bulk, status or error) of at most 1 MiB, an array of at most 4096 elements, 65536 objects in
 * all; hiredis itself refuses arrays nested deeper than 7. RD_MAX_UNREAD bounds the bytes of a
 * reply not yet complete (hiredis buffers until it is): 1 MiB and one read (hiredis reads 16 KiB
 * at a time), so a string that never ends, or a line without its CR LF, costs no more. */
#define RD_MAX_STRING   ((size_t)1024 * 1024)
#define RD_MAX_ELEMENTS 4096
#define RD_MAX_OBJECTS  65536
#define RD_MAX_UNREAD   (RD_MAX_STRING + (size_t)16 * 1024)
/* Reads per perform() or action(): a busy socket cannot keep one call going for ever. */
#define RD_MAX_READS    64
/* Arguments of one command. */
#define RD_MAX_ARGS     1024

/* What hiredis wants watched (conn->want), and what is ready. */
#define RD_READ  1
#define RD_WRITE 2

enum { RD_WAITING = 0, RD_REPLIED, RD_FAILED };

/* One command sent: its reply, once answered, moved out of hiredis's (on_reply). */
typedef struct rd_entry {
  redisReply reply;
  int state;
} rd_entry;

typedef struct rd_conn {
  redisAsyncContext *ac;           /* NULL once closed, by close() or by hiredis */
  redisReplyObjectFunctions fn;    /* the reader's functions: hiredis's own (base), bounded */
  redisReplyObjectFunctions base;
  rd_entry *q;          /* oldest first: [0, answered) answered, [answered, count) waiting */
  size_t count, answered, cap;
  lua_Integer first;    /* the id of q[0]; ids count from 1 */
  size_t objects;       /* objects made for the reply being read */
  int want;             /* RD_READ | RD_WRITE */
  int failed;           /* closed by a failure, told in why */
  char why[128];
  lua_Alloc alloc;
  void *aud;
} rd_conn;

DS_API int luaopen_dashscope_hiredis(lua_State *L);

static rd_conn *check_conn(lua_State *L) {
  return (rd_conn *)luaL_checkudata(L, 1, RD_MT);
}

/* The reason a connection closed, kept once: the first one is the cause. */
static void note_failure(rd_conn *c, const char *why) {
  if (c->failed) return;
  c->failed = 1;
  strncpy(c->why, why, sizeof c->why - 1);
  c->why[sizeof c->why - 1] = '\0';
}

/* ---- the event adapter: hiredis says what it wants watched; we only record it -------------- */

static void ev_add_read(void *p) { ((rd_conn *)p)->want |= RD_READ; }
static void ev_del_read(void *p) { ((rd_conn *)p)->want &= ~RD_READ; }
static void ev_add_write(void *p) { ((rd_conn *)p)->want |= RD_WRITE; }
static void ev_del_write(void *p) { ((rd_conn *)p)->want &= ~RD_WRITE; }

/* hiredis's last call before it frees the context (close() or a failure): the error, if any, is
 * still in it. From here on the userdata holds no pointer into hiredis. */
static void ev_cleanup(void *p) {
  rd_conn *c = (rd_conn *)p;
  if (c->ac != NULL && c->ac->c.err != 0) note_failure(c, c->ac->c.errstr);
  c->want = 0;
  c->ac = NULL;
}

/* A command's reply (NULL when the connection closed first). The reply is moved into the queue,
 * and hiredis, which frees it when this returns, frees an empty shell. */
static void on_reply(redisAsyncContext *ac, void *reply, void *privdata) {
  rd_conn *c = (rd_conn *)privdata;
  redisReply *r = (redisReply *)reply;
  rd_entry *e;
  (void)ac;
  if (c->answered >= c->count) return;  /* one callback per command sent: cannot happen */
  e = &c->q[c->answered++];
  if (r == NULL) {
    e->state = RD_FAILED;
    return;
  }
  e->reply = *r;
  e->state = RD_REPLIED;
  r->type = REDIS_REPLY_NIL;
  r->str = NULL;
  r->len = 0;
  r->element = NULL;
  r->elements = 0;
}

/* ---- the reader's functions: hiredis's own, within the limits above -------------------------- */

/* Refuses an object: hiredis takes the NULL as out of memory and closes the connection; the
 * reason we keep is ours. */
static void *refuse(rd_conn *c, const char *why) {
  note_failure(c, why);
  return NULL;
}

/* Counts an object of the reply being read; 0 when it passes a limit. A reply that no command
 * waits for would trip an assertion in hiredis (only an error is expected there: a server
 * refusing the connection), so it is refused first. */
static int admit(const redisReadTask *task, int type) {
  rd_conn *c = (rd_conn *)task->privdata;
  if (task->parent == NULL) {
    c->objects = 0;
    if (type != REDIS_REPLY_ERROR && (c->ac == NULL || c->ac->replies.head == NULL)) {
      refuse(c, "protocol error: a reply no command asked for");
      return 0;
    }
  }
  if (++c->objects > RD_MAX_OBJECTS) {
    refuse(c, "reply refused: more than 65536 values");
    return 0;
  }
  return 1;
}

static void *make_string(const redisReadTask *task, char *str, size_t len) {
  rd_conn *c = (rd_conn *)task->privdata;
  if (len > RD_MAX_STRING) return refuse(c, "reply refused: a string over 1 MiB");
  if (!admit(task, task->type)) return NULL;
  return c->base.createString(task, str, len);
}

static void *make_array(const redisReadTask *task, int elements) {
  rd_conn *c = (rd_conn *)task->privdata;
  if (elements > RD_MAX_ELEMENTS) return refuse(c, "reply refused: an array over 4096 elements");
  if (!admit(task, REDIS_REPLY_ARRAY)) return NULL;
  return c->base.createArray(task, elements);
}

static void *make_integer(const redisReadTask *task, long long value) {
  rd_conn *c = (rd_conn *)task->privdata;
  if (!admit(task, REDIS_REPLY_INTEGER)) return NULL;
  return c->base.createInteger(task, value);
}

static void *make_nil(const redisReadTask *task) {
  rd_conn *c = (rd_conn *)task->privdata;
  if (!admit(task, REDIS_REPLY_NIL)) return NULL;
  return c->base.createNil(task);
}

/* Makes ac report to c: the adapter, the reader's bounded functions, the reply callbacks' data. */
static void attach(rd_conn *c, redisAsyncContext *ac) {
  redisReader *r = ac->c.reader;
  c->ac = ac;
  ac->data = c;
  ac->ev.data = c;
  ac->ev.addRead = ev_add_read;
  ac->ev.delRead = ev_del_read;
  ac->ev.addWrite = ev_add_write;
  ac->ev.delWrite = ev_del_write;
  ac->ev.cleanup = ev_cleanup;
  c->base = *r->fn;
  c->fn = c->base;
  c->fn.createString = make_string;
  c->fn.createArray = make_array;
  c->fn.createInteger = make_integer;
  c->fn.createNil = make_nil;
  r->fn = &c->fn;  /* lives in the userdata, which outlives the context */
  r->privdata = c;
  c->want = RD_WRITE;  /* hiredis learns that the connect is done from the first write event */
}

/* ---- driving hiredis ------------------------------------------------------------------------- */

/* Closes the connection (every command still waiting gets an error reply). */
static void shut(rd_conn *c) {
  if (c->ac != NULL) redisAsyncFree(c->ac);  /* its cleanup forgets it */
  c->ac = NULL;
  c->want = 0;
}

/* hiredis 0.14 writes with write(2): a peer that has gone raises SIGPIPE, whose default action
 * ends the process. It is blocked around the write in this thread, and one the write raised is
 * taken back; one that was pending before is left as it was. */
static void write_quietly(redisAsyncContext *ac) {
  sigset_t pipe_set, old, pending;
  int was_pending;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  sigemptyset(&pending);
  sigpending(&pending);
  was_pending = sigismember(&pending, SIGPIPE) == 1;
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  redisAsyncHandleWrite(ac);
  if (!was_pending) {
    struct timespec zero = {0, 0};
    sigemptyset(&pending);
    sigpending(&pending);
    if (sigismember(&pending, SIGPIPE) == 1) sigtimedwait(&pipe_set, NULL, &zero);
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* What of `want` the socket is ready for now (poll with no wait). */
static int ready_now(rd_conn *c, int want) {
  struct pollfd p;
  int ready = 0;
  p.fd = c->ac->c.fd;
  p.events = (short)(((want & RD_READ) ? POLLIN : 0) | ((want & RD_WRITE) ? POLLOUT : 0));
  p.revents = 0;
  if (p.fd < 0 || want == 0 || poll(&p, 1, 0) <= 0) return 0;
  if (p.revents & POLLNVAL) {
    note_failure(c, "the connection's socket was closed");
    shut(c);
    return 0;
  }
  if (p.revents & (POLLIN | POLLHUP | POLLERR)) ready |= RD_READ;
  if (p.revents & (POLLOUT | POLLHUP | POLLERR)) ready |= RD_WRITE;
  return ready & want;
}

/* Closes a connection whose unfinished reply has grown past RD_MAX_UNREAD. */
static void bound_unread(rd_conn *c) {
  const redisReader *r;
  if (c->ac == NULL) return;
  r = c->ac->c.reader;
  if (r->buf != NULL && r->len - r->pos > RD_MAX_UNREAD) {
    note_failure(c, "reply refused: over 1 MiB");
    shut(c);
  }
}

/* Lets hiredis write and read what the socket is ready for now, of `allowed` (RD_READ and/or
 * RD_WRITE); replies land in the queue. Never waits. */
static void pump(rd_conn *c, int allowed) {
  int i, ready;
  for (i = 0; i < RD_MAX_READS && c->ac != NULL; i++) {
    ready = ready_now(c, c->want & allowed);
    if (ready == 0) break;
    if (ready & RD_WRITE) write_quietly(c->ac);
    if (c->ac != NULL && (ready & RD_READ)) {
      redisAsyncHandleRead(c->ac);
      bound_unread(c);
    }
  }
}

/* ---- replies to Lua -------------------------------------------------------------------------- */

/* A reply as a Lua value: integer (a float on 5.1 and LuaJIT: exact to 2^53), string (bulk or
 * status), false (nil), table (array); an error inside an array is { err = message }. hiredis
 * nests at most 7 arrays deep. */
static void push_reply(lua_State *L, const redisReply *r) {
  size_t i;
  luaL_checkstack(L, 3, "reply nested too deep");
  switch (r->type) {
  case REDIS_REPLY_INTEGER:
    lua_pushinteger(L, (lua_Integer)r->integer);
    break;
  case REDIS_REPLY_STRING:
  case REDIS_REPLY_STATUS:
    lua_pushlstring(L, r->str, r->len);
    break;
  case REDIS_REPLY_ERROR:
    lua_createtable(L, 0, 1);
    lua_pushlstring(L, r->str, r->len);
    lua_setfield(L, -2, "err");
    break;
  case REDIS_REPLY_ARRAY:
    lua_createtable(L, (int)r->elements, 0);
    for (i = 0; i < r->elements; i++) {
      if (r->element[i] == NULL) lua_pushboolean(L, 0);
      else push_reply(L, r->element[i]);
      lua_rawseti(L, -2, (int)i + 1);
    }
    break;
  default:
    lua_pushboolean(L, 0);
  }
}

/* Sets the outcome of e into the table on top: value, or err (a Redis error reply, or why the
 * connection closed before the reply came). */
static void set_outcome(lua_State *L, const rd_conn *c, const rd_entry *e) {
  if (e->state == RD_REPLIED && e->reply.type == REDIS_REPLY_ERROR) {
    lua_pushlstring(L, e->reply.str, e->reply.len);
    lua_setfield(L, -2, "err");
  } else if (e->state == RD_REPLIED) {
    push_reply(L, &e->reply);
    lua_setfield(L, -2, "value");
  } else {
    lua_pushstring(L, c->failed ? c->why : "connection closed");
    lua_setfield(L, -2, "err");
  }
}

/* Frees what a moved reply holds (hiredis allocated it with malloc: freeReplyObject's rule). */
static void release(rd_entry *e) {
  redisReply *r = &e->reply;
  size_t i;
  if (e->state == RD_REPLIED) {
    if (r->type == REDIS_REPLY_ARRAY) {
      for (i = 0; i < r->elements; i++) freeReplyObject(r->element[i]);
      free(r->element);
    } else if (r->type != REDIS_REPLY_INTEGER && r->type != REDIS_REPLY_NIL) {
      free(r->str);
    }
  }
  memset(e, 0, sizeof *e);
}

/* Pushes the answered commands' outcomes, oldest first, and drops them from the queue. Raises
 * only while building the table (out of memory): the queue is untouched then. */
static int collect(lua_State *L, rd_conn *c) {
  size_t i, n = c->answered;
  lua_createtable(L, (int)n, 0);
  for (i = 0; i < n; i++) {
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, c->first + (lua_Integer)i);
    lua_setfield(L, -2, "id");
    set_outcome(L, c, &c->q[i]);
    lua_rawseti(L, -2, (int)i + 1);
  }
  if (n == 0) return 1;
  for (i = 0; i < n; i++) release(&c->q[i]);
  memmove(c->q, c->q + n, (c->count - n) * sizeof *c->q);
  c->count -= n;
  c->answered = 0;
  c->first += (lua_Integer)n;
  return 1;
}

/* ---- the methods ----------------------------------------------------------------------------- */

/* nil, why: for a command sent on a closed connection. */
static int closed_result(lua_State *L, const rd_conn *c) {
  lua_pushnil(L);
  lua_pushstring(L, c->failed ? c->why : "connection closed");
  return 2;
}

/* Room in the queue for one more command (raises when out of memory, before anything is sent). */
static void reserve(lua_State *L, rd_conn *c) {
  size_t cap;
  void *p;
  if (c->count < c->cap) return;
  cap = c->cap ? c->cap * 2 : 8;
  if (cap > (size_t)-1 / sizeof *c->q) luaL_error(L, "not enough memory");
  p = c->alloc(c->aud, c->q, c->cap * sizeof *c->q, cap * sizeof *c->q);
  if (p == NULL) luaL_error(L, "not enough memory");
  c->q = (rd_entry *)p;
  c->cap = cap;
}

/* Commands after which the server answers other than once per command (hiredis 0.14 would take
 * its pushes for replies nobody asked for, or assert on them). */
static void refuse_command(lua_State *L, const char *name) {
  static const char *const refused[] = {
    "subscribe", "psubscribe", "ssubscribe", "unsubscribe", "punsubscribe", "sunsubscribe",
    "monitor", NULL
  };
  int i;
  for (i = 0; refused[i] != NULL; i++)
    if (strcasecmp(name, refused[i]) == 0)
      luaL_argerror(L, 2, lua_pushfstring(L, "argv[1]: %s is not supported (one reply per command)", name));
}

/* Leaves argv's n strings on the stack (numbers as strings), their pointers and lengths in
 * args/lens (room for n each). */
static void push_args(lua_State *L, int n, const char **args, size_t *lens) {
  int i;
  luaL_checkstack(L, n + 4, "too many arguments");
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, 2, i);
    if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
      luaL_argerror(L, 2, lua_pushfstring(L, "argv[%d]: string or number expected, got %s", i,
                                          luaL_typename(L, -1)));
    args[i - 1] = lua_tolstring(L, -1, &lens[i - 1]);
  }
}

/* conn:send(argv): queues a command; its id, or nil, err once the connection is closed. */
static int l_send(lua_State *L) {
  rd_conn *c = check_conn(L);
  const char **args;
  size_t *lens;
  int n;
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  n = (int)ds_rawlen(L, 2);
  luaL_argcheck(L, n >= 1 && n <= RD_MAX_ARGS, 2, "argv: 1 to 1024 arguments expected");
  args = (const char **)lua_newuserdata(L, (size_t)n * (sizeof *args + sizeof *lens));
  lens = (size_t *)(void *)(args + n);
  push_args(L, n, args, lens);
  refuse_command(L, args[0]);
  if (c->ac == NULL) return closed_result(L, c);
  reserve(L, c);
  if (redisAsyncCommandArgv(c->ac, on_reply, c, n, args, lens) != REDIS_OK)
    return luaL_error(L, "not enough memory");
  memset(&c->q[c->count], 0, sizeof c->q[c->count]);
  c->count++;
  lua_pushinteger(L, c->first + (lua_Integer)c->count - 1);
  return 1;
}

/* conn:perform(): acts on what the socket is ready for now; the answered commands' outcomes. */
static int l_perform(lua_State *L) {
  rd_conn *c = check_conn(L);
  lua_settop(L, 1);
  pump(c, RD_READ | RD_WRITE);
  return collect(L, c);
}

/* conn:action(readable, writable): an event loop saw the socket ready (each flag a boolean;
 * absent or nil: false); the next perform() returns what it brought. */
static int l_action(lua_State *L) {
  rd_conn *c = check_conn(L);
  int allowed = 0, arg;
  for (arg = 2; arg <= 3; arg++) {
    if (!lua_isnoneornil(L, arg)) luaL_checktype(L, arg, LUA_TBOOLEAN);
    if (lua_toboolean(L, arg)) allowed |= arg == 2 ? RD_READ : RD_WRITE;
  }
  pump(c, allowed);
  return 0;
}

static int l_fd(lua_State *L) {
  rd_conn *c = check_conn(L);
  if (c->ac == NULL || c->ac->c.fd < 0) lua_pushnil(L);
  else lua_pushinteger(L, (lua_Integer)c->ac->c.fd);
  return 1;
}

static int l_events(lua_State *L) {
  rd_conn *c = check_conn(L);
  static const char *const modes[] = { NULL, "r", "w", "rw" };
  int want = c->ac == NULL ? 0 : c->want & (RD_READ | RD_WRITE);
  if (want == 0) lua_pushnil(L);
  else lua_pushstring(L, modes[want]);
  return 1;
}

static const char *state_name(const rd_conn *c) {
  if (c->ac == NULL) return "closed";
  return (c->ac->c.flags & REDIS_CONNECTED) ? "connected" : "connecting";
}

/* conn:state(): "connecting", "connected" or "closed", and why when it closed by a failure. */
static int l_state(lua_State *L) {
  rd_conn *c = check_conn(L);
  lua_pushstring(L, state_name(c));
  if (c->ac != NULL || !c->failed) return 1;
  lua_pushstring(L, c->why);
  return 2;
}

/* conn:close(): idempotent; commands still waiting get an err outcome from the next perform(). */
static int l_close(lua_State *L) {
  rd_conn *c = check_conn(L);
  shut(c);
  lua_pushboolean(L, 1);
  return 1;
}

/* __gc: closes, then frees the queue (and the replies no perform() took). */
static int l_gc(lua_State *L) {
  rd_conn *c = check_conn(L);
  size_t i;
  shut(c);
  for (i = 0; i < c->count; i++) release(&c->q[i]);
  if (c->q != NULL) c->alloc(c->aud, c->q, c->cap * sizeof *c->q, 0);
  c->q = NULL;
  c->count = c->answered = c->cap = 0;
  return 0;
}

static int l_tostring(lua_State *L) {
  rd_conn *c = check_conn(L);
  if (c->ac == NULL && c->failed) lua_pushfstring(L, RD_MT " (closed: %s)", c->why);
  else lua_pushfstring(L, RD_MT " (%s, %d waiting)", state_name(c), (int)(c->count - c->answered));
  return 1;
}

/* hiredis.connect(host, port): a connection on its way (see state()), or nil, err when it
 * cannot even start (a host name that does not resolve: getaddrinfo, which may block, so give
 * an address). */
static int l_connect(lua_State *L) {
  size_t len;
  const char *host = luaL_checklstring(L, 1, &len);
  lua_Integer port = luaL_checkinteger(L, 2);
  redisAsyncContext *ac;
  rd_conn *c;
  luaL_argcheck(L, len > 0 && strlen(host) == len, 1, "host: a name or an address expected");
  luaL_argcheck(L, port >= 1 && port <= 65535, 2, "port: 1 to 65535 expected");
  c = (rd_conn *)lua_newuserdata(L, sizeof *c);
  memset(c, 0, sizeof *c);
  c->alloc = lua_getallocf(L, &c->aud);
  c->first = 1;
  ds_setmetatable(L, RD_MT);
  ac = redisAsyncConnect(host, (int)port);
  if (ac == NULL) return luaL_error(L, "not enough memory");
  if (ac->err != 0) {
    lua_pushnil(L);
    lua_pushstring(L, ac->errstr);
    redisAsyncFree(ac);
    return 2;
  }
  attach(c, ac);
  return 1;
}

static const luaL_Reg rd_methods[] = {
  {"send", l_send},
  {"perform", l_perform},
  {"action", l_action},
  {"fd", l_fd},
  {"events", l_events},
  {"state", l_state},
  {"close", l_close},
  {NULL, NULL}
};

static const luaL_Reg rd_meta[] = {
  {"__gc", l_gc},
  {"__close", l_close},
  {"__tostring", l_tostring},
  {NULL, NULL}
};

DS_API int luaopen_dashscope_hiredis(lua_State *L) {
  ds_class(L, RD_MT, rd_meta, rd_methods);
  lua_createtable(L, 0, 2);
  lua_pushcfunction(L, l_connect);
  lua_setfield(L, -2, "connect");
  lua_pushliteral(L, DS_VERSION);
  lua_setfield(L, -2, "VERSION");
  return 1;
}
