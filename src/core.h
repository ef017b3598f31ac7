/*
 * core.h -- what every C file of the core shares: the version, the export
 * macro, the metatable names and the two userdata type names.
 *
 * Owns no code and no state. Struct layouts live in transport.h / request.h.
 */
#ifndef DS_CORE_H
#define DS_CORE_H

#include <lua.h>

#define DS_VERSION "0.1.0"

#if defined(_WIN32)
#define DS_API __declspec(dllexport)
#elif defined(__GNUC__) || defined(__clang__)
#define DS_API __attribute__((visibility("default")))
#else
#define DS_API
#endif

#define DS_TRANSPORT_MT "dashscope.Transport"
#define DS_REQUEST_MT   "dashscope.Request"

typedef struct ds_transport ds_transport;
typedef struct ds_request ds_request;

/* Registers a userdata type (module.c): the metatable `name` with the `meta` entries and an
 * __index table of `methods`. Every type of the core is made this one way. */
struct luaL_Reg;
void ds_class(lua_State *L, const char *name, const struct luaL_Reg *meta,
              const struct luaL_Reg *methods);

/* The one exported symbol (module.c). */
DS_API int luaopen_dashscope_core(lua_State *L);

#endif
