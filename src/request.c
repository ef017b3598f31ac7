/*
 * request.c -- the "dashscope.Request" userdata (see request.h).
 *
 * Owns reading and checking a request spec (read_spec), then applying it: the
 * easy handle (from its transport's pool, see transport.h) and its options; the
 * libcurl write/header callbacks (pure C: they record, never raise); turning a
 * finished transfer into a response table or an error table (its "outcome");
 * and closing. Does not touch the multi handle or the pool: going in and out of
 * flight (through the request's ds_flight), and handing out and taking back
 * handles, is transport.c's job, which calls back only through flight.settle.
 * Never puts header values (API keys) in any message.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <lua.h>
#include <lauxlib.h>

#include "buffer.h"
#include "class.h"
#include "clock.h"
#include "compat.h"
#include "form.h"
#include "headers.h"
#include "request.h"
#include "transport.h"

#define DS_DEFAULT_MAX_BODY  ((size_t)4 * 1024 * 1024)
#define DS_MAX_HEADER_BYTES  ((size_t)64 * 1024)
#define DS_MAX_BODY_LIMIT    9007199254740992.0  /* 2^53: exact in a double */

/* What a transfer came to (DS_OUTCOME_*), as the failure table's field "outcome" names it. */
static const char *const outcome_names[] = {
  "ok", "timeout", "resolve", "connect", "send", "recv", "too_large",
  "aborted", "other", "write", "read"
};

/* ---- validation: everything is checked before any libcurl handle exists */

/* Spec fields, read onto the stack at fixed indices by ds_request_new. */
enum {
  F_METHOD = 3, F_URL, F_HEADERS, F_BODY, F_TIMEOUT, F_CONNECT_TIMEOUT,
  F_MAX_BODY, F_USER_AGENT, F_FORM, F_OUTPUT, F_PROGRESS, F_CA_FILE, F_CA_PATH, F_CREDENTIAL,
  F_ONCE, F_MAX_OUTPUT, F_TRUNCATE, F_LAST = F_TRUNCATE
};
static const char *const field_names[] = {
  "method", "url", "headers", "body", "timeout", "connect_timeout",
  "max_body", "user_agent", "form", "output", "progress", "ca_file", "ca_path", "credential",
  "once", "max_output", "truncate"
};

static int field_error(lua_State *L, const char *field, const char *what) {
  return luaL_argerror(L, 2, lua_pushfstring(L, "field '%s' %s", field, what));
}

static int has_ctl(const char *s, size_t len) {
  size_t i;
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x20 || c == 0x7f) return 1;
  }
  return 0;
}

static int has_crlfnul(const char *s, size_t len) {
  size_t i;
  for (i = 0; i < len; i++)
    if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0') return 1;
  return 0;
}

