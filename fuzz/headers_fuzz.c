/*
 * headers_fuzz.c -- libFuzzer harness for the response header parser (src/headers.c).
 *
 * The input is a raw header block as libcurl's HEADERFUNCTION hands it over: whatever a server (or
 * anything between it and us) sends. It is copied into a buffer of exactly its size, so ASan sees
 * any read past the end (the parser must never rely on a terminating NUL), parsed once, then parsed
 * again in place. Besides memory errors, the harness aborts when a rule of headers.h is broken:
 *   - the status is 0 or 100..999;
 *   - every name and value lies inside the buffer; a name is not empty, has no upper-case letter,
 *     no colon, no LF, and does not start with a space or a tab; a value has no LF and neither
 *     starts nor ends with a space or a tab, nor ends with a CR;
 *   - there are no more headers than lines;
 *   - parsing is idempotent: the second pass (over the lower-cased buffer) yields the same status
 *     and the same headers.
 * Build and run: make fuzz (see fuzz/README.md).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "headers.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_SEEN 4096

typedef struct seen {
  size_t name, nlen, value, vlen; /* offsets into the buffer */
} seen;

static void fail(const char *why, size_t i) {
  fprintf(stderr, "headers_fuzz: %s (header %zu)\n", why, i);
  abort();
}

static void check_header(const char *buf, size_t len, const char *name, size_t nlen,
                         const char *value, size_t vlen, size_t i) {
  size_t k;
  if (name < buf || name + nlen > buf + len) fail("name outside the buffer", i);
  if (value < buf || value + vlen > buf + len) fail("value outside the buffer", i);
  if (nlen == 0) fail("empty name", i);
  if (name[0] == ' ' || name[0] == '\t') fail("name starts with a blank", i);
  for (k = 0; k < nlen; k++) {
    char c = name[k];
    if (c >= 'A' && c <= 'Z') fail("name not lower-cased", i);
    if (c == ':' || c == '\n') fail("name holds a colon or LF", i);
  }
  if (memchr(value, '\n', vlen) != NULL) fail("value holds LF", i);
  if (vlen > 0) {
    if (value[0] == ' ' || value[0] == '\t') fail("value starts with a blank", i);
    if (value[vlen - 1] == ' ' || value[vlen - 1] == '\t' || value[vlen - 1] == '\r')
      fail("value ends with a blank or CR", i);
  }
}

/* One pass over buf: the status, and up to MAX_SEEN headers as offsets. */
static int parse(char *buf, size_t len, seen *out, size_t *count) {
  ds_hdr_iter it;
  const char *name, *value;
  size_t nlen, vlen, n = 0, lines = 1, k;
  int status = ds_headers_begin(&it, buf, len);
  if (status != 0 && (status < 100 || status > 999)) fail("status out of range", 0);
  for (k = 0; k < len; k++)
    if (buf[k] == '\n') lines++;
  while (ds_headers_next(&it, &name, &nlen, &value, &vlen)) {
    check_header(buf, len, name, nlen, value, vlen, n);
    if (n < MAX_SEEN) {
      out[n].name = (size_t)(name - buf);
      out[n].nlen = nlen;
      out[n].value = (size_t)(value - buf);
      out[n].vlen = vlen;
    }
    n++;
    if (n > lines) fail("more headers than lines", n);
  }
  *count = n;
  return status;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static seen first[MAX_SEEN], second[MAX_SEEN];
  size_t n1, n2, i;
  int s1, s2;
  char *buf;
  ds_hdr_iter it;
  const char *name, *value;
  size_t nlen, vlen;

  /* The empty block, as libcurl may hand over: NULL is allowed when len is 0. */
  if (ds_headers_begin(&it, NULL, 0) != 0) fail("status from nothing", 0);
  if (ds_headers_next(&it, &name, &nlen, &value, &vlen)) fail("a header from nothing", 0);

  buf = (char *)malloc(size ? size : 1);
  if (buf == NULL) return 0;
  if (size) memcpy(buf, data, size);
  s1 = parse(buf, size, first, &n1);
  s2 = parse(buf, size, second, &n2);
  if (s1 != s2) fail("status differs on the second pass", 0);
  if (n1 != n2) fail("header count differs on the second pass", n1);
  for (i = 0; i < n1 && i < MAX_SEEN; i++)
    if (memcmp(&first[i], &second[i], sizeof first[i]) != 0) fail("header differs on the second pass", i);
  free(buf);
  return 0;
}
