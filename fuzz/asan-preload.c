/*
 * asan-preload.c -- for `make asan` only; not part of the module. fuzz/asan-lua preloads it after
 * clang's ASan runtime into every Lua interpreter the suite runs under ASan. Two jobs:
 *
 * 1. Once the loader has read LD_PRELOAD, take it out of the environment, so the processes the
 *    interpreter starts (curl, python3, cc, openssl, ...) run as they were built; interpreters
 *    reached through fuzz/asan-lua (first on PATH) get the runtime again. ASan goes where the
 *    module is loaded, and nowhere else. Under clang 14's runtime curl hangs in its first
 *    setlocale() (glibc's locale lock is left corrupted), and python3, cc, luarocks and openssl
 *    each report leaks of their own at exit: their business, not this project's.
 *
 * 2. Keep every shared object loaded until the process exits (dlclose does nothing), as
 *    -Wl,-z,nodelete does for build/asan/dashscope/core.so, so that LeakSanitizer, which runs after
 *    lua_close has unloaded the C modules, still sees the globals of the libraries they pulled in,
 *    and can name the frames of a leak. Without it, the copy of the module that spec/build_spec.lua
 *    builds with luarocks (no -z nodelete) takes libcurl down with it at lua_close, and the memory
 *    behind libcurl's globals (from curl_global_init and curl_version) shows as 5724 bytes in 41
 *    unnamed allocations.
 */
#include <stdlib.h>

int dlclose(void *handle);

__attribute__((constructor)) static void unpreload(void) {
  unsetenv("LD_PRELOAD");
}

int dlclose(void *handle) {
  (void)handle;
  return 0;
}
