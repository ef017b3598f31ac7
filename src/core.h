/*
 * core.h -- what every C file of the core shares: the version, the export
 * macro, the metatable names, the two userdata type names and the entry point.
 *
 * Owns no code and no state. Struct layouts live in transport.h / request.h; how a type is
 * registered, in class.h.
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

/* The one exported symbol (core.c): require "dashscope.core". Every other header declares its
 * functions between "#pragma GCC visibility push(hidden)" and "pop": the Makefile's
 * -fvisibility=hidden does the same for every file, but luarocks' builtin build passes no such flag,
 * and a module must not export names that can clash with another's. */
DS_API int luaopen_dashscope_core(lua_State *L);

#endif