static int is_tchar(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* A string field without control characters, or nil when optional. */
static const char *check_text(lua_State *L, int idx, int optional, size_t *len) {
  const char *name = field_names[idx - F_METHOD];
  const char *s;
  if (optional && lua_isnil(L, idx)) return NULL;
  if (lua_type(L, idx) != LUA_TSTRING) field_error(L, name, "must be a string");
  s = lua_tolstring(L, idx, len);
  if (*len == 0) field_error(L, name, "must not be empty");
  if (has_ctl(s, *len)) field_error(L, name, "must not contain control characters");
  return s;
}

/* Seconds (nil or a non-negative number) to milliseconds, rounded up; 0 is none. */
static long check_ms(lua_State *L, int idx) {
  const char *name = field_names[idx - F_METHOD];
  lua_Number s;
  if (lua_isnil(L, idx)) return 0;
  if (lua_type(L, idx) != LUA_TNUMBER) field_error(L, name, "must be a number of seconds");
  s = lua_tonumber(L, idx);
  if (!(s >= 0)) field_error(L, name, "must be a non-negative number of seconds");
  return ds_clock_ms((double)s);
}

static size_t check_max_body(lua_State *L) {
  lua_Number n;
  if (lua_isnil(L, F_MAX_BODY)) return DS_DEFAULT_MAX_BODY;
  if (lua_type(L, F_MAX_BODY) != LUA_TNUMBER)
    field_error(L, "max_body", "must be a number of bytes");
  n = lua_tonumber(L, F_MAX_BODY);
  if (!(n >= 0 && n <= DS_MAX_BODY_LIMIT) || (lua_Number)(long long)n != n ||
      (unsigned long long)n > (unsigned long long)((size_t)-1 / 2))
    field_error(L, "max_body", "must be a non-negative integer");
  return (size_t)n;
}

/* A whole number from 0 to max at idx (nil: -1), else raises naming the field. */
static lua_Number check_whole(lua_State *L, int idx, lua_Number max) {
  lua_Number n;
  if (lua_isnil(L, idx)) return -1;
  n = lua_tonumber(L, idx);
  if (lua_type(L, idx) != LUA_TNUMBER || !(n >= 0 && n <= max) || (lua_Number)(long long)n != n)
    field_error(L, field_names[idx - F_METHOD], "must be a non-negative integer");
  return n;
}

/* "Name: value": the name must be a token, the separator ": ", and nothing
 * may contain CR, LF or NUL. Messages name the header, never its value. */
static void check_header(lua_State *L, lua_Integer i, const char *h, size_t len) {
  const char *colon = (const char *)memchr(h, ':', len);
  const char *p;
  if (colon == NULL || colon == h) {  /* luaL_argerror does not return; the analyzer cannot know */
    luaL_argerror(L, 2, lua_pushfstring(L, "headers[%d] must be \"Name: value\"", (int)i));
    return;
  }
  for (p = h; p < colon; p++)
    if (!is_tchar((unsigned char)*p))
      luaL_argerror(L, 2, lua_pushfstring(L, "headers[%d] has an invalid name", (int)i));
  lua_pushlstring(L, h, (size_t)(colon - h));
  if ((size_t)(colon - h) + 1 >= len || colon[1] != ' ')
    luaL_argerror(L, 2, lua_pushfstring(L, "header '%s' must be \"Name: value\"",
                                        lua_tostring(L, -1)));
  if (has_crlfnul(colon, len - (size_t)(colon - h)))
    luaL_argerror(L, 2, lua_pushfstring(L, "header '%s' contains CR, LF or NUL",
                                        lua_tostring(L, -1)));
  lua_pop(L, 1);
}

static int strncasecmp_ascii(const char *a, const char *b, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
    if (x >= 'A' && x <= 'Z') x = (unsigned char)(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = (unsigned char)(y - 'A' + 'a');
    if (x != y) return x - y;
  }
  return 0;
}

/* Validates the headers array; *has_type tells whether it sets Content-Type. */
static lua_Integer check_headers(lua_State *L, int *has_type) {
  lua_Integer i, n;
  *has_type = 0;
  if (lua_isnil(L, F_HEADERS)) return 0;
  if (!lua_istable(L, F_HEADERS)) field_error(L, "headers", "must be an array of strings");
  n = (lua_Integer)ds_rawlen(L, F_HEADERS);
  for (i = 1; i <= n; i++) {
    size_t len;
    const char *h;
    lua_rawgeti(L, F_HEADERS, (int)i);
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_argerror(L, 2, lua_pushfstring(L, "headers[%d] must be a string", (int)i));
    h = lua_tolstring(L, -1, &len);
    check_header(L, i, h, len);
    if (len >= 13 && strncasecmp_ascii(h, "content-type:", 13) == 0) *has_type = 1;
    lua_pop(L, 1);  /* the table still holds the string */
  }
  return n;
}

/* ---- libcurl callbacks: C only, record and refuse, never raise */

/* Appends to one of r's buffers; over its cap (or out of memory) records why and returns 0, which
 * libcurl takes as an error and so aborts the transfer. */
static size_t keep(ds_request *r, ds_buffer *b, int too_large, const char *p, size_t len) {
  int rc = ds_buffer_append(b, p, len);
  if (rc == DS_BUF_OK) return len;
  r->refused = rc == DS_BUF_TOO_LARGE ? too_large : DS_REFUSED_NOMEM;
  return 0;
}

/* Writes all of p to the output descriptor (a pipe may take it in parts, or be non-blocking);
 * over max_output, or on any write error (ENOSPC, EIO, EFBIG, EPIPE), records why and returns 0:
 * libcurl then ends the transfer. */
static size_t put(ds_request *r, const char *p, size_t len) {
  size_t done = 0;
  if (r->max_out > 0 && (curl_off_t)len > r->max_out - r->out_bytes) {
    r->refused = DS_REFUSED_OUTPUT;
    return 0;
  }
  while (done < len) {
    ssize_t w = write(r->out_fd, p + done, len - done);
    if (w > 0) {
      done += (size_t)w;
    } else if (w < 0 && errno == EINTR) {
      continue;
    } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      struct pollfd pfd;
      pfd.fd = r->out_fd;
      pfd.events = POLLOUT;
      pfd.revents = 0;
      (void)poll(&pfd, 1, 1000);
    } else {
      r->out_errno = w < 0 ? errno : EIO;
      r->refused = DS_REFUSED_WRITE;
      return 0;
    }
  }
  r->out_bytes += (curl_off_t)len;
  return len;
}

/* With an output file, a 2xx body goes there and anything else (an error page) to the capped
 * buffer, so that a failure's body never lands in the user's file. */
