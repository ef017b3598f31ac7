/*
 * buffer.c -- the capped growable byte buffer (see buffer.h).
 *
 * Owns the buffer's memory and nothing else: no Lua, no libcurl.
 */
#include <string.h>

#include "buffer.h"

void ds_buffer_init(ds_buffer *b, size_t max, ds_alloc_fn alloc, void *ud) {
  b->data = NULL;
  b->len = b->cap = 0;
  b->max = max;
  b->alloc = alloc;
  b->ud = ud;
}

int ds_buffer_append(ds_buffer *b, const void *p, size_t n) {
  if (n == 0) return DS_BUF_OK;
  if (n > b->max || b->len > b->max - n) return DS_BUF_TOO_LARGE;
  if (b->len + n > b->cap) {
    size_t need = b->len + n;
    size_t cap = b->cap ? b->cap : 256;
    char *data;
    while (cap < need) {
      if (cap > b->max / 2) { cap = b->max; break; }
      cap *= 2;
    }
    if (cap > b->max) cap = b->max;
    if (cap < need) cap = need;
    data = (char *)b->alloc(b->ud, b->data, b->cap, cap);
    if (data == NULL) return DS_BUF_NOMEM;
    b->data = data;
    b->cap = cap;
  }
  memcpy(b->data + b->len, p, n);
  b->len += n;
  return DS_BUF_OK;
}

void ds_buffer_free(ds_buffer *b) {
  if (b->data != NULL) b->alloc(b->ud, b->data, b->cap, 0);
  b->data = NULL;
  b->len = b->cap = 0;
}
