/*
 * watch.c -- the sockets and the timer libcurl asks to have watched (see
 * watch.h). The callbacks run inside libcurl: they only record.
 */
#include <poll.h>
#include <string.h>

#include <curl/curl.h>
#include <lua.h>

#include "clock.h"
#include "watch.h"

void ds_watch_init(ds_watch *w, lua_Alloc alloc, void *aud) {
  memset(w, 0, sizeof *w);
  w->alloc = alloc;
  w->aud = aud;
}

void ds_watch_free(ds_watch *w) {
  if (w->fds != NULL) w->alloc(w->aud, w->fds, w->cap * sizeof *w->fds, 0);
  w->fds = NULL;
  w->slots = w->live = w->cap = 0;
  w->timer_set = 0;
}

void ds_watch_compact(ds_watch *w) {
  size_t i, n = 0;
  if (w->live == w->slots) return;
  for (i = 0; i < w->slots; i++)
    if (w->fds[i].fd >= 0) w->fds[n++] = w->fds[i];
  w->slots = n;
}

/* A slot for one more socket: a free one, else a new one at the end. NULL when out of memory. */
static struct pollfd *new_slot(ds_watch *w) {
  size_t i;
  if (w->live < w->slots) {
    for (i = 0; i < w->slots; i++)
      if (w->fds[i].fd < 0) return &w->fds[i];
  }
  if (w->slots == w->cap) {
    size_t cap = w->cap ? w->cap * 2 : 8;
    void *p;
    if (cap > (size_t)-1 / sizeof *w->fds) return NULL;
    p = w->alloc(w->aud, w->fds, w->cap * sizeof *w->fds, cap * sizeof *w->fds);
    if (p == NULL) return NULL;
    w->fds = (struct pollfd *)p;
    w->cap = cap;
  }
  return &w->fds[w->slots++];
}

static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp) {
  ds_watch *w = (ds_watch *)userp;
  struct pollfd *slot = NULL;
  size_t i;
  short events = 0;
  (void)easy;
  (void)socketp;
  for (i = 0; i < w->slots; i++)
    if (w->fds[i].fd == (int)s) {
      slot = &w->fds[i];
      break;
    }
  if (what & CURL_POLL_IN) events |= POLLIN;
  if (what & CURL_POLL_OUT) events |= POLLOUT;
  if (what == CURL_POLL_REMOVE || events == 0) {  /* CURL_POLL_NONE too: nothing to wait for */
    if (slot != NULL) {
      slot->fd = -1;
      slot->events = slot->revents = 0;
      w->live--;
    }
    return 0;
  }
  if (slot == NULL) {
    slot = new_slot(w);
    if (slot == NULL) {
      w->oom = 1;
      return -1;  /* libcurl fails the multi call; transport.c raises "not enough memory" */
    }
    slot->fd = (int)s;
    slot->revents = 0;
    w->live++;
  }
  slot->events = events;
  return 0;
}

static void set_timer(ds_watch *w, long ms) {
  if (ms < 0) {
    w->timer_set = 0;
  } else {
    w->timer_set = 1;
    w->timer_due = ds_clock_now() + (double)ms / 1000.0;
  }
}

static int on_timer(CURLM *multi, long ms, void *userp) {
  (void)multi;
  set_timer((ds_watch *)userp, ms);
  return 0;
}

CURLMcode ds_watch_attach(ds_watch *w, CURLM *multi) {
  CURLMcode mc;
  mc = curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  if (mc == CURLM_OK) mc = curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, (void *)w);
  if (mc == CURLM_OK) mc = curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, on_timer);
  if (mc == CURLM_OK) mc = curl_multi_setopt(multi, CURLMOPT_TIMERDATA, (void *)w);
  return mc;
}

/* libcurl tells its timer only when it changes. Our due time is a whole number of milliseconds
 * after the callback ran, so it may pass a little before libcurl's own; a timer fired that early
 * changes nothing inside libcurl, which then says nothing: ask it. */
void ds_watch_sync_timer(ds_watch *w, CURLM *multi) {
  long ms = -1;
  if (curl_multi_timeout(multi, &ms) == CURLM_OK) set_timer(w, ms);
}

double ds_watch_remaining(const ds_watch *w) {
  double left;
  if (!w->timer_set) return -1;
  left = w->timer_due - ds_clock_now();
  return left > 0 ? left : 0;
}

const char *ds_watch_mode(short events) {
  if ((events & POLLIN) && (events & POLLOUT)) return "rw";
  return (events & POLLIN) ? "r" : "w";
}