static size_t on_body(char *p, size_t size, size_t n, void *ud) {
  ds_request *r = (ds_request *)ud;
  if (r->out_fd >= 0 && r->sink == DS_SINK_UNDECIDED) {
    long status = 0;
    curl_easy_getinfo(r->flight.easy, CURLINFO_RESPONSE_CODE, &status);
    r->sink = status >= 200 && status < 300 ? DS_SINK_FILE : DS_SINK_BUFFER;
  }
  if (r->sink == DS_SINK_FILE) return put(r, p, size * n);
  return keep(r, &r->body, DS_REFUSED_BODY, p, size * n);
}

/* The body of a `once` request, handed out as libcurl reads it. */
static size_t on_read(char *p, size_t size, size_t n, void *ud) {
  ds_request *r = (ds_request *)ud;
  size_t left = r->once_body.len - r->once_off, want = size * n;
  if (want > left) want = left;
  if (want > 0) memcpy(p, r->once_body.data + r->once_off, want);
  r->once_off += want;
  return want;
}

/* libcurl rewinds a body to send it again: when a reused connection dies before any answer, it
 * resends the request on a new one, by itself. For a request that creates something (a billed
 * submit) the first copy may have been received, so a rewind after the first byte went out is
 * refused and the transfer fails instead (the caller reports "may or may not exist"). */
static int on_seek(void *ud, curl_off_t offset, int origin) {
  ds_request *r = (ds_request *)ud;
  if (origin != SEEK_SET || offset != 0) return CURL_SEEKFUNC_CANTSEEK;
  if (r->once_off > 0) {
    r->refused = DS_REFUSED_RESEND;
    return CURL_SEEKFUNC_FAIL;
  }
  return CURL_SEEKFUNC_OK;
}

static int on_progress(void *ud, curl_off_t dl_total, curl_off_t dl_now, curl_off_t ul_total,
                       curl_off_t ul_now) {
  ds_request *r = (ds_request *)ud;
  r->dl_total = dl_total;
  r->dl_now = dl_now;
  r->ul_total = ul_total;
  r->ul_now = ul_now;
  return 0;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud) {
  ds_request *r = (ds_request *)ud;
  return keep(r, &r->head, DS_REFUSED_HEADERS, p, size * n);
}

/* ---- construction */

static void settle(ds_flight *f, CURLcode code, const char *reason);  /* completion, below */

/* where = "GET scheme://host/path" without userinfo, query or fragment,
 * cut with "..." when long: safe to print, and enough to recognise. */
static void where_add(ds_request *r, size_t *n, const char *s, const char *e, int *cut) {
  size_t room = sizeof r->where - 4;  /* "..." and the NUL */
  for (; s < e && !*cut; s++) {
    if (*n >= room) *cut = 1;
    else r->where[(*n)++] = *s;
  }
}

static void set_where(ds_request *r, const char *url, size_t len) {
  const char *m = r->post ? "POST " : "GET ";
  const char *end = url + len, *p = url, *q;
  size_t n = 0;
  int cut = 0;
  where_add(r, &n, m, m + strlen(m), &cut);
  for (q = url; q + 3 <= end; q++)
    if (q[0] == ':' && q[1] == '/' && q[2] == '/') break;
  if (q + 3 <= end) {  /* scheme://[userinfo@]host... */
    const char *host = q + 3, *a;
    where_add(r, &n, url, host, &cut);
    p = host;
    for (a = host; a < end && *a != '/' && *a != '?' && *a != '#'; a++)
      if (*a == '@') p = a + 1;
  }
  for (q = p; q < end && *q != '?' && *q != '#'; q++) {}
  where_add(r, &n, p, q, &cut);
  if (cut || q < end) {
    memcpy(r->where + n, "...", 3);
    n += 3;
  }
  r->where[n] = '\0';
}

static int setopt_failed(lua_State *L, const char *opt, CURLcode rc) {
  return luaL_error(L, "curl_easy_setopt(%s): %s", opt, curl_easy_strerror(rc));
}

