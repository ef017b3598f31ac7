/*
 * url_fuzz.c -- libFuzzer harness for the URLs and option values a caller (or text from outside,
 * e.g. an OpenResty request) hands to the client: libcurl's URL parser as core.parse_url exposes
 * it (src/url.c), the base-URL rules of dashscope.new (src/dashscope/config.lua), the rule for
 * hosts the service names (src/dashscope/url.lua), the numeric option checks (check.lua) and
 * Retry-After (http.retry_after over core.getdate). fuzz/url_driver.lua does the driving and
 * checks the promises; this file embeds Lua 5.4, loads the module (its C sources are linked in:
 * luaopen_dashscope_core through package.preload, the Lua layer from src/) and hands each input
 * over.
 *
 * An input is MODE REST (url_driver.lua): MODE 'o' an option value, 'r' a Retry-After value, any
 * other byte: the whole input is a URL, tried as base_url, as DASHSCOPE_HTTP_BASE_URL, as a host
 * the service names, and through core.parse_url.
 *
 * A finding: a memory error or undefined behaviour (ASan, UBSan) in the C parts, a Lua error the
 * code under test raises where it must answer (parse_url, url.remote, retry_after), a raise of
 * dashscope.new that is not its misuse message, and a broken promise: an accepted base URL with
 * credentials, a query or fragment, or plain http:// to a host that is not loopback; an accepted
 * option value that is not finite or not in its range. Each prints the Lua traceback and aborts,
 * so libFuzzer saves the input in fuzz/artifacts/.
 *
 * The embedded interpreter and its Lua line coverage: fuzz/lua_harness.c.
 */
#include <stdint.h>

#include <lauxlib.h>
#include <lua.h>

#include "lua_harness.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_ref = LUA_NOREF;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  harness_open("url_fuzz");
  run_ref = harness_require("url_driver"); /* the driver returns run(input) */
  harness_cover(1);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int top = harness_begin(run_ref);
  lua_pushlstring(harness_L, (const char *)data, size);
  harness_call(top, 1, "a broken promise or a Lua error (see the traceback)");
  return 0;
}
