/*
 * url.h -- URLs and HTTP dates read by libcurl's own parsers, for the Lua layer's checks
 * (src/dashscope/url.lua, config.lua, http.lua): what libcurl will connect to is what is checked.
 *
 * Owns core.parse_url and core.getdate. Holds no state between calls; touches no transfer.
 */
#ifndef DS_URL_H
#define DS_URL_H

#include <lua.h>

#pragma GCC visibility push(hidden)  /* internal to the module: core.h says why */

/* Adds parse_url and getdate to the table on top of the stack (the core table). */
void ds_url_open(lua_State *L);

#pragma GCC visibility pop

#endif