#define SETOPT(opt, val)                                          \
  do {                                                            \
    CURLcode rc_ = curl_easy_setopt(r->flight.easy, opt, val);    \
    if (rc_ != CURLE_OK) return setopt_failed(L, #opt, rc_);      \
  } while (0)

/* The options every request sets the same way. A handle comes in curl_easy_reset state (new or
 * pooled), which keeps none of them, so they are set for every request, here. Returns 0 or raises. */
static int set_common(lua_State *L, ds_request *r) {
  SETOPT(CURLOPT_ERRORBUFFER, r->errbuf);
  SETOPT(CURLOPT_PRIVATE, (char *)&r->flight);  /* what the transport finds it by */
  SETOPT(CURLOPT_NOSIGNAL, 1L);
  SETOPT(CURLOPT_FOLLOWLOCATION, 0L);  /* a redirect never takes the Authorization elsewhere */
  SETOPT(CURLOPT_SSL_VERIFYPEER, 1L);   /* libcurl's defaults, stated: there is no way to turn */
  SETOPT(CURLOPT_SSL_VERIFYHOST, 2L);   /* TLS verification off */
  SETOPT(CURLOPT_TCP_KEEPALIVE, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
  SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
#else
  SETOPT(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  SETOPT(CURLOPT_WRITEFUNCTION, on_body);
  SETOPT(CURLOPT_WRITEDATA, (void *)r);
  SETOPT(CURLOPT_HEADERFUNCTION, on_header);
  SETOPT(CURLOPT_HEADERDATA, (void *)r);
  return 0;
}

/* A request spec, read and checked (read_spec): everything ds_request_new needs, in C. The strings
 * point into the spec's values, which stay on the stack at their F_* slots until the request is
 * built; the headers and the form are read from there again (their count and rule are checked). */
typedef struct {
  int post;                         /* method: 1 POST, 0 GET */
  const char *url, *body, *agent, *ca_file, *ca_path;  /* all but url: NULL when not given */
  size_t url_len, body_len;
  size_t max_body;                  /* cap on a body kept in memory */
  long timeout_ms, connect_ms;      /* 0: none */
  lua_Integer nheaders;             /* headers[1..nheaders], checked */
  int has_type;                     /* one of them sets Content-Type */
  int form;                         /* a form was given (checked) */
  lua_Number output, max_output;    /* a descriptor to write a 2xx body to, and its cap: -1 none */
  int progress, credential, once, truncate;
} ds_spec;

static int check_method(lua_State *L) {
  static const char *const methods[] = {"GET", "POST", NULL};
  int post;
  if (lua_type(L, F_METHOD) != LUA_TSTRING)
    field_error(L, "method", "must be \"GET\" or \"POST\"");
  for (post = 0; methods[post] != NULL; post++)
    if (strcmp(lua_tostring(L, F_METHOD), methods[post]) == 0) break;
  if (methods[post] == NULL) field_error(L, "method", "must be \"GET\" or \"POST\"");
  return post;
}

/* Reads the spec (arg 2) onto the stack at F_METHOD..F_LAST and checks it into *s, raising the
 * misuse message of the first wrong field. Touches nothing else: no handle exists yet. */
static void read_spec(lua_State *L, ds_spec *s) {
  size_t ca_len = 0, agent_len = 0;
  int idx;
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  luaL_checkstack(L, F_LAST + 8, "too many nested calls");
  for (idx = F_METHOD; idx <= F_LAST; idx++)
    lua_getfield(L, 2, field_names[idx - F_METHOD]);
  memset(s, 0, sizeof *s);
  s->post = check_method(L);
  s->url = check_text(L, F_URL, 0, &s->url_len);
  s->nheaders = check_headers(L, &s->has_type);
  if (!lua_isnil(L, F_BODY)) {
    if (lua_type(L, F_BODY) != LUA_TSTRING) field_error(L, "body", "must be a string");
    if (!s->post) field_error(L, "body", "is only allowed with POST");
    s->body = lua_tolstring(L, F_BODY, &s->body_len);
  }
  s->timeout_ms = check_ms(L, F_TIMEOUT);
  s->connect_ms = check_ms(L, F_CONNECT_TIMEOUT);
  s->max_body = check_max_body(L);
  s->agent = check_text(L, F_USER_AGENT, 1, &agent_len);
  if (ds_form_check(L, F_FORM) > 0 && (!s->post || s->body != NULL))
    field_error(L, "form", "needs POST and no body");
  s->form = !lua_isnil(L, F_FORM);
  s->output = check_whole(L, F_OUTPUT, 1048576);  /* a descriptor, dup'ed when applied */
  s->max_output = check_whole(L, F_MAX_OUTPUT, DS_MAX_BODY_LIMIT);
  s->ca_file = check_text(L, F_CA_FILE, 1, &ca_len);
  s->ca_path = check_text(L, F_CA_PATH, 1, &ca_len);
  if (!lua_isnil(L, F_PROGRESS) && lua_type(L, F_PROGRESS) != LUA_TBOOLEAN)
    field_error(L, "progress", "must be a boolean");
  s->progress = lua_toboolean(L, F_PROGRESS);
  s->credential = lua_toboolean(L, F_CREDENTIAL);
  s->once = lua_toboolean(L, F_ONCE);
  s->truncate = lua_toboolean(L, F_TRUNCATE);
}

/* Safe state first: pushes the request userdata, zeroed, with its metatable and its transport
 * (arg 1) as user value, before any libcurl handle or descriptor is taken. */
static ds_request *push_request(lua_State *L, const ds_spec *s) {
  void *aud;
  lua_Alloc alloc = lua_getallocf(L, &aud);
  ds_request *r = (ds_request *)ds_newuserdata(L, sizeof *r);
  memset(r, 0, sizeof *r);
  r->out_fd = -1;
  r->state = DS_REQ_NEW;
  r->post = s->post;
  ds_buffer_init(&r->body, s->max_body, alloc, aud);
  ds_buffer_init(&r->head, DS_MAX_HEADER_BYTES, alloc, aud);
  ds_buffer_init(&r->once_body, s->body_len, alloc, aud);
  r->flight.settle = settle;
  ds_setmetatable(L, DS_REQUEST_MT);
  lua_pushvalue(L, 1);
  ds_setuservalue(L, -2);  /* the request keeps its transport alive */
  set_where(r, s->url, s->url_len);
  r->progress = s->progress;
  return r;
}

/* Its own descriptor: the caller's may be closed while this one runs. */
static void open_output(lua_State *L, ds_request *r, const ds_spec *s) {
  if (s->output < 0) return;
  r->out_fd = fcntl((int)s->output, F_DUPFD_CLOEXEC, 3);
  if (r->out_fd < 0) luaL_error(L, "cannot use the output descriptor: %s", strerror(errno));
  r->max_out = s->max_output > 0 ? (curl_off_t)s->max_output : 0;
  if (s->truncate) {  /* a retry starts the file over (shared offset: both) */
    struct stat st;
    if (fstat(r->out_fd, &st) == 0 && S_ISREG(st.st_mode) &&
        (ftruncate(r->out_fd, 0) != 0 || lseek(r->out_fd, 0, SEEK_SET) < 0))
      luaL_error(L, "cannot empty the output file: %s", strerror(errno));
  }
}

static void add_header(lua_State *L, ds_request *r, const char *line) {
  struct curl_slist *l = curl_slist_append(r->send_headers, line);
  if (l == NULL) luaL_error(L, "not enough memory");
  r->send_headers = l;
}

/* The header list: the caller's, the key's line (from C memory: Lua never held it), and what
 * stops libcurl from adding headers of its own. */
static void build_headers(lua_State *L, ds_request *r, ds_transport *t, const ds_spec *s) {
  lua_Integer i;
  for (i = 1; i <= s->nheaders; i++) {
    lua_rawgeti(L, F_HEADERS, (int)i);
    add_header(L, r, lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  if (s->credential) {
    const char *cred = ds_transport_credential(t);
    if (cred == NULL) luaL_error(L, "credential = true, but the transport has none");
    add_header(L, r, cred);
  }
  if (s->form) add_header(L, r, "Expect:");  /* a large part would make libcurl wait for 100-continue */
  else if (s->post && !s->has_type)          /* else libcurl claims application/x-www-form-urlencoded */
    add_header(L, r, "Content-Type:");
}

/* The method and body: GET, a form, a `once` body (read by on_read, never resent: on_seek), a
 * body libcurl copies, or an empty POST. Returns 0 or raises. */
static int set_body(lua_State *L, ds_request *r, const ds_spec *s) {
  if (!s->post) {
    SETOPT(CURLOPT_HTTPGET, 1L);
  } else if (s->form) {
    CURLcode rc = ds_form_build(L, F_FORM, r->flight.easy, &r->form, &r->in_errno);
    if (rc != CURLE_OK) return setopt_failed(L, "CURLOPT_MIMEPOST", rc);
    SETOPT(CURLOPT_MIMEPOST, r->form);
  } else if (s->body != NULL && s->once) {
    if (ds_buffer_append(&r->once_body, s->body, s->body_len) != DS_BUF_OK)
      return luaL_error(L, "not enough memory");
    SETOPT(CURLOPT_POST, 1L);
    SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)s->body_len);
    SETOPT(CURLOPT_READFUNCTION, on_read);
    SETOPT(CURLOPT_READDATA, (void *)r);
    SETOPT(CURLOPT_SEEKFUNCTION, on_seek);
    SETOPT(CURLOPT_SEEKDATA, (void *)r);
  } else if (s->body != NULL) {
    SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)s->body_len);
    SETOPT(CURLOPT_COPYPOSTFIELDS, s->body);  /* copied: the Lua string may go */
  } else {
    SETOPT(CURLOPT_POSTFIELDSIZE, 0L);     /* sends Content-Length: 0 */
    SETOPT(CURLOPT_POSTFIELDS, "");
  }
  return 0;
}

/* Applies the spec to r's handle (taken from t's pool here: r owns it from then on, r_close gives
 * it back). Returns 0 or raises. */
static int apply_spec(lua_State *L, ds_request *r, ds_transport *t, const ds_spec *s) {
  r->flight.easy = ds_transport_handle(t);
  if (r->flight.easy == NULL) return luaL_error(L, "curl_easy_init failed");
  set_common(L, r);
  SETOPT(CURLOPT_URL, s->url);
  if (r->send_headers != NULL) SETOPT(CURLOPT_HTTPHEADER, r->send_headers);
  if (s->agent != NULL) SETOPT(CURLOPT_USERAGENT, s->agent);
  if (s->ca_file != NULL) SETOPT(CURLOPT_CAINFO, s->ca_file);  /* a private CA: verified, not skipped */
  if (s->ca_path != NULL) SETOPT(CURLOPT_CAPATH, s->ca_path);
  if (s->timeout_ms > 0) SETOPT(CURLOPT_TIMEOUT_MS, s->timeout_ms);
  if (s->connect_ms > 0) SETOPT(CURLOPT_CONNECTTIMEOUT_MS, s->connect_ms);
  /* The cap is for bodies kept in memory; a body written to a file (a video) has max_output. A
   * Content-Length over either ends the transfer before a byte is kept. */
  if (s->max_body > 0 && r->out_fd < 0) SETOPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)s->max_body);
  if (r->max_out > 0) SETOPT(CURLOPT_MAXFILESIZE_LARGE, r->max_out);
  if (r->progress) {
    SETOPT(CURLOPT_XFERINFOFUNCTION, on_progress);
    SETOPT(CURLOPT_XFERINFODATA, (void *)r);
    SETOPT(CURLOPT_NOPROGRESS, 0L);
  }
  return set_body(L, r, s);
}

