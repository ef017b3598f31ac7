/*
 * form.h -- a multipart/form-data body (RFC 7578) for a request, from a Lua
 * array of parts, built on libcurl's mime API so that a file part streams from
 * disk instead of being read into memory.
 *
 * A part is { name = "key", value = "text" } or { name = "file", file = path,
 * filename = "x.png" (optional), type = "image/png" (optional) }. Parts go out
 * in array order (OSS wants `file` last; the caller orders them). Checking is
 * separate from building so that every misuse raises before any libcurl
 * handle exists.
 */
#ifndef DS_FORM_H
#define DS_FORM_H

#include <curl/curl.h>
#include <lua.h>

/* Raises (naming form[i] and the rule) unless the value at idx is an array of
 * valid parts; nil is no form. Returns the number of parts. */
int ds_form_check(lua_State *L, int idx);

/* Builds the checked form at idx for easy. *out receives the mime handle, which
 * the caller owns (curl_mime_free once easy no longer uses it). Returns
 * CURLE_OK, or the libcurl error (out of memory; a file libcurl cannot open
 * is reported by the transfer itself). */
CURLcode ds_form_build(lua_State *L, int idx, CURL *easy, curl_mime **out);

#endif
