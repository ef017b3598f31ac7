/*
 * form.h -- a multipart/form-data body (RFC 7578) for a request, from a Lua
 * array of parts, built on libcurl's mime API so that a file part streams from
 * disk instead of being read into memory.
 *
 * A part is { name = "key", value = "text" } or { name = "file", file = path,
 * size = bytes (optional), filename = "x.png" (optional), type = "image/png"
 * (optional) }. Parts go out in array order (OSS wants `file` last; the caller
 * orders them). Checking is separate from building so that every misuse
 * raises before any libcurl handle exists.
 *
 * A file is opened when the form is built, the non-blocking way of fs.h (a
 * regular file only), and streamed from that descriptor, which the mime part
 * owns: the bytes sent are exactly the file that was checked. A file that
 * cannot be opened, is no longer `size` bytes, or changes size while it is
 * read fails the transfer (never raises): *read_errno gets errno, or -1 for
 * "changed", and the read callback aborts.
 */
#ifndef DS_FORM_H
#define DS_FORM_H

#include <curl/curl.h>
#include <lua.h>

#pragma GCC visibility push(hidden)  /* internal to the module: core.h says why */

/* Raises (naming form[i] and the rule) unless the value at idx is an array of
 * valid parts; nil is no form. Returns the number of parts. */
int ds_form_check(lua_State *L, int idx);

/* Builds the checked form at idx for easy. *out receives the mime handle, which
 * the caller owns (curl_mime_free once easy no longer uses it, and before
 * *read_errno goes away). Returns CURLE_OK, or the libcurl error (out of
 * memory; a file that cannot be read is reported through *read_errno by the
 * transfer itself). */
CURLcode ds_form_build(lua_State *L, int idx, CURL *easy, curl_mime **out, int *read_errno);

#pragma GCC visibility pop

#endif
