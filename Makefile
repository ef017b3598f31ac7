# lua-dashscope: build, install, demo and test.
#
#   make            build into build/, laid out as installed (build/dashscope.lua over the C core
#                   build/dashscope/core.so, and build/dashscope/*.lua)
#   make demo       install what is missing (apt-get), build, run one job of each model on the local server
#   make test       install what is missing, then for each interpreter of TEST_LUAS (Lua 5.4, 5.3, 5.1 and
#                   LuaJIT): build it and run the whole busted suite against its own local server
#   make valgrind   the whole suite under valgrind, Lua 5.4 only (0 errors, 0 definitely lost)
#   make install    PREFIX=/usr/local (or LUA_CMOD/LUA_LMOD as luarocks passes them), DESTDIR honoured
#   make rock       (or make dist) the release tarball and the source rocks of rockspec/, into build/dist
#
# LUA_VERSION picks the interpreter to build for: 5.4 (the default, into build/), 5.3, 5.1 or luajit
# (into build/lua5.3/, build/lua5.1/, build/luajit/, laid out the same way):
#
#   make LUA_VERSION=luajit && LUA_CPATH='build/luajit/?.so;;' LUA_PATH='build/luajit/?.lua;;' luajit ...
#   make test TEST_LUAS=5.1      the suite under Lua 5.1 only
#
# Every variable below can be overridden on the command line, as luarocks does.

.DEFAULT_GOAL := all

LUA_VERSION ?= 5.4

# What a LUA_VERSION ($(1)) means: the interpreter (also its pkg-config name), its build directory,
# the ABI of its module directories, and its Debian packages, interpreter and headers ("a|b": either
# will do; the first is installed when neither is there).
lua_bin   = $(if $(filter luajit,$(1)),luajit,lua$(1))
lua_build = build$(if $(filter 5.4,$(1)),,/$(call lua_bin,$(1)))
lua_abi   = $(if $(filter luajit,$(1)),5.1,$(1))
lua_pkgs  = $(if $(filter luajit,$(1)),luajit2|luajit libluajit2-5.1-dev|libluajit-5.1-dev,$\
              lua$(1) liblua$(if $(filter 5.1,$(1)),5.1-0,$(1))-dev)

LUA         ?= $(call lua_bin,$(LUA_VERSION))
LUA_PC      ?= $(call lua_bin,$(LUA_VERSION))
LUA_ABI     ?= $(call lua_abi,$(LUA_VERSION))
PKG_CONFIG  ?= pkg-config
BUSTED      ?= busted
PYTHON      ?= python3

PREFIX   ?= /usr/local
LUA_CMOD ?= $(PREFIX)/lib/lua/$(LUA_ABI)
LUA_LMOD ?= $(PREFIX)/share/lua/$(LUA_ABI)
BINDIR   ?= $(PREFIX)/bin
TYPESDIR ?= $(PREFIX)/share/lua-dashscope/types

# LUA_INCDIR wins when given (luarocks); otherwise pkg-config knows Debian's lua5.X.pc and luajit.pc.
ifdef LUA_INCDIR
LUA_CFLAGS ?= -I$(LUA_INCDIR)
else
LUA_CFLAGS ?= $(shell $(PKG_CONFIG) --cflags $(LUA_PC) 2>/dev/null)
endif
CURL_CFLAGS ?= $(shell $(PKG_CONFIG) --cflags libcurl 2>/dev/null)
CURL_LIBS   ?= $(shell $(PKG_CONFIG) --libs libcurl 2>/dev/null || echo -lcurl)
# hiredis, for dashscope.hiredis alone (the Redis quota store): the core does not link it.
HIREDIS_CFLAGS ?= $(shell $(PKG_CONFIG) --cflags hiredis 2>/dev/null)
HIREDIS_LIBS   ?= $(shell $(PKG_CONFIG) --libs hiredis 2>/dev/null || echo -lhiredis)

