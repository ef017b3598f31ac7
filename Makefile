# lua-dashscope: build, install, demo and test.
#
#   make            build into build/, laid out as installed (build/dashscope.so, build/dashscope/*.lua)
#   make demo       install what is missing (apt-get), build, run one job of each model on the local server
#   make test       install what is missing, build, run the whole busted suite against the local server
#   make valgrind   the whole suite under valgrind (0 errors, 0 definitely lost)
#   make install    PREFIX=/usr/local (or LUA_CMOD/LUA_LMOD as luarocks passes them), DESTDIR honoured
#
# Every variable below can be overridden on the command line, as luarocks does.

.DEFAULT_GOAL := all

LUA_VERSION ?= 5.4
LUA         ?= lua$(LUA_VERSION)
PKG_CONFIG  ?= pkg-config
BUSTED      ?= busted
PYTHON      ?= python3

PREFIX   ?= /usr/local
LUA_CMOD ?= $(PREFIX)/lib/lua/$(LUA_VERSION)
LUA_LMOD ?= $(PREFIX)/share/lua/$(LUA_VERSION)

# LUA_INCDIR wins when given (luarocks); otherwise pkg-config knows Debian's lua5.X.pc.
ifdef LUA_INCDIR
LUA_CFLAGS ?= -I$(LUA_INCDIR)
else
LUA_CFLAGS ?= $(shell $(PKG_CONFIG) --cflags lua$(LUA_VERSION) 2>/dev/null)
endif
CURL_CFLAGS ?= $(shell $(PKG_CONFIG) --cflags libcurl 2>/dev/null)
CURL_LIBS   ?= $(shell $(PKG_CONFIG) --libs libcurl 2>/dev/null || echo -lcurl)

CC      ?= cc
CFLAGS  ?= -O2 -g
WARN    ?= -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wpointer-arith -Wcast-qual
LIBFLAG ?= -shared
# Only luaopen_dashscope is exported (DS_API in the sources); everything else stays hidden.
ALL_CFLAGS  = -std=c99 -D_POSIX_C_SOURCE=200809L -fPIC -fvisibility=hidden $(WARN) $(CFLAGS) $(LUA_CFLAGS) $(CURL_CFLAGS)
ALL_LDFLAGS = $(LIBFLAG) $(LDFLAGS)

BUILD   ?= build
C_SRC    = $(wildcard src/*.c)
C_HDR    = $(wildcard src/*.h)
OBJ      = $(patsubst src/%.c,$(BUILD)/obj/%.o,$(C_SRC))
LUA_SRC  = $(wildcard src/dashscope/*.lua)
LUA_OUT  = $(patsubst src/%,$(BUILD)/%,$(LUA_SRC))

# System packages the demo and the suite need (Debian names). Only the missing ones are installed.
BUILD_PKGS = gcc libc6-dev make pkg-config liblua$(LUA_VERSION)-dev libcurl4-openssl-dev
RUN_PKGS   = lua$(LUA_VERSION) lua-cjson ca-certificates python3 curl
TEST_PKGS  = lua-busted luarocks valgrind neovim nginx libnginx-mod-http-lua

# The generated tables of docs/reference.md, from the contracts in src/dashscope/.
docs: all
	@$(RUN_ENV) $(LUA) scripts/gen-reference.lua docs/reference.md

.PHONY: docs all install uninstall clean deps deps-test demo test check valgrind valgrind-run bench

all: $(BUILD)/dashscope.so $(LUA_OUT)

$(BUILD)/dashscope.so: $(OBJ)
	$(CC) $(ALL_LDFLAGS) -o $@ $(OBJ) $(CURL_LIBS)

$(BUILD)/obj/%.o: src/%.c $(C_HDR) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/dashscope/%.lua: src/dashscope/%.lua
	@mkdir -p $(dir $@)
	cp $< $@

install: all
	install -d $(DESTDIR)$(LUA_CMOD) $(DESTDIR)$(LUA_LMOD)/dashscope
	install -m 0755 $(BUILD)/dashscope.so $(DESTDIR)$(LUA_CMOD)/dashscope.so
	install -m 0644 $(LUA_OUT) $(DESTDIR)$(LUA_LMOD)/dashscope/

uninstall:
	rm -f $(DESTDIR)$(LUA_CMOD)/dashscope.so
	rm -rf $(DESTDIR)$(LUA_LMOD)/dashscope

clean:
	rm -rf $(BUILD) luarocks-tree

deps:
	@sh scripts/deps.sh $(BUILD_PKGS) $(RUN_PKGS)

deps-test:
	@sh scripts/deps.sh $(BUILD_PKGS) $(RUN_PKGS) $(TEST_PKGS)

# Lua finds the module straight from the build tree, as it would once installed.
RUN_ENV = LUA_PATH='$(BUILD)/?.lua;;' LUA_CPATH='$(BUILD)/?.so;;' LUA=$(LUA) PYTHON=$(PYTHON)

# The sub-make re-reads this file, so pkg-config sees the packages deps just installed.
demo: deps
	@$(MAKE) --no-print-directory all
	@$(RUN_ENV) sh spec/with-server sh examples/demo.sh

# BUSTED_OUTPUT=json makes busted print JSON (.ci/run turns it into a closing line).
BUSTED_OUTPUT ?= utfTerminal
BUSTED_FLAGS  ?=
test: deps-test
	@$(MAKE) --no-print-directory all
	@$(RUN_ENV) sh spec/with-server $(BUSTED) --lua=$(LUA) -o $(BUSTED_OUTPUT) $(BUSTED_FLAGS) spec

check: test

# Valgrind over the whole suite: busted runs inside the instrumented interpreter (--ignore-lua keeps it
# from re-executing itself). The test build links with -z nodelete so stacks keep their symbol names.
VALGRIND ?= valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite --track-origins=yes --num-callers=30 --suppressions=spec/support/valgrind.supp
valgrind: deps-test
	@$(MAKE) --no-print-directory all BUILD=$(BUILD)/valgrind LDFLAGS="$(LDFLAGS) -Wl,-z,nodelete" CFLAGS="-O1 -g"
	@$(MAKE) --no-print-directory valgrind-run BUILD=$(BUILD)/valgrind

valgrind-run:
	@DASHSCOPE_UNDER_VALGRIND=1 $(RUN_ENV) sh spec/with-server $(VALGRIND) $(LUA) `command -v $(BUSTED)` --ignore-lua -o $(BUSTED_OUTPUT) $(BUSTED_FLAGS) spec

# The benchmark (not a test): runs the workloads of bench/README.md against the local server, prints a
# table and writes it to bench/results.md. Several minutes; BENCH_ARGS="--scale 0.1" for a quick run.
BENCH_ARGS ?=
bench: deps
	@$(MAKE) --no-print-directory all
	@$(RUN_ENV) BENCH_MAKE_CMD='make bench BENCH_ARGS="$(BENCH_ARGS)"' sh spec/with-server $(LUA) bench/run.lua $(BENCH_ARGS)