/* T:request(spec): reads and checks the whole spec first, then builds the request in safe state,
 * takes its resources, sets its options, and puts it in flight. */
int ds_request_new(lua_State *L) {
  ds_transport *t = (ds_transport *)luaL_checkudata(L, 1, DS_TRANSPORT_MT);
  ds_spec spec;
  ds_request *r;
  read_spec(L, &spec);
  r = push_request(L, &spec);
  open_output(L, r, &spec);
  build_headers(L, r, t, &spec);
  apply_spec(L, r, t, &spec);
  ds_transport_add(L, t, 1, &r->flight);
  r->state = DS_REQ_PENDING;
  return 1;
}

/* ---- completion */

/* The outcome of a transfer libcurl ended with code (not aborted by us); clears r->sent when the
 * request cannot have gone out. */
static int outcome_of(ds_request *r, CURLcode code, long request_size) {
  switch (code) {
    case CURLE_OK: return DS_OUTCOME_OK;
    case CURLE_OPERATION_TIMEDOUT:
      r->sent = request_size > 0;  /* 0: timed out before the request went out */
      return DS_OUTCOME_TIMEOUT;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: r->sent = 0; return DS_OUTCOME_RESOLVE;
    case CURLE_COULDNT_CONNECT: r->sent = 0; return DS_OUTCOME_CONNECT;
    case CURLE_SEND_ERROR: return DS_OUTCOME_SEND;
    case CURLE_SEND_FAIL_REWIND:  /* once: the answer never came, and it is not sent twice */
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE: return DS_OUTCOME_RECV;
    case CURLE_FILESIZE_EXCEEDED: return DS_OUTCOME_TOO_LARGE;  /* Content-Length over the cap */
    case CURLE_WRITE_ERROR:
      return r->refused == DS_REFUSED_BODY || r->refused == DS_REFUSED_HEADERS ||
             r->refused == DS_REFUSED_OUTPUT ? DS_OUTCOME_TOO_LARGE
             : r->refused == DS_REFUSED_WRITE ? DS_OUTCOME_WRITE : DS_OUTCOME_OTHER;
    default: return DS_OUTCOME_OTHER;
  }
}

