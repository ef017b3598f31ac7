/*
 * scrub.h -- hides API keys: every key a transport of this Lua state holds, in any string or table
 * handed to core.scrub.
 *
 * Owns the registry's weak set of transports that hold a key, and core.scrub. Does not own the
 * keys (transport.c does: it wipes them on close, after which they are simply no longer found),
 * and knows nothing of a transport but the slot where its key is: scrub.c needs nothing of
 * transport.c.
 */
#ifndef DS_SCRUB_H
#define DS_SCRUB_H

#include <lua.h>

#pragma GCC visibility push(hidden)  /* internal to the module: core.h says why */

/* How deep core.scrub walks tables: deeper raises. Above what json.lua lets a decoded answer be
 * (its decode depth), so an answer never reaches it. */
#define DS_SCRUB_DEPTH 200

/* Adds the transport whose userdata is at tidx to the set whose keys core.scrub hides (its
 * set_credential calls this once it holds a key). *secret is where it keeps the key (NULL once
 * wiped): inside that userdata, so valid while the set holds the userdata. Only read here. */
void ds_scrub_remember(lua_State *L, int tidx, char **secret);

/* Sets scrub in the table on top: core.scrub(value). */
void ds_scrub_open(lua_State *L);

#pragma GCC visibility pop

#endif