CC      ?= cc
CFLAGS  ?= -O2 -g
WARN    ?= -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wpointer-arith -Wcast-qual
LIBFLAG ?= -shared
# Only luaopen_dashscope_core (and dashscope.hiredis's luaopen) is exported (DS_API in the sources); everything else stays hidden.
ALL_CFLAGS  = -std=c99 -D_POSIX_C_SOURCE=200809L -fPIC -fvisibility=hidden $(WARN) $(CFLAGS) $(LUA_CFLAGS) $(CURL_CFLAGS)
ALL_LDFLAGS = $(LIBFLAG) $(LDFLAGS)

# Lua 5.4 builds into build/ (the README runs from there); every other interpreter into its own
# subdirectory, named as its interpreter.
BUILD   ?= $(call lua_build,$(LUA_VERSION))
C_SRC    = $(wildcard src/*.c)
C_HDR    = $(wildcard src/*.h)
OBJ      = $(patsubst src/%.c,$(BUILD)/obj/%.o,$(C_SRC))
LUA_SRC  = $(wildcard src/dashscope/*.lua)
LUA_OUT  = $(patsubst src/%,$(BUILD)/%,$(LUA_SRC))
# The command-line tool's modules (dashscope.cli.*), under bin/dashscope's launcher.
CLI_SRC  = $(wildcard src/dashscope/cli/*.lua)
CLI_OUT  = $(patsubst src/%,$(BUILD)/%,$(CLI_SRC))
# dashscope.hiredis (dashscope/hiredis.so): src/hiredis/*.c and class.c (how a type is made),
# outside src/*.c so that the core neither builds nor links it.
HIREDIS_SRC = $(wildcard src/hiredis/*.c)
HIREDIS_OBJ = $(patsubst src/%.c,$(BUILD)/obj/%.o,$(HIREDIS_SRC)) $(BUILD)/obj/class.o

# System packages the demo and the suite need (Debian names). Only the missing ones are installed.
BUILD_PKGS = gcc libc6-dev make pkg-config libcurl4-openssl-dev libhiredis-dev
RUN_PKGS   = $(call lua_pkgs,$(LUA_VERSION)) lua-cjson ca-certificates python3 curl
TEST_PKGS  = lua-busted lua-socket luarocks zip valgrind neovim nginx libnginx-mod-http-lua redis-server

# Static checks, each configured by its own file: .luacheckrc (Lua sources, specs, examples, bench,
# scripts, annotations, the CLI), .cppcheck-suppressions and .clang-tidy (src/*.c, src/hiredis/*.c).
LINT_PKGS = lua-check cppcheck clang-tidy
LINT_CFLAGS = -std=c99 -D_POSIX_C_SOURCE=200809L $(LUA_CFLAGS) $(CURL_CFLAGS) $(HIREDIS_CFLAGS)
lint:
	@sh scripts/deps.sh $(call quote,$(BUILD_PKGS) $(call lua_pkgs,$(LUA_VERSION)) $(LINT_PKGS))
	luacheck --no-color -q src/dashscope.lua src/dashscope spec examples bench scripts types bin/dashscope
	cppcheck --quiet --error-exitcode=1 --enable=warning,style,performance,portability --std=c99 \
	  --inline-suppr --suppressions-list=.cppcheck-suppressions -Isrc src/*.c $(HIREDIS_SRC)
	clang-tidy --quiet $(C_SRC) $(HIREDIS_SRC) -- $(LINT_CFLAGS) -w
	@echo "lint: clean"

# The generated tables of docs/reference.md, from the contracts in src/dashscope/.
docs: all
	@$(RUN_ENV) $(LUA) scripts/gen-reference.lua docs/reference.md

.PHONY: docs all install uninstall clean deps deps-test demo test test-one check valgrind valgrind-run bench lint rock dist

# require "dashscope" finds dashscope.lua, the Lua entry; it requires the Lua layer, which
# requires the C core, dashscope.core (dashscope/core.so), as LuaSocket's socket.lua does socket.core.
# dashscope.hiredis (dashscope/hiredis.so) is the Redis quota store's connection, loaded only then.
all: $(BUILD)/dashscope.lua $(BUILD)/dashscope/core.so $(BUILD)/dashscope/hiredis.so $(LUA_OUT) $(CLI_OUT)

$(BUILD)/dashscope/core.so: $(OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $(OBJ) $(CURL_LIBS)

$(BUILD)/obj/%.o: src/%.c $(C_HDR) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/dashscope/hiredis.so: $(HIREDIS_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $(HIREDIS_OBJ) $(HIREDIS_LIBS)

$(BUILD)/obj/hiredis/%.o: src/hiredis/%.c $(C_HDR) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(HIREDIS_CFLAGS) -c -o $@ $<

$(BUILD)/dashscope.lua: src/dashscope.lua
	@mkdir -p $(dir $@)
	cp $< $@

$(BUILD)/dashscope/%.lua: src/dashscope/%.lua
	@mkdir -p $(dir $@)
	cp $< $@

# The CLI runs with the interpreter it was installed for (its first line names it); the LuaCATS
# annotations go to TYPESDIR as the lua-language-server addon types/ is (config.json, library/):
# an editor points LuaLS at it (types/README.md).
install: all
	install -d $(DESTDIR)$(LUA_CMOD)/dashscope $(DESTDIR)$(LUA_LMOD)/dashscope $(DESTDIR)$(BINDIR) \
	  $(DESTDIR)$(TYPESDIR)/library/dashscope
	install -m 0755 $(BUILD)/dashscope/core.so $(DESTDIR)$(LUA_CMOD)/dashscope/core.so
	install -m 0755 $(BUILD)/dashscope/hiredis.so $(DESTDIR)$(LUA_CMOD)/dashscope/hiredis.so
	install -m 0644 $(BUILD)/dashscope.lua $(DESTDIR)$(LUA_LMOD)/dashscope.lua
	install -m 0644 $(LUA_OUT) $(DESTDIR)$(LUA_LMOD)/dashscope/
	install -d $(DESTDIR)$(LUA_LMOD)/dashscope/cli
	install -m 0644 $(CLI_OUT) $(DESTDIR)$(LUA_LMOD)/dashscope/cli/
	sed '1s|.*|#!/usr/bin/env $(LUA)|' bin/dashscope > $(DESTDIR)$(BINDIR)/dashscope
	chmod 0755 $(DESTDIR)$(BINDIR)/dashscope
	install -m 0644 types/config.json types/README.md $(DESTDIR)$(TYPESDIR)/
	install -m 0644 types/library/dashscope.lua $(DESTDIR)$(TYPESDIR)/library/
	install -m 0644 types/library/dashscope/*.lua $(DESTDIR)$(TYPESDIR)/library/dashscope/

uninstall:
	rm -f $(DESTDIR)$(LUA_LMOD)/dashscope.lua $(DESTDIR)$(BINDIR)/dashscope
	rm -rf $(DESTDIR)$(LUA_CMOD)/dashscope $(DESTDIR)$(LUA_LMOD)/dashscope $(DESTDIR)$(TYPESDIR)

clean:
	rm -rf $(BUILD) luarocks-tree

# Every word quoted: "a|b" alternatives must reach deps.sh whole.
quote = $(foreach w,$(1),'$(w)')

deps:
	@sh scripts/deps.sh $(call quote,$(BUILD_PKGS) $(RUN_PKGS))

# The suite's packages, and the interpreter and headers of every one it runs under.
deps-test:
	@sh scripts/deps.sh $(call quote,$(BUILD_PKGS) $(RUN_PKGS) $(TEST_PKGS) \
	  $(foreach v,$(TEST_LUAS),$(call lua_pkgs,$(v))))

# The release (scripts/dist.sh): lua-dashscope-VERSION.tar.gz, the rockspecs' source.url, made from
# the files git tracks, reproducibly, and the source rocks dashscope-VERSION-1.src.rock and
# dashscope-hiredis-VERSION-1.src.rock that carry it (luarocks install ./X.src.rock, offline).
# VERSION is src/core.h's; a rockspec named for another fails the target.
DIST      ?= build/dist
DIST_PKGS  = git zip
rock dist:
	@sh scripts/deps.sh $(call quote,$(DIST_PKGS))
	@sh scripts/dist.sh $(DIST)

# Lua finds the module straight from the build tree, as it would once installed.
RUN_ENV = LUA_PATH='$(BUILD)/?.lua;;' LUA_CPATH='$(BUILD)/?.so;;' LUA=$(LUA) PYTHON=$(PYTHON)

# The sub-make re-reads this file, so pkg-config sees the packages deps just installed.
demo: deps
	@$(MAKE) --no-print-directory all
	@$(RUN_ENV) sh spec/with-server sh examples/demo.sh

# BUSTED_OUTPUT=json makes busted print JSON (.ci/run turns it into a closing line).
BUSTED_OUTPUT ?= utfTerminal
BUSTED_FLAGS  ?=
# The interpreters the suite runs under, each against its own build and its own server; one that is
# not installed is skipped (said on a line), one that fails fails the target once all have run.
TEST_LUAS     ?= 5.4 5.3 5.1 luajit
test: deps-test
	@status=0; $(foreach v,$(TEST_LUAS),$(MAKE) --no-print-directory test-one LUA_VERSION=$(v) \
	  LUA=$(call lua_bin,$(v)) LUA_PC=$(call lua_bin,$(v)) BUILD=$(call lua_build,$(v)) || status=1;) \
	exit $$status

# One interpreter (LUA_VERSION): build, then the suite. The "== busted under" line starts its part of
# the log for scripts/busted-summary.lua.
test-one:
	@if ! command -v $(LUA) >/dev/null 2>&1 || ! $(PKG_CONFIG) --exists $(LUA_PC); then \
	  echo "== skipped: $(LUA) or its headers ($(LUA_PC).pc) not installed"; exit 0; fi; \
	$(MAKE) --no-print-directory all && \
	echo "== busted under $(LUA) ($(BUILD))" && \
	$(RUN_ENV) sh spec/with-server $(BUSTED) --lua=$(LUA) -o $(BUSTED_OUTPUT) $(BUSTED_FLAGS) spec

check: test

# Valgrind over the whole suite: busted runs inside the instrumented interpreter (--ignore-lua keeps it
# from re-executing itself). The test build links with -z nodelete so stacks keep their symbol names.
VALGRIND ?= valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite --track-origins=yes --num-callers=30 --suppressions=spec/support/valgrind.supp
VALGRIND_LUA = LUA_VERSION=5.4 LUA=lua5.4 LUA_PC=lua5.4 BUILD=$(call lua_build,5.4)/valgrind
valgrind: deps-test
	@$(MAKE) --no-print-directory all $(VALGRIND_LUA) LDFLAGS="$(LDFLAGS) -Wl,-z,nodelete" CFLAGS="-O1 -g"
	@$(MAKE) --no-print-directory valgrind-run $(VALGRIND_LUA)

valgrind-run:
	@DASHSCOPE_UNDER_VALGRIND=1 $(RUN_ENV) sh spec/with-server $(VALGRIND) $(LUA) `command -v $(BUSTED)` --ignore-lua -o $(BUSTED_OUTPUT) $(BUSTED_FLAGS) spec

# ---- sanitizers and fuzzing (issue 5; fuzz/README.md) -----------------------------------------------
#   make asan       the whole suite, Lua 5.4 only, against a clang build of the module under
#                   AddressSanitizer, UndefinedBehaviorSanitizer and LeakSanitizer (into build/asan)
#   make fuzz       builds the libFuzzer harnesses of fuzz/ and runs each for FUZZ_SECONDS (30) from its
#                   seed corpus (fuzz/corpus/NAME); what they find goes to fuzz/artifacts/
#   make fuzz-long  the same, an hour each (FUZZ_SECONDS=3600)
.PHONY: deps-san deps-fuzz asan asan-run fuzz fuzz-build fuzz-run fuzz-long

CLANG    ?= clang
# clang, its sanitizer and libFuzzer runtimes (--no-install-recommends leaves them out), and
# llvm-symbolizer, which turns ASan's stacks into file:line.
SAN_PKGS  = clang libclang-rt-dev llvm
SAN_FLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -g -O1
ASAN_RT   = $(shell $(CLANG) -print-file-name=libclang_rt.asan-x86_64.so 2>/dev/null)

# make asan runs the suite (its packages, Lua 5.4's); make fuzz only builds against Lua 5.4 and cjson.
deps-san:
	@sh scripts/deps.sh $(call quote,$(BUILD_PKGS) $(RUN_PKGS) $(call lua_pkgs,5.4) $(TEST_PKGS) $(SAN_PKGS))

deps-fuzz:
	@sh scripts/deps.sh $(call quote,$(BUILD_PKGS) $(call lua_pkgs,5.4) lua-cjson $(SAN_PKGS))

# A module loaded into an uninstrumented lua5.4 needs ASan's runtime first in the process: it links
# against the shared runtime (-shared-libasan) and runs with it preloaded (fuzz/asan-lua). -z nodelete
# keeps it loaded through lua_close, so that a leak report, made at exit, can name its functions.
ASAN_LUA = LUA_VERSION=5.4 LUA=lua5.4 LUA_PC=lua5.4 BUILD=$(call lua_build,5.4)/asan
asan: deps-san
	@$(MAKE) --no-print-directory all $(ASAN_LUA) CC=$(CLANG) CFLAGS="$(SAN_FLAGS)" \
	  LDFLAGS="$(LDFLAGS) -fsanitize=address,undefined -shared-libasan -Wl,-rpath,$(dir $(ASAN_RT)) -Wl,-z,nodelete"
	@$(MAKE) --no-print-directory asan-run $(ASAN_LUA)

$(BUILD)/asan-preload.so: fuzz/asan-preload.c
	@mkdir -p $(dir $@)
	$(CLANG) -shared -fPIC -O1 -o $@ $<

# busted runs inside the preloaded interpreter, as under valgrind, and so does every lua5.4 a spec
# starts: build/asan/bin/lua5.4 (fuzz/asan-lua) comes first on PATH. No other process gets the
# runtime (fuzz/asan-preload.c says why; luarocks: fuzz/asan-lua); the test server is started
# before any of this.
# DASHSCOPE_UNDER_VALGRIND is not set: ASan slows our C code (about 2x) and malloc, not the
# interpreter, so no spec needs to skip or stretch anything. LeakSanitizer runs at the interpreter's
# exit, after busted's lua_close has run every finalizer; leaks that are not ours would be listed in
# fuzz/lsan.supp (none are: it says why).
# verify_asan_link_order=0 is for a process that loads the module without the preload: the
# launcher luarocks writes for the CLI execs /usr/bin/lua5.4 by its full path (spec/rock_spec.lua
# runs one, though not under ASan: it checks luarocks' build, not this one);
# there the runtime comes in late, with the module (-rpath), and checks that process's stack and
# globals but not its heap.
ASAN_ENV = ASAN_LUA_REAL="$$(command -v $(LUA))" ASAN_PRELOAD="$(ASAN_RT) $(CURDIR)/$(BUILD)/asan-preload.so" \
  ASAN_PATH_REST="$$PATH" PATH="$(CURDIR)/$(BUILD)/bin:$$PATH" \
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1:verify_asan_link_order=0 \
  LSAN_OPTIONS=suppressions=$(CURDIR)/fuzz/lsan.supp:print_suppressions=0 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
asan-run: $(BUILD)/asan-preload.so
	@mkdir -p $(BUILD)/bin && for f in $(LUA) luarocks; do ln -sf $(CURDIR)/fuzz/asan-lua $(BUILD)/bin/$$f; done
	@echo "== busted under $(LUA) with ASan, UBSan and LSan ($(BUILD))"
	@$(RUN_ENV) sh spec/with-server env $(ASAN_ENV) \
	  $(BUILD)/bin/$(LUA) `command -v $(BUSTED)` --ignore-lua -o $(BUSTED_OUTPUT) $(BUSTED_FLAGS) spec

# Each harness is fuzz/NAME_fuzz.c; response_fuzz and url_fuzz link the module's C sources and lua5.4
# and run the Lua layer from src/ (see fuzz/README.md). The corpus a run grows lives in build/fuzz/corpus/NAME;
# the seeds in fuzz/corpus/NAME are only read.
FUZZ_SECONDS ?= 30
FUZZ_NAMES   ?= headers response url
FUZZ_BUILD    = build/fuzz
FUZZ_FLAGS    = -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer \
  -g -O1 -std=c99 -D_POSIX_C_SOURCE=200809L -Isrc $(WARN)
FUZZ_LUA_PC   = lua5.4
FUZZ_ARGS    ?=
FUZZ_ENV      = ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
fuzz: deps-fuzz
	@$(MAKE) --no-print-directory fuzz-build
	@$(MAKE) --no-print-directory fuzz-run

fuzz-build: $(foreach n,$(FUZZ_NAMES),$(FUZZ_BUILD)/$(n)_fuzz)

$(FUZZ_BUILD)/headers_fuzz: fuzz/headers_fuzz.c src/headers.c src/headers.h Makefile
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_FLAGS) -o $@ fuzz/headers_fuzz.c src/headers.c

$(FUZZ_BUILD)/response_fuzz: fuzz/response_fuzz.c fuzz/lua_harness.c fuzz/lua_harness.h $(C_SRC) $(C_HDR) Makefile
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_FLAGS) -DFUZZ_ROOT='"$(CURDIR)"' $(shell $(PKG_CONFIG) --cflags $(FUZZ_LUA_PC)) $(CURL_CFLAGS) \
	  -o $@ fuzz/response_fuzz.c fuzz/lua_harness.c $(C_SRC) $(shell $(PKG_CONFIG) --libs $(FUZZ_LUA_PC)) $(CURL_LIBS)

$(FUZZ_BUILD)/url_fuzz: fuzz/url_fuzz.c fuzz/lua_harness.c fuzz/lua_harness.h $(C_SRC) $(C_HDR) Makefile
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_FLAGS) -DFUZZ_ROOT='"$(CURDIR)"' $(shell $(PKG_CONFIG) --cflags $(FUZZ_LUA_PC)) $(CURL_CFLAGS) \
	  -o $@ fuzz/url_fuzz.c fuzz/lua_harness.c $(C_SRC) $(shell $(PKG_CONFIG) --libs $(FUZZ_LUA_PC)) $(CURL_LIBS)

# Every harness runs, one after the other, with the flags of fuzz/NAME.options, if any; one that
# finds something fails the target once all have run. Each run's whole log is build/fuzz/NAME.log;
# shown here: its start and end, and any finding.
fuzz-run:
	@mkdir -p fuzz/artifacts; status=0; \
	for n in $(FUZZ_NAMES); do \
	  mkdir -p $(FUZZ_BUILD)/corpus/$$n; \
	  echo "== fuzz $$n for $(FUZZ_SECONDS) s"; \
	  if $(FUZZ_ENV) $(FUZZ_BUILD)/$${n}_fuzz -max_total_time=$(FUZZ_SECONDS) -timeout=10 -print_final_stats=1 \
	       -artifact_prefix=fuzz/artifacts/$$n- -dict=fuzz/$$n.dict \
	       `grep -v '^#' fuzz/$$n.options 2>/dev/null` $(FUZZ_ARGS) \
	       $(FUZZ_BUILD)/corpus/$$n fuzz/corpus/$$n > $(FUZZ_BUILD)/$$n.log 2>&1; then \
	    grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' \
	      $(FUZZ_BUILD)/$$n.log; \
	  else \
	    status=1; echo "fuzz $$n: a finding (or a broken harness); the end of $(FUZZ_BUILD)/$$n.log:"; \
	    tail -n 80 $(FUZZ_BUILD)/$$n.log; \
	  fi; \
	done; exit $$status

fuzz-long:
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=3600
# ---- end of sanitizers and fuzzing ------------------------------------------------------------------

# The benchmark (not a test): runs the workloads of bench/README.md against the local server, prints a
# table and writes it to bench/results.md. Several minutes; BENCH_ARGS="--scale 0.1" for a quick run.
BENCH_ARGS ?=
# The server (and the bench's driver) on CPU 1; bench/run.lua puts each measured client on CPU 0.
PIN_SERVER = $(shell command -v taskset >/dev/null 2>&1 && [ "$$(nproc)" -ge 2 ] && echo taskset -c 1)
bench: deps
	@$(MAKE) --no-print-directory all
	@$(RUN_ENV) BENCH_MAKE_CMD='make bench BENCH_ARGS="$(BENCH_ARGS)"' $(PIN_SERVER) sh spec/with-server $(LUA) bench/run.lua $(BENCH_ARGS)
