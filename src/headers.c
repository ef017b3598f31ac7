/*
 * headers.c -- the response header block parser (see headers.h).
 *
 * Owns only the parsing rules. Must stay free of Lua and libcurl, must never
 * read outside [buf, buf + len) and must never rely on a terminating NUL.
 */
#include <string.h>

#include "headers.h"

/* The line starting at p: [p, *eol) without its CR/LF; returns the start of
 * the following line. */
static char *line_end(char *p, char *end, char **eol) {
  char *nl = (char *)memchr(p, '\n', (size_t)(end - p));
  char *e = nl ? nl : end;
  if (e > p && e[-1] == '\r') e--;
  *eol = e;
  return nl ? nl + 1 : end;
}

static int is_status_line(const char *p, const char *e) {
  return e - p >= 5 && memcmp(p, "HTTP/", 5) == 0;
}

/* "HTTP/1.1 200 OK", "HTTP/2 404": the three digits after the version. */
static int status_code(const char *p, const char *e) {
  int code = 0, i;
  while (p < e && *p != ' ' && *p != '\t') p++;
  while (p < e && (*p == ' ' || *p == '\t')) p++;
  if (e - p < 3) return 0;
  for (i = 0; i < 3; i++) {
    if (p[i] < '0' || p[i] > '9') return 0;
    code = code * 10 + (p[i] - '0');
  }
  if (e - p > 3 && p[3] != ' ' && p[3] != '\t') return 0;
  return code >= 100 ? code : 0;
}

int ds_headers_begin(ds_hdr_iter *it, char *buf, size_t len) {
  char *p = buf, *end = buf ? buf + len : buf, *eol;
  int status = 0;
  it->p = p;
  it->end = end;
  while (p != NULL && p < end) {
    char *next = line_end(p, end, &eol);
    if (is_status_line(p, eol)) {
      status = status_code(p, eol);
      it->p = next;
    }
    p = next;
  }
  return status;
}

int ds_headers_next(ds_hdr_iter *it, const char **name, size_t *nlen,
                    const char **value, size_t *vlen) {
  while (it->p != NULL && it->p < it->end) {
    char *p = it->p, *eol, *colon, *ne, *v, *ve, *c;
    it->p = line_end(p, it->end, &eol);
    if (p == eol || *p == ' ' || *p == '\t' || is_status_line(p, eol)) continue;
    colon = (char *)memchr(p, ':', (size_t)(eol - p));
    if (colon == NULL) continue;
    ne = colon;
    while (ne > p && (ne[-1] == ' ' || ne[-1] == '\t')) ne--;
    if (ne == p) continue;
    v = colon + 1;
    ve = eol;
    while (v < ve && (*v == ' ' || *v == '\t')) v++;
    while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t' || ve[-1] == '\r')) ve--;
    for (c = p; c < ne; c++)
      if (*c >= 'A' && *c <= 'Z') *c = (char)(*c - 'A' + 'a');
    *name = p;
    *nlen = (size_t)(ne - p);
    *value = v;
    *vlen = (size_t)(ve - v);
    return 1;
  }
  return 0;
}