/* The request a flight is part of. */
static ds_request *of_flight(ds_flight *f) {
  return (ds_request *)(void *)((char *)f - offsetof(ds_request, flight));
}

/* flight.settle: records the outcome of the transfer (reason non-NULL: aborted) and marks it
 * done. The transport calls it once the handle is out of the multi. */
static void settle(ds_flight *f, CURLcode code, const char *reason) {
  ds_request *r = of_flight(f);
  long status = 0, connects = 0, request_size = 0;
  double total = 0, pretransfer = 0;
  curl_easy_getinfo(r->flight.easy, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_getinfo(r->flight.easy, CURLINFO_NUM_CONNECTS, &connects);
  curl_easy_getinfo(r->flight.easy, CURLINFO_TOTAL_TIME, &total);
  curl_easy_getinfo(r->flight.easy, CURLINFO_PRETRANSFER_TIME, &pretransfer);
  curl_easy_getinfo(r->flight.easy, CURLINFO_REQUEST_SIZE, &request_size);
  r->code = code;
  r->reason = reason;
  r->status = status;
  r->connects = connects;
  r->total_time = total;
  r->pretransfer_time = pretransfer;
  r->sent = 1;
  r->outcome = reason != NULL ? DS_OUTCOME_ABORTED : outcome_of(r, code, request_size);
  /* A `once` body (a submit's) that on_read never handed out never left: whatever failed, the
   * request cannot have been acted on (a server cannot act on a POST without its body). */
  if (r->once_body.len > 0 && r->once_off == 0 && r->outcome != DS_OUTCOME_OK) r->sent = 0;
  if (r->in_errno != 0 && reason == NULL) {  /* the form's file failed its check: not the network */
    r->refused = DS_REFUSED_READ;
    r->outcome = DS_OUTCOME_READ;
  }
  if (r->out_fd >= 0) {
    if (close(r->out_fd) != 0 && errno != EINTR && r->outcome == DS_OUTCOME_OK) {  /* a late write error */
      r->out_errno = errno;
      r->refused = DS_REFUSED_WRITE;
      r->code = CURLE_WRITE_ERROR;
      r->outcome = DS_OUTCOME_WRITE;
    }
    r->out_fd = -1;
  }
  r->state = DS_REQ_DONE;
  ds_buffer_free(&r->once_body);  /* sent, or never to be sent again */
  if (r->outcome != DS_OUTCOME_OK) {  /* a failed response is never shown: free it now */
    ds_buffer_free(&r->body);
    ds_buffer_free(&r->head);
  }
}

/* ---- methods */

static ds_request *check_open(lua_State *L) {
  ds_request *r = (ds_request *)luaL_checkudata(L, 1, DS_REQUEST_MT);
  if (r->state == DS_REQ_CLOSED) luaL_error(L, "attempt to use a closed " DS_REQUEST_MT);
  return r;
}

static void push_headers(lua_State *L, ds_request *r) {
  ds_hdr_iter it;
  const char *name, *value;
  size_t nlen, vlen;
  lua_newtable(L);
  ds_headers_begin(&it, r->head.data, r->head.len);
  while (ds_headers_next(&it, &name, &nlen, &value, &vlen)) {
    lua_pushlstring(L, name, nlen);
    lua_pushvalue(L, -1);
    lua_rawget(L, -3);
    if (lua_isnil(L, -1)) {  /* first of that name */
      lua_pop(L, 1);
      lua_pushlstring(L, value, vlen);
    } else {                 /* repeated: joined with ", " (RFC 9110, 5.3) */
      lua_pushliteral(L, ", ");
      lua_pushlstring(L, value, vlen);
      lua_concat(L, 3);
    }
    lua_rawset(L, -3);
  }
}

static void push_response(lua_State *L, ds_request *r) {
  lua_createtable(L, 0, 7);
  lua_pushinteger(L, (lua_Integer)r->status);
  lua_setfield(L, -2, "status");
  push_headers(L, r);
  lua_setfield(L, -2, "headers");
  lua_pushlstring(L, r->body.data ? r->body.data : "", r->body.len);
  lua_setfield(L, -2, "body");
  lua_pushnumber(L, (lua_Number)r->total_time);
  lua_setfield(L, -2, "time");
  lua_pushboolean(L, r->connects > 0);
  lua_setfield(L, -2, "new_connection");
  lua_pushnumber(L, (lua_Number)r->pretransfer_time);
  lua_setfield(L, -2, "pretransfer");
  lua_pushinteger(L, (lua_Integer)r->out_bytes);
  lua_setfield(L, -2, "written");
}

/* Why libcurl's write callbacks refused the transfer, in words, into detail (n bytes); the
 * library's error buffer when nothing was refused. */
static void describe_refusal(const ds_request *r, char *detail, size_t n) {
  switch (r->refused) {
    case DS_REFUSED_BODY:
      snprintf(detail, n, "response body larger than max_body (%lu bytes)", (unsigned long)r->body.max);
      break;
    case DS_REFUSED_HEADERS:
      snprintf(detail, n, "response headers larger than %lu bytes", (unsigned long)r->head.max);
      break;
    case DS_REFUSED_NOMEM: snprintf(detail, n, "not enough memory for the response"); break;
    case DS_REFUSED_RESEND:
      snprintf(detail, n, "the connection closed before an answer; the request is not sent twice");
      break;
    case DS_REFUSED_WRITE:
      snprintf(detail, n, "writing the output file failed: %s", strerror(r->out_errno));
      break;
    case DS_REFUSED_OUTPUT:
      snprintf(detail, n, "the body is larger than max_output (%lld bytes)", (long long)r->max_out);
      break;
    case DS_REFUSED_READ:
      if (r->in_errno < 0) snprintf(detail, n, "the file to upload changed after it was checked");
      else snprintf(detail, n, "the file to upload could not be read: %s", strerror(r->in_errno));
      break;
    default: snprintf(detail, n, "%s", r->errbuf);
  }
}

/* The failure's message: the reason it was aborted, else libcurl's words and the detail. */
static void push_message(lua_State *L, const ds_request *r) {
  char detail[CURL_ERROR_SIZE + 64];
  size_t n;
  if (r->outcome == DS_OUTCOME_ABORTED) {
    lua_pushstring(L, r->reason);
    return;
  }
  describe_refusal(r, detail, sizeof detail);
  n = strlen(detail);
  while (n > 0 && (detail[n - 1] == '\n' || detail[n - 1] == '\r' || detail[n - 1] == ' '))
    detail[--n] = '\0';
  if (n > 0) lua_pushfstring(L, "%s: %s", curl_easy_strerror(r->code), detail);
  else lua_pushstring(L, curl_easy_strerror(r->code));
}

static void push_error(lua_State *L, ds_request *r) {
  lua_createtable(L, 0, 6);
  lua_pushstring(L, outcome_names[r->outcome]);
  lua_setfield(L, -2, "outcome");
  push_message(L, r);
  lua_setfield(L, -2, "message");
  lua_pushinteger(L, (lua_Integer)r->code);
  lua_setfield(L, -2, "curl_code");
  lua_pushboolean(L, r->sent);
  lua_setfield(L, -2, "sent");
  lua_pushinteger(L, (lua_Integer)r->out_bytes);
  lua_setfield(L, -2, "written");
}

static int r_done(lua_State *L) {
  lua_pushboolean(L, check_open(L)->state == DS_REQ_DONE);
  return 1;
}

static int r_response(lua_State *L) {
  ds_request *r = check_open(L);
  lua_pushnil(L);
  if (r->state != DS_REQ_DONE) return 1;
  if (r->outcome == DS_OUTCOME_OK) {
    lua_pop(L, 1);
    push_response(L, r);
    return 1;
  }
  push_error(L, r);
  return 2;
}

/* Pushes a byte count, or nil when libcurl does not know it (yet). */
static void push_count(lua_State *L, curl_off_t n, int known) {
  if (known) lua_pushinteger(L, (lua_Integer)n);
  else lua_pushnil(L);
}

/* R:progress(): bytes received, bytes expected (nil: unknown), bytes sent, bytes to send (nil:
 * unknown). Counted only for a request made with progress = true. */
static int r_progress(lua_State *L) {
  ds_request *r = check_open(L);
  push_count(L, r->dl_now, 1);
  push_count(L, r->dl_total, r->dl_total > 0);
  push_count(L, r->ul_now, 1);
  push_count(L, r->ul_total, r->ul_total > 0);
  return 4;
}

static int r_cancel(lua_State *L) {
  ds_request *r = (ds_request *)luaL_checkudata(L, 1, DS_REQUEST_MT);
  ds_transport_cancel(L, &r->flight, 1, "request cancelled");
  return 0;
}

/* Shared by close, __gc and __close; idempotent. */
static int r_close(lua_State *L) {
  ds_request *r = (ds_request *)luaL_checkudata(L, 1, DS_REQUEST_MT);
  if (r->state == DS_REQ_CLOSED) return 0;
  ds_transport_cancel(L, &r->flight, 1, "request closed");  /* only if in flight */
  if (r->flight.easy != NULL) ds_transport_release(L, 1, r->flight.easy);  /* to the pool, or cleaned up */
  r->flight.easy = NULL;
  curl_slist_free_all(r->send_headers);
  r->send_headers = NULL;
  curl_mime_free(r->form);  /* after the handle: reset or cleaned up, it no longer points here */
  r->form = NULL;
  if (r->out_fd >= 0) close(r->out_fd);  /* never settled: the caller removes the partial file */
  r->out_fd = -1;
  ds_buffer_free(&r->body);
  ds_buffer_free(&r->head);
  ds_buffer_free(&r->once_body);
  r->state = DS_REQ_CLOSED;
  return 0;
}

static int r_tostring(lua_State *L) {
  ds_request *r = (ds_request *)luaL_checkudata(L, 1, DS_REQUEST_MT);
  switch (r->state) {
    case DS_REQ_CLOSED: lua_pushliteral(L, DS_REQUEST_MT " (closed)"); break;
    case DS_REQ_DONE:
      if (r->outcome == DS_OUTCOME_OK)
        lua_pushfstring(L, DS_REQUEST_MT " (%s, done %d)", r->where, (int)r->status);
      else
        lua_pushfstring(L, DS_REQUEST_MT " (%s, failed %s)", r->where, outcome_names[r->outcome]);
      break;
    default: lua_pushfstring(L, DS_REQUEST_MT " (%s, pending)", r->where); break;
  }
  return 1;
}

static const luaL_Reg r_methods[] = {
  {"done", r_done},
  {"response", r_response},
  {"progress", r_progress},
  {"cancel", r_cancel},
  {"close", r_close},
  {NULL, NULL}
};

static const luaL_Reg r_meta[] = {
  {"__gc", r_close},
  {"__close", r_close},
  {"__tostring", r_tostring},
  {NULL, NULL}
};

void ds_request_open(lua_State *L) {
  ds_class(L, DS_REQUEST_MT, r_meta, r_methods);
}
