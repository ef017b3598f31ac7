/*
 * buffer.h -- a growable byte buffer with a hard cap. Pure C, no Lua.
 *
 * Memory comes from an allocator with lua_Alloc's signature (the request
 * passes its lua_State's allocator). Growing past the cap or running out of
 * memory returns an error code and leaves the buffer as it was; nothing here
 * ever exits or aborts.
 */
#ifndef DS_BUFFER_H
#define DS_BUFFER_H

#include <stddef.h>

#pragma GCC visibility push(hidden)  /* internal to the module: core.h says why */

/* Same shape as lua_Alloc: nsize == 0 frees, otherwise (re)allocates. */
typedef void *(*ds_alloc_fn)(void *ud, void *ptr, size_t osize, size_t nsize);

typedef struct ds_buffer {
  char *data;        /* NULL until the first byte */
  size_t len;        /* bytes held */
  size_t cap;        /* bytes allocated */
  size_t max;        /* hard cap on len */
  ds_alloc_fn alloc;
  void *ud;
} ds_buffer;

enum { DS_BUF_OK = 0, DS_BUF_TOO_LARGE = 1, DS_BUF_NOMEM = 2 };

void ds_buffer_init(ds_buffer *b, size_t max, ds_alloc_fn alloc, void *ud);
int ds_buffer_append(ds_buffer *b, const void *p, size_t n);
void ds_buffer_free(ds_buffer *b);

#pragma GCC visibility pop

#endif
