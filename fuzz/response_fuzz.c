/*
 * response_fuzz.c -- libFuzzer harness for what the service and the storage hosts send back, as the
 * Lua layer reads it: the classification of answers into bodies or error values, the task result
 * mapping, the task list, the detectors, the upload policy, the storage hosts' XML errors, and
 * JSON decoding. fuzz/response_driver.lua does the driving; this file embeds Lua 5.4, loads the
 * module (its C sources are linked in: luaopen_dashscope_core comes through package.preload, the
 * Lua layer from src/), and hands each input over.
 *
 * An input is one answer, used for every request the client makes while the input runs:
 *
 *   SCENARIO [HEADER-BLOCK] BODY
 *
 * SCENARIO is one byte saying what asks (response_driver.lua: q query, s submit, d detect, l list,
 * u upload and download, c cancel, j decoders alone, x all of them; any other byte picks one). When the rest
 * starts with "HTTP/", its header block (up to the first empty line) goes through the module's own
 * header parser (src/headers.c) into status and headers, joined as src/request.c joins them; an
 * input without a valid status line is dropped, as libcurl would drop the answer. Otherwise the
 * status is 200, there are no headers, and the whole rest is the body.
 *
 * A finding: any memory error or undefined behaviour (ASan, UBSan), any leak (LSan), and any Lua
 * error escaping the code under test -- which must answer hostile input with nil, err and never
 * raise -- or a broken promise of docs/reference.md the driver checks. Both print the Lua traceback and
 * abort(), so libFuzzer saves the input in fuzz/artifacts/.
 *
 * The embedded interpreter and its Lua line coverage: fuzz/lua_harness.c. libFuzzer cannot see
 * inside lua-cjson either, so half of the mutations are made by fuzz/response_mutator.lua, which
 * knows JSON and the service's field names.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "headers.h"
#include "lua_harness.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

static int run_ref = LUA_NOREF, mutate_ref = LUA_NOREF;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  harness_open("response_fuzz");
  run_ref = harness_require("response_driver");     /* run(scenario, status, headers, body) */
  mutate_ref = harness_require("response_mutator"); /* mutate(input, seed, max_size) */
  harness_cover(1);
  return 0;
}

/* Half of the mutations are fuzz/response_mutator.lua's (JSON-aware, unseen by the coverage
 * hook), the other half libFuzzer's own; the latter also when the former has nothing to offer. */
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed) {
  size_t out = 0;
  if (seed % 2 == 0) {
    lua_State *L = harness_L;
    int top;
    harness_cover(0);
    top = harness_begin(mutate_ref);
    lua_pushlstring(L, (const char *)data, size);
    lua_pushinteger(L, (lua_Integer)(seed / 2));
    lua_pushinteger(L, (lua_Integer)max_size);
    if (lua_pcall(L, 3, 1, top + 1) == LUA_OK && lua_type(L, -1) == LUA_TSTRING) {
      size_t n;
      const char *text = lua_tolstring(L, -1, &n);
      if (n > 0 && n <= max_size) {
        memcpy(data, text, n);
        out = n;
      }
    }
    lua_settop(L, top);
    harness_cover(1);
  }
  return out ? out : LLVMFuzzerMutate(data, size, max_size);
}

/* The header block [p, p + n) as src/request.c's push_headers makes it: names lower-cased, a
 * repeated name's values joined with ", ". Returns the status (0: no valid status line). */
static int push_headers(char *p, size_t n) {
  ds_hdr_iter it;
  const char *name, *value;
  size_t nlen, vlen;
  int status = ds_headers_begin(&it, p, n);
  lua_State *L = harness_L;
  lua_newtable(L);
  while (ds_headers_next(&it, &name, &nlen, &value, &vlen)) {
    lua_pushlstring(L, name, nlen);
    lua_pushvalue(L, -1);
    lua_rawget(L, -3);
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
      lua_pushlstring(L, value, vlen);
    } else {
      lua_pushliteral(L, ", ");
      lua_pushlstring(L, value, vlen);
      lua_concat(L, 3);
    }
    lua_rawset(L, -3);
  }
  return status;
}

/* Where the header block of [p, end) ends: just past its first empty line, or end. */
static const char *block_end(const char *p, const char *end) {
  for (; p < end; p++) {
    if (*p != '\n') continue;
    if (p + 1 < end && p[1] == '\n') return p + 2;
    if (p + 2 < end && p[1] == '\r' && p[2] == '\n') return p + 3;
  }
  return end;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_State *L = harness_L;
  const char *rest, *end, *body;
  int status = 200, top;
  char scenario[2];
  if (size == 0) return 0;
  scenario[0] = (char)data[0];
  scenario[1] = '\0';
  rest = (const char *)data + 1;
  end = (const char *)data + size;
  top = harness_begin(run_ref);
  lua_pushlstring(L, scenario, 1);
  if ((size_t)(end - rest) >= 5 && memcmp(rest, "HTTP/", 5) == 0) {
    /* the parser lower-cases in place: a copy of exactly the block, so ASan sees any overread */
    size_t n;
    char *block;
    body = block_end(rest, end);
    n = (size_t)(body - rest);
    block = (char *)malloc(n);
    if (block == NULL) abort();
    memcpy(block, rest, n);
    lua_pushnil(L); /* the status, set below */
    status = push_headers(block, n);
    free(block);
    if (status == 0) { /* libcurl gives no response without a status line */
      lua_settop(L, top);
      return 0;
    }
    lua_pushinteger(L, status);
    lua_replace(L, -3);
  } else {
    body = rest;
    lua_pushinteger(L, status);
    lua_newtable(L);
  }
  lua_pushlstring(L, body, (size_t)(end - body));
  harness_call(top, 4, "a Lua error (a finding: see the traceback)");
  return 0;
}
