/*
 * headers.h -- parser for raw HTTP response header blocks, as libcurl's
 * HEADERFUNCTION delivers them (status line, "Name: value" lines, CRLF or LF).
 * Pure C: no Lua, no libcurl, no allocation, so it can be fuzzed on its own.
 *
 * Only the last block counts: every status line ("HTTP/...") starts a new
 * block and discards the earlier ones (100 Continue, redirects, proxy
 * CONNECT). Lines after the block's blank line (chunked trailers) belong to it.
 * Names are lower-cased in place; values are trimmed of spaces and tabs.
 * Lines without a colon, with an empty name, or folded (starting with space
 * or tab) are skipped.
 *
 *   ds_hdr_iter it;
 *   int status = ds_headers_begin(&it, buf, len);
 *   while (ds_headers_next(&it, &name, &nlen, &value, &vlen)) ...
 */
#ifndef DS_HEADERS_H
#define DS_HEADERS_H

#include <stddef.h>

#pragma GCC visibility push(hidden)  /* internal to the module: core.h says why */

typedef struct ds_hdr_iter {
  char *p;    /* next unread byte */
  char *end;  /* one past the last byte */
} ds_hdr_iter;

/* Positions it after the last status line of buf[0..len). Returns that
 * line's status code (100..999), or 0 when there is no status line or it has
 * no valid code. buf may be NULL when len is 0. */
int ds_headers_begin(ds_hdr_iter *it, char *buf, size_t len);

/* The next header of the block: 1 with name (lower-cased) and value (trimmed,
 * possibly empty), or 0 when there are no more. Neither is NUL-terminated. */
int ds_headers_next(ds_hdr_iter *it, const char **name, size_t *nlen,
                    const char **value, size_t *vlen);

#pragma GCC visibility pop

#endif
